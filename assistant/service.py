"""The service core: one object that Slack and the CLI both call. It knows nothing of Slack.

service = MomentService.from_settings(load_settings())
answer = service.ask("how do i reset my vpn token", Asker(user_id="U123", surface="cli"))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from assistant.access.audiences import WITHHELD_NOTICE, GroupDirectory, GroupSource, Viewer, visible_to_all
from assistant.access.tenancy import DEFAULT_TEAM, ContentScope, Workspaces
from assistant.answering.answers import Answer, compose, unanswerable
from assistant.answering.generation import AnswerGenerator
from assistant.answering.outline import page_outline
from assistant.answering.questions import prepare
from assistant.answering.reader import ReaderState, reader_for
from assistant.answering.retrieval import RetrievalParams, Retriever, SearchResult
from assistant.answering.verified import VerifiedAnswers, VerifyError, confirmed_by_votes, verified_answer
from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import Interaction, InteractionSource, MentorRequest, ProcessedEvent, Vote, utcnow
from assistant.learning.suggestions import CourseSuggestions
from assistant.mentoring.drafts import Drafts
from assistant.mentoring.handoff import Handoff, HandoffSettings, Notifier
from assistant.mentoring.mentors import MentorError, MentorRegistry
from assistant.records.deliveries import DeliveryClaims
from assistant.records.xapi import XapiOutbox
from assistant.settings import Settings
from indexer.store import IndexStore

if TYPE_CHECKING:
    from indexer.embedding import Embedder

log = logging.getLogger(__name__)

# A web process with a stale group cache asks Slack itself, at most this often (the worker refreshes too).
GROUP_REFRESH_RETRY_SECONDS = 60.0
# A question's outcome until it is answered: recorded on arrival, being answered by its listener, taken by
# the worker (its process stopped, or its listener never started).
RECEIVED, ANSWERING, RESUMING = "received", "answering", "resuming"
UNANSWERED = (RECEIVED, ANSWERING, RESUMING)
MAX_STORED_QUESTION = 4000  # characters kept in the log; the length as received is stored too
SCOPED_CANDIDATES = 30  # documents ranked when only part of the content may answer


@dataclass(frozen=True)
class Asker:
    """Who asked, and where."""

    user_id: str
    surface: str  # see assistant.db.models.SURFACES
    team_id: str | None = None  # the workspace (None: the default workspace, MOMENT_DEFAULT_TEAM_ID)
    channel_id: str | None = None
    thread_ts: str | None = None
    enterprise_id: str | None = None  # the Enterprise Grid org of the workspace
    received_id: int | None = None  # the question's record made when it arrived (`MomentService.receive`)

    @property
    def in_slack(self) -> bool:
        """The question arrived from Slack, written in its markup (mentions, links, emoji codes)."""
        return self.surface not in ("cli", "api")

    @property
    def answered_in_channel(self) -> bool:
        """The answer is posted where other people read it (a channel's thread): it may only use content
        for everyone, whatever the asker's own groups."""
        return self.surface in ("mention", "help_channel")


def load_embedder_for(settings: Settings) -> Embedder:
    """The embedding model the settings name, loaded as a service of those settings uses it."""
    from indexer.embedding import load_embedder

    return load_embedder(
        settings.embedding_model,
        settings.embedding_backend,
        settings.model_cache,
        settings.embedding_threads,
        spinning=not settings.reader,  # two models' spinning threads would fight for the cores
    )


class MomentService:
    """Answers questions, records every interaction and vote."""

    def __init__(
        self, settings: Settings, database: Database, retriever: Retriever, reader_state: ReaderState | None = None
    ) -> None:
        self.settings = settings
        self.reader_state = reader_state or ReaderState(
            retriever.reader is not None, "on" if retriever.reader else "off"
        )
        self.database = database
        self.retriever = retriever
        self.spool = InteractionSpool(
            settings.home / "spool" / "interactions.jsonl", settings.default_team_id, database.fingerprint
        )
        self.claims = DeliveryClaims(database, settings.home / "spool" / "claims")
        self.xapi = XapiOutbox(settings, database)
        self.mentors = MentorRegistry(database, retriever.embedder)
        self.verified = VerifiedAnswers(database, retriever.embedder)
        self.courses = CourseSuggestions(settings, database, retriever.embedder, self.xapi)  # assistant.learning
        self.drafts = Drafts(database, self.audience_of)
        self.groups = GroupDirectory(
            database,
            max_age=dt.timedelta(minutes=settings.audience_max_age_minutes),
            cache_seconds=settings.audience_cache_seconds,
        )
        self.group_source: GroupSource | None = None  # set by the Slack layer: asked when the cache is stale
        self._group_refresh_lock = threading.Lock()
        self._group_refresh_tried = float("-inf")
        self.workspaces = Workspaces(database, settings.default_team_id)
        self._operations = None
        self.generator: AnswerGenerator | None = None  # generated answers (MOMENT_LLM_URL), set by from_settings

    @classmethod
    def from_settings(
        cls, settings: Settings, *, migrate: bool = True, embedder: Embedder | None = None
    ) -> MomentService:
        """Wire the service from settings: model, index, database (migrated to the latest schema). `embedder`:
        one already loaded with these settings' model, backend and threads (several services in one process)."""
        if embedder is None:
            embedder = load_embedder_for(settings)
        reader, reader_state = reader_for(settings)
        params = RetrievalParams.calibrated(settings.home, reader=reader is not None)
        retriever = Retriever(IndexStore(settings.index_dir, keep=settings.index_keep), embedder, params, reader=reader)
        database = Database.from_settings(settings)
        service = cls(settings, database, retriever, reader_state)
        service.generator = AnswerGenerator.from_settings(settings)  # LLMConfigError: a key file unread
        if migrate:
            try:
                database.upgrade(settings.default_team_id)
                service.seed_mentors()
            except DatabaseUnavailableError as exc:
                log.warning("database not migrated: %s", exc)
        return service

    @property
    def database_fingerprint(self) -> str:
        """Which database records go to, without credentials (what a host's spool is kept for)."""
        return self.database.fingerprint

    def storage_engine(self):
        """The SQLAlchemy engine of Moment's database, for stores that keep their own tables in it (slack_sdk's
        OAuth installation and state stores): they share its migrations and connection pool."""
        return self.database.engine

    def close(self) -> None:
        """Release the database connections (a process that starts and stops several services)."""
        self.database.dispose()

    def team(self, team_id: str | None) -> str:
        """The workspace records are kept under: `team_id`, or the default workspace."""
        return team_id or self.settings.default_team_id

    def seed_mentors(self) -> int:
        """Add the mentors of mentors.yml the default workspace does not have yet (several processes may
        race)."""
        from sqlalchemy.exc import IntegrityError

        try:
            added = self.mentors.seed(self.settings.default_team_id, self.settings.mentors_file)
        except IntegrityError:
            return 0  # another process seeded them at the same moment
        except MentorError as exc:
            log.error("mentors not seeded: %s", exc)
            return 0
        if added:
            log.info("added %d mentors from %s", added, self.settings.mentors_file)
        return added

    def handoff(self, notifier: Notifier, team_id: str | None = None) -> Handoff:
        """Mentor hand-off within the workspace `team_id`, telling people through `notifier` (the Slack
        layer's)."""
        return self._handoff(notifier, self.team(team_id))

    def handoff_all(self, notifier: Notifier) -> Handoff:
        """Mentor hand-off over every workspace's requests (the worker's deadline sweep, single-token mode)."""
        return self._handoff(notifier, None)

    def _handoff(self, notifier: Notifier, team_id: str | None) -> Handoff:
        s = self.settings
        return Handoff(
            self.database,
            self.mentors,
            notifier,
            HandoffSettings(s.mentor_offer_minutes, s.mentor_max_attempts, s.mentor_follow_up_hours),
            xapi=self.xapi,
            team_id=team_id,
            visible=self.visible_sources,
        )

    # -- questions -------------------------------------------------------------------------------

    def ask(
        self,
        text: str | None,
        asker: Asker,
        *,
        types: list[str] | None = None,
        tags: list[str] | None = None,
        folders: list[str] | None = None,
        log_interaction: bool = True,
        viewer: Viewer | None = None,
    ) -> Answer:
        """Answer a question from the content the asker's workspace sees (and, with `folders`, only under
        those folders), and record the interaction in that workspace.

        Only content the asker may see is searched (`assistant.access.audiences`): their user groups are looked up
        when the index has restricted items at all; an answer posted in a channel uses content for everyone
        only. `viewer` answers as someone else would see it (`moment ask --as`).

        Raises `IndexMissingError` / `IndexMismatchError` when there is no usable index (after
        recording the attempt). A database outage never loses the record: it is spooled to disk and
        written when the database is back.
        """
        started = time.perf_counter()
        question = prepare(text, self.settings.max_question_chars, slack_markup=asker.in_slack)
        features = query_vector = None
        if viewer is None:
            if asker.answered_in_channel:
                viewer = Viewer.public()
            else:
                viewer = lambda: self.viewer_for(asker.user_id, self.team(asker.team_id))  # noqa: E731 (only when needed)
        if not question.searchable:
            answer = unanswerable(question)
        else:
            try:
                scope = self.workspaces.content_scope(self.team(asker.team_id)).within(folders or ())
                # Scoped answers are chosen from more candidates, so that content outside the scope
                # can't crowd out everything inside it.
                k = 10 if scope.everything else SCOPED_CANDIDATES
                result = within_scope(
                    self.retriever.search(question.text, k=k, types=types, tags=tags, viewer=viewer), scope
                )
            except Exception:
                answer = Answer(question=question.text, answered=False, confidence=0.0, outcome="error")
                answer.latency_ms = (time.perf_counter() - started) * 1000
                if log_interaction:
                    self._record(answer, asker, len(question.original), None)
                raise
            keywords = self.retriever.version().keywords
            taught = self._verified(question.text, asker, result, viewer, scope)
            answer = taught or compose(
                question,
                result,
                self.retriever.params,
                content_base_url=self.settings.content_base_url,
                term_ids_of=keywords.passage_terms,
            )
            if answer.answered and not taught:
                answer.outline = page_outline(
                    result,
                    self.retriever.version(),
                    keywords.passage_terms,
                    content_base_url=self.settings.content_base_url,
                )
            unknown = result.viewer is not None and not result.viewer.known and result.hidden_documents
            if unknown and self._withheld_from(answer, question, result, types, tags):
                answer.notices.append(WITHHELD_NOTICE)
                log.warning("restricted content withheld from %s: %s", asker.user_id, result.viewer.why_unknown)
            features, query_vector = {k: round(v, 4) for k, v in result.features.items()}, result.query_vector
            if answer.answered and self.generator is not None and not taught:  # people outrank the model
                answer.generated = self._generated(question.text, result, asker)
        answer.latency_ms = (time.perf_counter() - started) * 1000
        if log_interaction:
            answer.interaction_id = self._record(answer, asker, len(question.original), features)
            answer.course = self.courses.suggestion_for(  # a course, after repeated questions on its topic
                asker.user_id, self.team(asker.team_id), asker.surface, answer.interaction_id, query_vector, viewer
            )
        return answer

    def _generated(self, text: str, result: SearchResult, asker: Asker):
        """A generated answer from the passages the asker was answered from (after the Slack
        acknowledgement, like all answering), unless the workspace switched them off; None when the model
        does not know or its quotes cannot be verified (the extractive answer stands)."""
        from assistant.answering.answers import source_of
        from assistant.answering.generation import generate_for

        try:
            if not self.workspaces.generated_answers(self.team(asker.team_id)):
                return None
        except Exception:
            log.exception("generated answers: the workspace's switch could not be read")
            return None
        version = self.retriever.version()
        term_ids_of = version.keywords.passage_terms
        base_url = self.settings.content_base_url
        return generate_for(
            self.generator,
            text,
            result,
            version=version,
            term_ids_of=term_ids_of,
            source_of=lambda hit: source_of(hit, result, term_ids_of=term_ids_of, content_base_url=base_url),
        ).generated

    def _verified(self, text: str, asker: Asker, result, viewer, scope) -> Answer | None:
        """The answer from a section taught for this question (`assistant.answering.verified`), when one is
        close enough and the asker may see it; else None (answered as usual)."""
        if result.query_vector is None:
            return None
        version = self.retriever.version()

        def may_see(audience) -> bool:
            who = viewer() if callable(viewer) else viewer
            return who.may_see(audience)

        try:
            match = self.verified.match(self.team(asker.team_id), text, result.query_vector, version, may_see=may_see)
        except DatabaseUnavailableError as exc:  # an outage or read-only database, which recording reports too
            log.info("verified answers could not be consulted (%s); answering as usual", exc)
            return None
        except Exception:
            log.exception("verified answers could not be consulted; answering as usual")
            return None
        if match is None or not scope.allows(match.section.path):
            return None
        return verified_answer(text, match, version, result, self.settings.content_base_url)

    def teach(
        self,
        question: str,
        path: str,
        heading: str | None,
        user_id: str,
        *,
        team_id: str | None = None,
        interaction_id: int | None = None,
    ):
        """Teach `question` to be answered from the section `heading` of item `path` (`moment verify`, a
        mentor's or admin's *This answered it* / *Pick the right section*); audited. Raises `VerifyError`."""
        team = self.team(team_id)
        try:
            pair = self.verified.teach(
                team, question, path, heading, user_id, self.retriever.version(), interaction_id=interaction_id
            )
        except VerifyError as exc:
            self.audit(user_id, "verify", False, f"{path} › {heading or ''}: {exc}"[:2000], team_id=team)
            raise
        where = " › ".join([path, *pair.heading_path])
        self.audit(user_id, "verify", True, f"#{pair.id} {pair.question[:300]!r} -> {where}", team_id=team)
        return pair

    def verified_pairs(self, team_id: str | None = None) -> list[tuple]:
        """Every taught pair (of the workspace `team_id`; None: of every workspace) with its state against the
        serving index and the owner of its item: (pair, status, owner or None) (`moment verified list`)."""
        version = self.retriever.version()
        rows = []
        for pair in self.verified.pairs(team_id):
            doc = version.by_path.get(pair.path)
            rows.append((pair, self.verified.status(pair, version), doc.meta.owner if doc else None))
        return rows

    def mentors_of_interaction(self, interaction_id: int, team_id: str | None = None) -> set[str]:
        """The mentors who took a request for this interaction's question (who may teach its answer)."""
        with self.database.session() as session:
            owners = session.scalars(
                select(MentorRequest.owner_id).where(
                    MentorRequest.interaction_id == interaction_id, MentorRequest.team_id == self.team(team_id)
                )
            )
            return {owner for owner in owners if owner}

    def sections_of(self, path: str) -> list[tuple[str, ...]]:
        """The heading paths of the indexed item at `path`, in page order (empty: not indexed)."""
        version = self.retriever.version()
        doc = version.by_path.get(path)
        if doc is None:
            return []
        stored = version.chunks(list(range(doc.chunk_start, doc.chunk_start + doc.chunk_count)))
        return list(dict.fromkeys(stored[i].chunk.heading_path for i in sorted(stored)))

    def forget_verified(self, pair_id: int, user_id: str, *, team_id: str | None = None):
        """Remove a taught pair of the workspace (`moment verified remove`); audited. None: no such pair."""
        team = self.team(team_id)
        pair = self.verified.remove(pair_id, team)
        detail = f"#{pair_id} {pair.question[:300]!r}" if pair else f"#{pair_id}: no such verified answer"
        self.audit(user_id, "verified_remove", pair is not None, detail, team_id=team)
        return pair

    # -- audiences ------------------------------------------------------------------------------

    def _withheld_from(self, answer: Answer, question, result, types, tags) -> bool:
        """The asker's groups are unknown and restricted items were left out: would the answer have shown
        one of them without the filter? (Ranked again over everything, with the question's vector and without
        the reader; only while groups cannot be learnt.) Telling the asker "something was withheld" on every
        answer would be noise; told only here, they know to ask again later. A non-member learns no more than
        that some restricted item matched their question, never which."""
        try:
            everything = self.retriever.search(
                question.text, k=10, types=types, tags=tags, query_vector=result.query_vector, read=False
            )
        except Exception:
            log.exception("could not tell whether restricted content was withheld")
            return True  # say so rather than not
        unfiltered = compose(question, everything, self.retriever.params)
        shown = {s.path for s in answer.sources}
        return any(s.audience and s.path not in shown for s in unfiltered.sources)

    def viewer_for(self, user_id: str, team_id: str | None = None) -> Viewer:
        """What `user_id` may see: their user groups from the shared cache. A stale or missing cache is read
        from Slack again first (when a `group_source` is set, at most once a minute per process); when that
        fails too, the viewer is unknown and sees only content for everyone."""
        viewer = self.groups.viewer(user_id, team_id)
        if viewer.known or self.group_source is None:
            return viewer
        with self._group_refresh_lock:
            viewer = self.groups.viewer(user_id, team_id)  # another thread may have just read them
            if viewer.known or time.monotonic() - self._group_refresh_tried < GROUP_REFRESH_RETRY_SECONDS:
                return viewer
            self._group_refresh_tried = time.monotonic()
            try:
                refreshed = self.group_source.refresh(team_id)
            except Exception:
                log.exception("user groups could not be read")
                refreshed = False
        return self.groups.viewer(user_id, team_id) if refreshed else viewer

    def audience_names(self) -> set[str] | None:
        """Every user group some indexed item is restricted to (None: no index to say)."""
        try:
            version = self.retriever.version()
        except Exception:
            return None
        # People named one by one (synced sources) are not user groups to read from Slack.
        return {
            name
            for audience in version.restricted.values()
            for name in audience
            if not (name[:1] in "UW" and name.isupper())
        }

    def audience_of(self, path: str, recorded: Iterable[str] | None = None) -> tuple[str, ...]:
        """Who may see the item at `path` now: its audience in the serving index, or, for an item no longer
        indexed, the audience recorded when it was shown."""
        try:
            doc = self.retriever.version().by_path.get(path)
        except Exception:
            doc = None
        if doc is not None:
            return doc.meta.audience
        return tuple(recorded or ())

    def visible_sources(self, sources: list[dict], user_ids: Iterable[str], team_id: str | None = None) -> list[dict]:
        """The sources (as stored with an answer) that every one of `user_ids` may see now (a mentor's context:
        the asker and the mentor)."""
        audiences = [self.audience_of(s.get("path", ""), s.get("audience")) for s in sources]
        if not any(audiences):
            return sources
        viewers = [self.viewer_for(u, team_id) for u in dict.fromkeys(user_ids)]
        return [s for s, a in zip(sources, audiences, strict=True) if visible_to_all(a, viewers)]

    def _record(self, answer: Answer, asker: Asker, chars: int, features: dict | None) -> int | None:
        row = {
            "created_at": utcnow().isoformat(),
            "user_id": asker.user_id,
            "team_id": self.team(asker.team_id),
            "enterprise_id": asker.enterprise_id,
            "channel_id": asker.channel_id,
            "surface": asker.surface,
            "thread_ts": asker.thread_ts,
            "question": answer.question[:MAX_STORED_QUESTION],
            "question_chars": chars,
            "answered": answer.answered,
            "outcome": answer.outcome,
            "confidence": float(answer.confidence),
            "latency_ms": float(answer.latency_ms),
            "index_version": answer.index_version,
            "features": features,
            "answer": answer.to_dict(),
            "sources": [
                {
                    "rank": s.rank,
                    "path": s.path,
                    "title": s.title,
                    "type": s.type,
                    "score": s.score,
                    "url": s.url,
                    "stale": s.stale,
                    "audience": list(s.audience) or None,
                }
                for s in answer.sources
            ],
        }
        if asker.received_id is not None:
            row["received_id"] = asker.received_id
        try:
            self.spool.replay(self.database, self.xapi)
            with self.database.session() as session:
                interaction = _store(session, row)
                if interaction is None:
                    return asker.received_id
                self.xapi.interaction(session, interaction)
                return interaction.id
        except DatabaseUnavailableError as exc:
            try:
                self.spool.append(row)
            except OSError as spool_exc:  # a read-only data folder: the answer is given, nothing is kept
                log.error(
                    "interaction not recorded: %s; nor spooled (%s: %s): give this user write access to MOMENT_HOME",
                    exc,
                    spool_exc.strerror,
                    spool_exc.filename,
                )
                return None
            log.error("interaction spooled, database unavailable: %s", exc)
            return None

    def receive(self, text: str | None, asker: Asker) -> int:
        """Record a question as it arrives, before it is acknowledged and answered (outcome `received`):
        `ask` with `asker.received_id` completes the same record, and a record left `received` (the process
        stopped while answering) is answered by the worker (`questions_left`). Raises
        `DatabaseUnavailableError`."""
        with self.database.session() as session:
            return self.receive_in(session, text, asker)

    def receive_in(self, session, text: str | None, asker: Asker) -> int:
        """`receive` within a transaction of the caller's (e.g. with the delivery's claim)."""
        raw = text or ""
        interaction = Interaction(
            user_id=asker.user_id,
            team_id=self.team(asker.team_id),
            enterprise_id=asker.enterprise_id,
            channel_id=asker.channel_id,
            surface=asker.surface,
            thread_ts=asker.thread_ts,
            question=raw[:MAX_STORED_QUESTION],
            question_chars=len(raw),
            answered=False,
            outcome=RECEIVED,
            confidence=0.0,
            latency_ms=0.0,
        )
        session.add(interaction)
        session.flush()
        return interaction.id

    def discard_receipt(self, interaction_id: int) -> None:
        """Forget a record made on arrival that nobody will complete (it came too late to be used)."""
        with self.database.session() as session:
            session.execute(
                delete(Interaction).where(Interaction.id == interaction_id, Interaction.outcome == RECEIVED)
            )

    def start_answering(self, received_id: int) -> bool:
        """The listener takes its question (False: the worker took it first, its listener having waited too
        long). A database that cannot say lets the listener answer."""
        from sqlalchemy import update

        try:
            with self.database.session() as session:
                return bool(
                    session.execute(
                        update(Interaction)
                        .where(Interaction.id == received_id, Interaction.outcome == RECEIVED)
                        .values(outcome=ANSWERING)
                    ).rowcount
                )
        except DatabaseUnavailableError:
            return True

    def questions_left(self, older_than: dt.timedelta, now: dt.datetime | None = None) -> list[tuple[Asker, str]]:
        """Questions recorded on arrival and never answered, each taken by this caller alone (a conditional
        UPDATE), as (asker, raw question): not yet taken by a listener `older_than` after arriving, or taken
        and unfinished three times as long after (its process stopped)."""
        from sqlalchemy import or_, update

        now = now or utcnow()
        taken: list[tuple[Asker, str]] = []
        with self.database.session() as session:
            rows = session.scalars(
                select(Interaction)
                .where(
                    or_(
                        (Interaction.outcome == RECEIVED) & (Interaction.created_at <= now - older_than),
                        (Interaction.outcome == ANSWERING) & (Interaction.created_at <= now - 3 * older_than),
                    )
                )
                .limit(50)
            ).all()
        for row in rows:
            with self.database.session() as session:
                won = session.execute(
                    update(Interaction)
                    .where(Interaction.id == row.id, Interaction.outcome == row.outcome)
                    .values(outcome=RESUMING)
                ).rowcount
            if won:
                asker = Asker(
                    user_id=row.user_id,
                    surface=row.surface,
                    team_id=row.team_id,
                    channel_id=row.channel_id,
                    thread_ts=row.thread_ts,
                    enterprise_id=row.enterprise_id,
                    received_id=row.id,
                )
                taken.append((asker, row.question))
        return taken

    def answer_for(
        self, interaction_id: int, team_id: str | None = None, *, asked_by: str | None = None
    ) -> Answer | None:
        """The answer that was shown for an interaction of the workspace (to share it, or show it again).
        With `asked_by`, only if that person asked it (`NotTheAskerError` otherwise): an answer shown to one
        person privately is theirs to share."""
        from assistant.answering.answers import answer_from_dict

        with self.database.session() as session:
            row = self._interaction(session, interaction_id, team_id)
            if row is None or row.answer is None:
                return None
            if asked_by is not None and row.user_id != asked_by:
                raise NotTheAskerError(f"{asked_by} is not the asker of interaction {interaction_id}")
            answer = answer_from_dict(row.answer)
            answer.interaction_id = row.id
            return answer

    def ask_in_thread(self, text: str | None, previous: str | None, asker: Asker, **kwargs) -> Answer:
        """A follow-up in a thread, searched with the thread's earlier question when it leans on it
        ("what about out of hours?")."""
        from assistant.answering.followups import with_context

        return self.ask(with_context(text or "", previous), asker, **kwargs)

    def help_channels(self, team_id: str | None = None):
        """The workspace's help channels and their answer queues."""
        from assistant.helpchannels.helpchannels import HelpChannels

        return HelpChannels(self.database, self.settings.channel_min_confidence, self.team(team_id))

    def follow_question(self, interaction_id: int, user_id: str, team_id: str | None = None) -> bool:
        """`user_id` has the same question as the interaction's asker; False when already following (or
        when the question is not the workspace's)."""
        from sqlalchemy.exc import IntegrityError

        from assistant.db.models import QuestionFollower

        try:
            with self.database.session() as session:
                if self._interaction(session, interaction_id, team_id) is None:
                    return False
                session.add(
                    QuestionFollower(interaction_id=interaction_id, user_id=user_id, team_id=self.team(team_id))
                )
        except IntegrityError:
            return False
        return True

    def followers(self, interaction_id: int | None) -> list[str]:
        from assistant.db.models import QuestionFollower

        if interaction_id is None:
            return []
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(QuestionFollower.user_id)
                    .where(QuestionFollower.interaction_id == interaction_id)
                    .order_by(QuestionFollower.id)
                ).all()
            )

    # -- operations and reports ------------------------------------------------------------------

    def index_operations(self):
        """Indexing, re-index runs and publication for this service's index (one per service, so that its
        runs queue on one lock in this process)."""
        if self._operations is None:
            from assistant.operations.operations import IndexOperations

            self._operations = IndexOperations(
                self.settings, self.database, self.retriever.store, self.retriever.embedder
            )
        return self._operations

    def status(self, team_id: str | None = None, today: dt.date | None = None):
        """What `/moment status` and an admin's App Home show (`assistant.operations.operations.collect_status`)."""
        from assistant.operations.operations import collect_status

        return collect_status(self, self.index_operations(), today=today, team_id=team_id)

    def report(
        self, days: int = 7, now: dt.datetime | None = None, team_id: str | None = None, *, for_everyone: bool = False
    ):
        """The workspace's L&D report for `days` days up to `now` (`assistant.records.reports.build_report`).
        `for_everyone`: a report posted where non-admins read it (the weekly digest) names no item restricted
        to some groups."""
        from assistant.records.reports import build_report

        hidden = None
        if for_everyone:
            hidden = lambda path, recorded: bool(self.audience_of(path, recorded))  # noqa: E731
        return build_report(
            self.database, days, self.retriever.embedder, now=now, hidden=hidden, team_id=self.team(team_id)
        )

    # -- insights (the admin pages) ---------------------------------------------------------------

    def content_catalogue(self, today: dt.date | None = None) -> list:
        """Every item of the index as the content page lists it (`assistant.insights.effectiveness`); empty
        while no index is loaded."""
        from assistant.insights.effectiveness import CatalogueItem

        try:
            documents = self.retriever.version().documents
        except Exception as exc:  # no index yet: the page still shows what answers came from
            log.warning("content page without the index: %s", exc)
            return []
        return [
            CatalogueItem(d.path, d.meta.title, d.meta.type, d.meta.reviewed, d.meta.is_stale(today)) for d in documents
        ]

    def overview(self, period, team_id: str | None = None):
        """The overview figures of `period` against the period before (`assistant.insights.overview`)."""
        from assistant.insights import overview

        return overview(self.database, self.team(team_id), period)

    def content_effectiveness(self, period, team_id: str | None = None, *, sort: str = "worst", descending=False):
        """Every content item and how it did in `period` (`assistant.insights.content_items`)."""
        from assistant.insights import content_items

        catalogue = self.content_catalogue(period.end.date())
        return content_items(self.database, self.team(team_id), period, catalogue, sort=sort, descending=descending)

    def question_privacy(self):
        """What admins may see of people's questions (`assistant.insights.Privacy`)."""
        from assistant.insights import Privacy
        from assistant.records.xapi import pseudonym_key

        s = self.settings
        return Privacy(show_text=s.web_question_text, pseudonymise=s.xapi_pseudonymise, key=pseudonym_key(s))

    def questions(self, period, team_id: str | None = None, *, show: str = "all", before: int | None = None):
        """A page of the period's questions, newest first (`assistant.insights.question_page`)."""
        from assistant.insights import question_page

        return question_page(
            self.database, self.team(team_id), period, self.question_privacy(), show=show, before=before
        )

    def all_questions(self, period, team_id: str | None = None, *, show: str = "all"):
        """Every question of the period, streamed (`assistant.insights.questions.all_questions`)."""
        from assistant.insights.questions import all_questions

        return all_questions(self.database, self.team(team_id), period, self.question_privacy(), show=show)

    def mentor_figures(self, period, team_id: str | None = None):
        """Every mentor and how they responded in `period` (`assistant.insights.mentor_figures`)."""
        from assistant.insights import mentor_figures

        return mentor_figures(self.database, self.team(team_id), period)

    def web_signin_states(self, expiration_seconds: int):
        """slack_sdk's OAuth state store over the `web_signin_states` table: one-time states with an expiry,
        for Sign in with Slack (the install flow keeps its own)."""
        from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

        return SQLAlchemyOAuthStateStore(
            expiration_seconds=expiration_seconds, engine=self.database.engine, table_name="web_signin_states"
        )

    # -- operations ------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, str]]:
        """Whether this process can answer: the database reachable and taking writes, and an index loaded
        (with what failed). It may take as long as the database does: `/healthz` runs it with a deadline."""
        checks: dict[str, str] = {}
        ok = True
        try:
            self.database.check_writable()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = str(exc)
            ok = False
        try:
            version = self.retriever.version()
            checks["index"] = "ok"
            checks["index_version"] = version.version
            checks["chunks"] = str(version.size)
        except Exception as exc:
            checks["index"] = str(exc)
            ok = False
        return ok, checks

    def warm_up(self) -> None:
        """Load the index now, not on the first question (raises what loading it raises)."""
        self.retriever.version()

    def documents_past_review(self, today: dt.date) -> list:
        """The indexed documents with an owner and a review date that has passed."""
        return [d for d in self.retriever.version().documents if d.meta.owner and d.meta.is_stale(today)]

    def help_channels_waiting(self) -> list[tuple[str, str]]:
        """(team id, channel id) of every help channel with queued messages and nobody answering them."""
        from assistant.helpchannels.helpchannels import waiting_channels

        return waiting_channels(self.database)

    def apply_retention(self, now: dt.datetime | None = None) -> int:
        """Delete interactions older than MOMENT_RETENTION_DAYS (their sources and votes go with them) and
        finished mentor requests as old, and de-duplication keys older than 30 days; the interactions deleted."""
        now = now or utcnow()
        deleted = 0
        with self.database.session() as session:
            session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < now - dt.timedelta(days=30)))
            if self.settings.retention_days:
                cutoff = now - dt.timedelta(days=self.settings.retention_days)
                old = session.scalars(select(Interaction.id).where(Interaction.created_at < cutoff)).all()
                for start in range(0, len(old), 500):
                    ids = old[start : start + 500]
                    for row in session.scalars(select(Interaction).where(Interaction.id.in_(ids))).all():
                        session.delete(row)  # sources and votes go with it (ORM cascade)
                session.execute(
                    delete(MentorRequest).where(
                        MentorRequest.created_at < cutoff, MentorRequest.status.in_(("resolved", "cancelled"))
                    )
                )
                deleted = len(old)
        if deleted:
            log.info("retention: deleted %d interactions older than %d days", deleted, self.settings.retention_days)
        return deleted

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything held about a person (`assistant.records.privacy.forget_user`)."""
        from assistant.records.privacy import forget_user

        return forget_user(self.database, self.xapi, user_id)

    def interactions_of(self, user_id: str) -> int:
        """How many interactions are held under `user_id`."""
        from sqlalchemy import func

        with self.database.session() as session:
            return session.scalar(select(func.count(Interaction.id)).where(Interaction.user_id == user_id)) or 0

    def audit(
        self,
        user_id: str,
        action: str,
        allowed: bool,
        detail: str | None = None,
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> None:
        """Write an audit event in the workspace's log (admin commands, installs, uninstalls)."""
        from assistant.db.models import AuditEvent

        with self.database.session() as session:
            session.add(
                AuditEvent(
                    user_id=user_id,
                    action=action,
                    allowed=allowed,
                    detail=detail,
                    team_id=self.team(team_id),
                    enterprise_id=enterprise_id,
                )
            )

    # -- Slack deliveries ---------------------------------------------------------------------

    def claim_delivery(self, *keys: str) -> bool:
        """True the first time `keys` (a Slack event id, the message it carries, a digest's week...) are
        claimed by any process sharing the database (or of this host, while the database is unavailable:
        `assistant.records.deliveries`). Slack retries events, may deliver one to two processes, and one
        message under several event ids: only the claimer answers."""
        return self.claims.claim(*keys)[0]

    def release_delivery(self, key: str) -> None:
        """Give back a claim whose delivery failed, so that a later attempt can make it."""
        self.claims.release(key)

    # -- votes -----------------------------------------------------------------------------------

    def vote(
        self, interaction_id: int, user_id: str, helpful: bool, comment: str | None = None, team_id: str | None = None
    ) -> Vote | None:
        """Record a vote; a person's second vote on the same answer replaces the first. None when the
        answer is not the workspace's. Two clicks at the same moment (in two processes) keep one vote: the
        one that loses the race for the row updates it instead."""
        from sqlalchemy.exc import IntegrityError

        try:
            vote = self._vote(interaction_id, user_id, helpful, comment, team_id)
        except IntegrityError:
            vote = self._vote(interaction_id, user_id, helpful, comment, team_id)  # the row exists now
        if vote is not None and helpful:
            try:  # several people's Helpful votes confirm a passage as a verified answer
                confirmed_by_votes(self, interaction_id, self.team(team_id))
            except Exception:
                log.exception("votes could not be counted towards a verified answer")
        return vote

    def _vote(
        self, interaction_id: int, user_id: str, helpful: bool, comment: str | None, team_id: str | None
    ) -> Vote | None:
        with self.database.session() as session:
            if self._interaction(session, interaction_id, team_id) is None:
                return None
            vote = session.scalar(select(Vote).where(Vote.interaction_id == interaction_id, Vote.user_id == user_id))
            if vote is None:
                vote = Vote(
                    interaction_id=interaction_id,
                    user_id=user_id,
                    helpful=helpful,
                    comment=comment,
                    team_id=self.team(team_id),
                )
                session.add(vote)
            else:
                vote.helpful = helpful
                if comment is not None or helpful:
                    vote.comment = comment
            session.flush()
            interaction = session.get(Interaction, interaction_id)
            if interaction is not None:
                self.xapi.vote(session, vote, interaction)
            return vote

    def interaction(self, interaction_id: int, team_id: str | None = None) -> Interaction | None:
        """One interaction of the workspace, with its sources and votes."""
        with self.database.session() as session:
            found = self._interaction(session, interaction_id, team_id)
            if found is not None:
                _ = found.sources, found.votes  # load before the session closes
            return found

    def _interaction(self, session, interaction_id: int, team_id: str | None) -> Interaction | None:
        found = session.get(Interaction, interaction_id)
        if found is None or found.team_id != self.team(team_id):
            return None  # another workspace's question is nobody's business here
        return found

    def recent_interactions(self, user_id: str, limit: int = 5, team_id: str | None = None) -> list[Interaction]:
        """A person's latest questions in the workspace, newest first (App Home), each with only the sources
        they may see now (their groups, or the item's audience, may have changed since)."""
        with self.database.session() as session:
            rows = session.scalars(
                select(Interaction)
                .where(Interaction.user_id == user_id, Interaction.team_id == self.team(team_id))
                .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                .limit(limit)
            ).all()
            for row in rows:
                _ = row.sources
                session.expunge(row)  # what is shown is filtered below; nothing here is written back
        audiences = {s.path: self.audience_of(s.path, s.audience) for row in rows for s in row.sources}
        if any(audiences.values()):
            viewer = self.viewer_for(user_id, self.team(team_id))
            for row in rows:
                row.sources = [s for s in row.sources if viewer.may_see(audiences[s.path])]
        return list(rows)


def within_scope(result: SearchResult, scope: ContentScope) -> SearchResult:
    """Keep only the documents the scope allows (a workspace's content, a help channel's folders). When
    the best match was outside the scope, the confidence was about it, not about anything inside: the
    question is declined (and the asker offered a mentor)."""
    if scope.everything or not result.hits:
        return result
    inside = [hit for hit in result.hits if scope.allows(hit.doc.path)]
    if inside and inside[0] is result.hits[0]:
        return dataclasses.replace(result, hits=inside)
    return dataclasses.replace(result, hits=inside, confidence=0.0)


def _store(session, row: dict) -> Interaction | None:
    """Write a recorded interaction: the question's record made on arrival completed (`received_id`), or a
    new one (None: the record was completed already)."""
    received_id = row.get("received_id")
    received = session.get(Interaction, received_id) if received_id is not None else None
    if received is not None and received.outcome not in UNANSWERED:
        return None  # completed already (by the worker, or by an earlier replay): never two records
    if received is None:
        interaction = _interaction_from_row(row)
        session.add(interaction)
        session.flush()
        return interaction
    for field in (
        "question",
        "question_chars",
        "answered",
        "outcome",
        "confidence",
        "latency_ms",
        "index_version",
        "features",
        "answer",
    ):
        setattr(received, field, row[field])
    received.sources = [InteractionSource(**source) for source in row["sources"]]
    session.flush()
    return received


def _interaction_from_row(row: dict) -> Interaction:
    fields = {k: v for k, v in row.items() if k not in ("sources", "received_id")}
    fields["created_at"] = dt.datetime.fromisoformat(fields["created_at"])
    interaction = Interaction(**fields)
    interaction.sources = [InteractionSource(**s) for s in row["sources"]]
    return interaction


class NotTheAskerError(Exception):
    """Someone other than the asker acted on a private answer (e.g. tried to share it)."""


class InteractionSpool:
    """Interactions that could not be written because the database was down, kept on local disk
    until the next successful write (append-only JSON lines, replayed under a file lock)."""

    def __init__(self, path: Path, default_team_id: str = DEFAULT_TEAM, database: str | None = None) -> None:
        self.path = path
        self.default_team_id = default_team_id  # the workspace of rows spooled before workspaces existed
        # The fingerprint of the database rows are spooled for (`Database.fingerprint`): rows spooled for
        # another database stay in the spool, never written into this one.
        self.database = database

    def append(self, row: dict) -> None:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {**row, "database": self.database}
        with FileLock(str(self.path) + ".lock"), self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _ours(self, row: dict) -> bool:
        """Spooled for this database (rows spooled before spools named their database: for the one configured)."""
        return row.get("database") in (None, self.database)

    def pending(self) -> int:
        try:
            return sum(1 for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip())
        except FileNotFoundError:
            return 0

    def _current(self, row: dict) -> dict:
        if "enterprise_id" not in row:  # spooled by a version before workspaces: the default workspace's
            row["team_id"] = self.default_team_id
        return row

    def replay(self, database: Database, xapi: XapiOutbox | None = None) -> int:
        """Write the interactions spooled for `database` in one transaction, then take them out of the spool
        (only once committed). Rows spooled for another database stay."""
        if not self.path.exists():
            return 0
        from filelock import FileLock

        with FileLock(str(self.path) + ".lock"):
            try:
                rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except FileNotFoundError:
                return 0
            mine = [row for row in rows if self._ours(row)]
            others = [row for row in rows if not self._ours(row)]
            if not mine:
                return 0
            with database.session() as session:
                interactions = [
                    _store(session, self._current({k: v for k, v in row.items() if k != "database"})) for row in mine
                ]
                for interaction in filter(None, interactions):
                    if xapi is not None:
                        xapi.interaction(session, interaction)
            if others:
                log.warning("%d spooled interactions belong to another database; kept in %s", len(others), self.path)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps(row) + "\n" for row in others), encoding="utf-8")
                os.replace(tmp, self.path)
            else:
                self.path.unlink()
            log.info("wrote %d spooled interactions", len(mine))
        return len(mine)
