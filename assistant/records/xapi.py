"""xAPI statements for the organisation's Learning Record Store, through an outbox.

Statements are built here and added to the `xapi_statements` table in the same transaction as the
interaction, vote or hand-off they describe; `XapiOutbox.flush()` (the worker, every minute, or
`moment xapi flush`) delivers them in batches. A statement's id is fixed when it is queued, so a retry
after a lost response never makes a duplicate. When the LRS is down, slow or answers 5xx, statements
wait with exponential backoff; a statement the LRS rejects (4xx) is set aside with the reason.

Actors are Slack accounts (`account.homePage` = the workspace URL, `account.name` = the user ID), or
an HMAC of the user ID when MOMENT_XAPI_PSEUDONYMISE is on. Content items have stable activity IRIs
built from their path in the content folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import urllib.parse
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update

from assistant.db.database import Database
from assistant.db.models import XapiStatement, utcnow
from assistant.settings import Settings

log = logging.getLogger(__name__)

VERBS = {
    "asked": "http://adlnet.gov/expapi/verbs/asked",
    "answered": "http://adlnet.gov/expapi/verbs/answered",
    "rated": "http://id.tincanapi.com/verb/rated",
    "requested-mentor": "http://id.tincanapi.com/verb/requested-attention",
    "mentored": "http://id.tincanapi.com/verb/mentored",
    "resolved": "http://adlnet.gov/expapi/verbs/completed",
    "reviewed": "http://id.tincanapi.com/verb/reviewed",
    "voided": "http://adlnet.gov/expapi/verbs/voided",
    # Courses (assistant/learning/): Moment shared a course with a person (displayed "suggested"); the person
    # launched it through the suggestion's link, or skipped it (Not now).
    "suggested": "http://adlnet.gov/expapi/verbs/shared",
    "launched": "http://adlnet.gov/expapi/verbs/launched",
    "skipped": "http://id.tincanapi.com/verb/skipped",
}
DISPLAY = {"requested-mentor": "requested a mentor", "resolved": "resolved"}
# Who a course was suggested to (the statement's actor is Moment, which suggested it).
SUGGESTED_TO = "https://moment.example/xapi/suggested-to"
ACTIVITY_TYPES = {
    "question": "http://adlnet.gov/expapi/activities/question",
    "job-aid": "http://adlnet.gov/expapi/activities/file",
    "procedure": "http://adlnet.gov/expapi/activities/file",
    "reference": "http://adlnet.gov/expapi/activities/file",
    "video": "https://w3id.org/xapi/video/activity-type/video",
    "request": "http://id.tincanapi.com/activitytype/discussion",
    "course": "http://adlnet.gov/expapi/activities/course",
}
# The context extension naming the Slack workspace (and Enterprise Grid org) a statement happened in.
WORKSPACE = "https://moment.example/xapi/workspace"
BATCH = 50
MAX_BACKOFF = dt.timedelta(hours=1)
MAX_SERVER_ERRORS = 8  # a single statement the LRS answers 5xx this many times is set aside


def pseudonym_key(settings: Settings) -> bytes:
    """The key people's ids are hashed with (MOMENT_XAPI_SALT, else the signing secret)."""
    key = settings.xapi_salt or settings.slack_signing_secret
    return key.get_secret_value().encode() if key else b"moment"


def pseudonym(key: bytes, user_id: str) -> str:
    """A person's id as the LRS and the admin pages see it when ids are pseudonymised (a keyed hash)."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]


class Statements:
    """Builds statements; pure functions of what happened."""

    def __init__(self, settings: Settings) -> None:
        self.home_page = settings.workspace_url.rstrip("/")
        self.base = (settings.content_base_url or f"{self.home_page}/moment").rstrip("/")
        self.pseudonymise = settings.xapi_pseudonymise
        self._key = pseudonym_key(settings)

    def actor(self, user_id: str) -> dict:
        name = user_id
        if self.pseudonymise:
            name = pseudonym(self._key, user_id)
        return {"objectType": "Agent", "account": {"homePage": self.home_page, "name": name}}

    def moment(self) -> dict:
        return {"objectType": "Agent", "name": "Moment", "account": {"homePage": self.home_page, "name": "moment"}}

    def content(self, path: str, title: str, type_: str) -> dict:
        return self._activity(f"{self.base}/content/{urllib.parse.quote(path)}", title, ACTIVITY_TYPES.get(type_))

    def question(self, interaction_id: int, text: str) -> dict:
        return self._activity(f"{self.base}/questions/{interaction_id}", text[:200], ACTIVITY_TYPES["question"])

    def course(self, activity_id: str, title: str) -> dict:
        return self._activity(activity_id, title, ACTIVITY_TYPES["course"])

    def request(self, request_id: int, text: str) -> dict:
        return self._activity(f"{self.base}/mentor-requests/{request_id}", text[:200], ACTIVITY_TYPES["request"])

    def statement(
        self,
        verb: str,
        actor: dict,
        obj: dict,
        *,
        at: dt.datetime,
        result: dict | None = None,
        context: dict | None = None,
    ) -> dict:
        statement = {
            "id": str(uuid.uuid4()),
            "actor": actor,
            "verb": {"id": VERBS[verb], "display": {"en-US": DISPLAY.get(verb, verb)}},
            "object": obj,
            "timestamp": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        if result:
            statement["result"] = result
        statement["context"] = {"platform": "Moment (Slack)", "language": "en", **(context or {})}
        return statement

    @staticmethod
    def _activity(iri: str, name: str, type_: str | None) -> dict:
        definition: dict = {"name": {"en-US": name or "untitled"}}
        if type_:
            definition["type"] = type_
        return {"objectType": "Activity", "id": iri, "definition": definition}


@dataclass(frozen=True)
class OutboxStatus:
    queued: int
    sent: int
    rejected: int
    oldest_queued: dt.datetime | None


class XapiOutbox:
    """Queue statements with the records they describe; deliver them later."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.statements = Statements(settings)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.lrs_endpoint)

    def queue(
        self, session, statement: dict, *, user_id: str | None, team_id: str | None, enterprise_id: str | None = None
    ) -> None:
        """Add a statement to the outbox, in the caller's transaction. The statement names the workspace
        it happened in (context extension `WORKSPACE`); None: the deployment's default workspace."""
        if not self.enabled:
            return
        team_id = team_id or self.settings.default_team_id
        workspace = {"team_id": team_id, **({"enterprise_id": enterprise_id} if enterprise_id else {})}
        statement.setdefault("context", {}).setdefault("extensions", {})[WORKSPACE] = workspace
        session.add(
            XapiStatement(
                id=statement["id"],
                team_id=team_id,
                user_id=user_id,
                verb=statement["verb"]["display"]["en-US"],
                statement=statement,
                next_attempt_at=utcnow(),
            )
        )

    # -- what happened -------------------------------------------------------------------------

    def interaction(self, session, interaction) -> None:
        """asked (by the person) and answered (by Moment, confidence as the scaled score)."""
        if not self.enabled:
            return
        s = self.statements
        question = s.question(interaction.id, interaction.question)
        asked = s.statement(
            "asked",
            s.actor(interaction.user_id),
            question,
            at=interaction.created_at,
            context={"extensions": {"https://moment.example/xapi/surface": interaction.surface}},
        )
        where = {"team_id": interaction.team_id, "enterprise_id": interaction.enterprise_id}
        self.queue(session, asked, user_id=interaction.user_id, **where)
        sources = [s.content(src.path, src.title, src.type) for src in interaction.sources]
        answered = s.statement(
            "answered",
            s.moment(),
            question,
            at=interaction.created_at,
            result={
                "success": bool(interaction.answered),
                "score": {"scaled": round(max(0.0, min(1.0, interaction.confidence)), 4)},
                "duration": _iso_duration(interaction.latency_ms / 1000),
            },
            context={
                "contextActivities": {"other": sources} if sources else {},
                "statement": {"objectType": "StatementRef", "id": asked["id"]},
            },
        )
        self.queue(session, answered, user_id=interaction.user_id, **where)

    def vote(self, session, vote, interaction) -> None:
        if not self.enabled:
            return
        s = self.statements
        result = {"success": bool(vote.helpful), "response": "helpful" if vote.helpful else "not helpful"}
        if vote.comment:
            result["response"] += f": {vote.comment[:500]}"
        statement = s.statement(
            "rated",
            s.actor(vote.user_id),
            s.question(interaction.id, interaction.question),
            at=utcnow(),
            result=result,
        )
        self.queue(
            session, statement, user_id=vote.user_id, team_id=vote.team_id, enterprise_id=interaction.enterprise_id
        )

    def mentor_event(self, session, verb: str, request, actor_id: str) -> None:
        """requested-mentor (the asker), mentored (the mentor as actor), resolved (the mentor)."""
        if not self.enabled:
            return
        s = self.statements
        context = {"instructor": s.actor(request.owner_id)} if verb == "resolved" and request.owner_id else {}
        if request.interaction_id:
            context["contextActivities"] = {"parent": [s.question(request.interaction_id, request.question)]}
        statement = s.statement(
            verb, s.actor(actor_id), s.request(request.id, request.question), at=utcnow(), context=context
        )
        self.queue(
            session,
            statement,
            user_id=actor_id if verb == "requested-mentor" else request.asker_id,
            team_id=request.team_id,
            enterprise_id=request.enterprise_id,
        )

    def reviewed(self, session, owner_id: str, path: str, title: str, type_: str) -> None:
        if not self.enabled:
            return
        s = self.statements
        self.queue(
            session,
            s.statement("reviewed", s.actor(owner_id), s.content(path, title, type_), at=utcnow()),
            user_id=owner_id,
            team_id=None,  # content is the deployment's, reviewed for the default workspace
        )

    def course_event(self, session, verb: str, suggestion, course) -> None:
        """suggested (Moment, to the person: context extension `SUGGESTED_TO`), launched or skipped (the person)."""
        if not self.enabled:
            return
        s = self.statements
        context: dict = {}
        if suggestion.interaction_id:
            question = s.question(suggestion.interaction_id, "")["id"]  # named by its own "asked" statement
            context["contextActivities"] = {"parent": [{"objectType": "Activity", "id": question}]}
        if verb == "suggested":
            actor = s.moment()
            context["extensions"] = {SUGGESTED_TO: s.actor(suggestion.user_id)}
        else:
            actor = s.actor(suggestion.user_id)
        statement = s.statement(verb, actor, s.course(course.activity_id, course.title), at=utcnow(), context=context)
        self.queue(session, statement, user_id=suggestion.user_id, team_id=suggestion.team_id)

    def void_user(self, session, user_id: str) -> int:
        """Void every statement about `user_id` already sent; drop the ones not sent yet."""
        rows = session.scalars(select(XapiStatement).where(XapiStatement.user_id == user_id)).all()
        voided = 0
        for row in rows:
            if row.status == "sent" and self.enabled:
                s = self.statements
                void = s.statement("voided", s.moment(), {"objectType": "StatementRef", "id": row.id}, at=utcnow())
                self.queue(session, void, user_id=None, team_id=row.team_id)
                voided += 1
            session.delete(row)
        return voided

    # -- delivery ------------------------------------------------------------------------------

    def flush(self, client=None, *, limit: int = 5000) -> dict[str, int]:
        """Deliver queued statements that are due, in batches; returns counts sent/rejected/deferred."""
        if not self.enabled:
            return {"sent": 0, "rejected": 0, "deferred": 0}
        client = client or self._client()
        counts = {"sent": 0, "rejected": 0, "deferred": 0}
        while sum(counts.values()) < limit:
            now = utcnow()
            with self.database.session() as session:
                batch = session.scalars(
                    select(XapiStatement)
                    .where(XapiStatement.status == "queued", XapiStatement.next_attempt_at <= now)
                    .order_by(XapiStatement.created_at, XapiStatement.id)
                    .limit(BATCH)
                ).all()
            if not batch:
                break
            result = client.send([row.statement for row in batch])
            server_error = result.retryable and (result.status or 0) >= 500
            if result.retryable and not (server_error and len(batch) > 1):
                self._defer(batch, _unavailable(result), result.retry_after, give_up=server_error)
                counts["rejected"] += sum(1 for r in batch if r.attempts + 1 >= MAX_SERVER_ERRORS and server_error)
                counts["deferred"] += len(batch)
                break  # the LRS is unwell: stop for now, the backoff decides when to try again
            if result.rejected or server_error:
                # Find the bad ones: send each; the good ones go through, the bad ones are set aside.
                outcomes = client.send_each([row.statement for row in batch])
                for row, outcome in zip(batch, outcomes, strict=True):
                    if outcome.retryable:
                        self._defer(
                            [row], _unavailable(outcome), outcome.retry_after, give_up=(outcome.status or 0) >= 500
                        )
                        counts["deferred"] += 1
                    elif outcome.rejected:
                        self._mark([row], "rejected", outcome.rejected)
                        counts["rejected"] += 1
                    else:
                        self._mark([row], "sent", None)
                        counts["sent"] += 1
                continue
            self._mark(batch, "sent", None)
            counts["sent"] += len(batch)
        if any(counts.values()):
            log.info("xAPI delivery: %s", counts)
        return counts

    def _client(self):
        from assistant.records.lrs import LrsClient

        password = self.settings.lrs_password.get_secret_value() if self.settings.lrs_password else ""
        return LrsClient(self.settings.lrs_endpoint, self.settings.lrs_username or "", password)

    def _mark(self, rows, status: str, error: str | None) -> None:
        now = utcnow()
        with self.database.session() as session:
            session.execute(
                update(XapiStatement)
                .where(XapiStatement.id.in_([r.id for r in rows]), XapiStatement.status == "queued")
                .values(
                    status=status,
                    sent_at=now if status == "sent" else None,
                    error=(error or "")[:1000] or None,
                    attempts=XapiStatement.attempts + 1,
                )
            )

    def _defer(self, rows, error: str, retry_after: float | None, *, give_up: bool = False) -> None:
        """Try again later, with exponential backoff. A statement the LRS answers with a server error
        MAX_SERVER_ERRORS times on its own (`give_up`) is set aside: it is poison, not an outage."""
        now = utcnow()
        with self.database.session() as session:
            for row in rows:
                attempts = row.attempts + 1
                if give_up and attempts >= MAX_SERVER_ERRORS:
                    session.execute(
                        update(XapiStatement)
                        .where(XapiStatement.id == row.id, XapiStatement.status == "queued")
                        .values(status="rejected", attempts=attempts, error=f"{error}, {attempts} times in a row")
                    )
                    continue
                wait = dt.timedelta(seconds=min(2**attempts * 15, MAX_BACKOFF.total_seconds()))
                if retry_after:
                    wait = max(wait, dt.timedelta(seconds=retry_after))
                session.execute(
                    update(XapiStatement)
                    .where(XapiStatement.id == row.id, XapiStatement.status == "queued")
                    .values(attempts=attempts, next_attempt_at=now + wait, error=error[:1000])
                )

    def retry_now(self) -> None:
        """Make every queued statement due now (for `moment xapi flush`)."""
        with self.database.session() as session:
            session.execute(
                update(XapiStatement).where(XapiStatement.status == "queued").values(next_attempt_at=utcnow())
            )

    def status(self) -> OutboxStatus:
        with self.database.session() as session:
            counts = dict(
                session.execute(select(XapiStatement.status, func.count()).group_by(XapiStatement.status)).all()
            )
            oldest = session.scalar(select(func.min(XapiStatement.created_at)).where(XapiStatement.status == "queued"))
        return OutboxStatus(counts.get("queued", 0), counts.get("sent", 0), counts.get("rejected", 0), oldest)

    def rejected(self, limit: int = 20) -> list[XapiStatement]:
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(XapiStatement)
                    .where(XapiStatement.status == "rejected")
                    .order_by(XapiStatement.created_at.desc())
                    .limit(limit)
                ).all()
            )


def _unavailable(result) -> str:
    return f"LRS unavailable (HTTP {result.status})" if result.status else "LRS unreachable"


def _iso_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0):.2f}S"
