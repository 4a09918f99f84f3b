"""The record of every question, answer and vote, in its workspace: a question recorded as it arrives and
completed when answered (or answered by the worker when its process stopped), votes, who follows a question,
a person's recent questions. A database outage loses no record: it is spooled on the host
(`assistant.records.spool`).

    records = Interactions(database, workspaces, xapi, spool, viewers)
    received = records.receive("how do i reset my vpn token", asker)      # before Slack is acknowledged
    records.vote(interaction_id, "U123", helpful=True)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from assistant.access.tenancy import Workspaces
from assistant.access.viewers import Viewers
from assistant.answering.answers import Answer, answer_from_dict
from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import Interaction, QuestionFollower, Vote, utcnow
from assistant.records.intake import Intake
from assistant.records.spool import ANSWERING, RECEIVED, RESUMING, InteractionSpool, received_record, store_row
from assistant.records.xapi import XapiOutbox

log = logging.getLogger(__name__)

MAX_STORED_QUESTION = 4000  # characters kept in the log; the length as received is stored too


@dataclass(frozen=True)
class Asker:
    """Who asked, and where."""

    user_id: str
    surface: str  # see assistant.db.models.SURFACES
    team_id: str | None = None  # the workspace (None: the default workspace, MOMENT_DEFAULT_TEAM_ID)
    channel_id: str | None = None
    thread_ts: str | None = None
    enterprise_id: str | None = None  # the Enterprise Grid org of the workspace
    received_id: int | None = None  # the question's record made when it arrived (`Interactions.receive`)
    # The message the question came in (`assistant.records.deliveries.message_key`): its record made on arrival
    # is found by it (also one spooled on the host), and its answer is posted once under it.
    receipt_key: str | None = None

    @property
    def in_slack(self) -> bool:
        """The question arrived from Slack, written in its markup (mentions, links, emoji codes)."""
        return self.surface not in ("cli", "api")

    @property
    def answered_in_channel(self) -> bool:
        """The answer is posted where other people read it (a channel's thread): it may only use content
        for everyone, whatever the asker's own groups."""
        return self.surface in ("mention", "help_channel")


class NotTheAskerError(Exception):
    """Someone other than the asker acted on a private answer (e.g. tried to share it)."""


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Interactions:
    """Every question, answer and vote of every workspace (`team_id`: None is the default workspace)."""

    database: Database
    workspaces: Workspaces
    xapi: XapiOutbox
    spool: InteractionSpool
    access: Viewers
    # Called with (interaction id, team id) after a Helpful vote: several people's Helpful votes may teach
    # the question (`assistant.answering.verified.confirmed_by_votes`, wired by the composition root).
    on_helpful: Callable[[int, str], object] | None = None
    # Called with (interaction id, team id, user id) after a Not helpful vote: it demotes the answer's passage
    # for that question (`assistant.answering.demotions`, wired by the composition root).
    on_not_helpful: Callable[[int, str, str], object] | None = None
    # Questions received while the database could not take their record in time, on the host's disk
    # (`store_receipt` writes them when it is back; wired by the composition root).
    arrivals: Intake | None = None
    # Votes clicked while the database could not take them in time, on the host's disk (the same way).
    ballots: Intake | None = None

    def record(
        self, answer: Answer, asker: Asker, chars: int, features: dict | None, vector: dict | None = None
    ) -> int | None:
        """Record an answered question (completing the record made when it arrived, `asker.received_id`): its
        id; None when the database is unavailable (the row is spooled on this host). `vector`: a declined
        question's embedding, kept for content gaps (`assistant.records.spool.vector_row`)."""
        row = {
            **self._arrival_row(answer.question, asker),
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
        if vector is not None:
            row["vector"] = vector
        try:
            self.spool.replay(self.database, self.xapi)
            try:
                return self._store(row, asker)
            except IntegrityError:  # its record, spooled on arrival, was written by another thread meanwhile
                return self._store(row, asker)
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

    def _store(self, row: dict, asker: Asker) -> int | None:
        with self.database.session() as session:
            interaction = store_row(session, row)
            if interaction is None:
                return asker.received_id
            self.xapi.interaction(session, interaction)
            return interaction.id

    def receive(self, text: str | None, asker: Asker) -> int:
        """Record a question as it arrives, before it is acknowledged and answered (outcome `received`):
        `ask` with `asker.received_id` completes the same record, and a record left `received` (the process
        stopped while answering) is answered by the worker (`questions_left`). Raises
        `DatabaseUnavailableError`."""
        with self.database.session() as session:
            return self.receive_in(session, text, asker)

    def receive_in(self, session, text: str | None, asker: Asker) -> int:
        """`receive` within a transaction of the caller's (e.g. with the delivery's claim)."""
        interaction = _arrival(self._arrival_row(text, asker))
        session.add(interaction)
        session.flush()
        return interaction.id

    def spool_receipt(self, text: str | None, asker: Asker) -> None:
        """Keep a question's record made on arrival on the host's disk (synced) when the database cannot take
        it: written into the database it was meant for when it is back (by this process, or the next one on
        the host, or the worker), and answered by the worker if its listener did not answer it."""
        if self.arrivals is None or asker.receipt_key is None:
            raise ValueError("a question spooled on arrival needs the spool and its receipt key")
        self.arrivals.spool(self._arrival_row(text, asker))

    def store_receipt(self, row: dict) -> int | None:
        """Write a question's record spooled on arrival (none when its receipt is recorded already: by the
        late database write, or by its answer). Raises `DatabaseUnavailableError`."""
        try:
            with self.database.session() as session:
                if received_record(session, None, row["receipt_key"]) is not None:
                    return None
                interaction = _arrival(row)
                session.add(interaction)
                session.flush()
                return interaction.id
        except IntegrityError:
            return None  # recorded by another process at the same moment

    def replay_spooled(self) -> int:
        """Write the questions and votes this host spooled into the database (those meant for it)."""
        return sum(intake.replay() for intake in (self.arrivals, self.ballots) if intake is not None)

    def _arrival_row(self, text: str | None, asker: Asker) -> dict:
        raw = text or ""
        return {
            "created_at": utcnow().isoformat(),
            "user_id": asker.user_id,
            "team_id": self.workspaces.team(asker.team_id),
            "enterprise_id": asker.enterprise_id,
            "channel_id": asker.channel_id,
            "surface": asker.surface,
            "thread_ts": asker.thread_ts,
            "question": raw[:MAX_STORED_QUESTION],
            "question_chars": len(raw),
            "receipt_key": asker.receipt_key,
        }

    def posted(self, asker: Asker) -> None:
        """The answer to a question received in Slack was posted (or Slack refused it and the asker was told
        another way): the worker need not post it."""
        if asker.received_id is None and asker.receipt_key is None:
            return
        which = (
            Interaction.id == asker.received_id
            if asker.received_id is not None
            else Interaction.receipt_key == asker.receipt_key
        )
        try:
            with self.database.session() as session:
                session.execute(update(Interaction).where(which).values(unposted_since=None))
        except DatabaseUnavailableError as exc:  # the worker looks for the post by its key, and finds it
            log.warning("answer posted, not noted as posted (the worker will find the post): %s", exc)

    def answers_unposted(
        self, older_than: dt.timedelta, now: dt.datetime | None = None
    ) -> list[tuple[Asker, Answer, dt.datetime]]:
        """Answers recorded and not noted as posted `older_than` after (their process stopped between the
        record and the post, or the note could not be made), each taken by this caller alone for another
        `older_than` (a conditional UPDATE), as (asker, answer, when the question arrived)."""
        now = now or utcnow()
        taken = []
        with self.database.session() as session:
            rows = session.scalars(
                select(Interaction).where(Interaction.unposted_since <= now - older_than).limit(50)
            ).all()
            for row in rows:
                session.expunge(row)
        for row in rows:
            with self.database.session() as session:
                won = session.execute(
                    update(Interaction)
                    .where(Interaction.id == row.id, Interaction.unposted_since <= now - older_than)
                    .values(unposted_since=now)
                ).rowcount
            if won and row.answer is not None:
                answer = answer_from_dict(row.answer)
                answer.interaction_id = row.id
                taken.append((_asker_of(row), answer, row.created_at))
        return taken

    def discard_receipt(self, interaction_id: int) -> None:
        """Forget a record made on arrival that nobody will complete (it came too late to be used)."""
        with self.database.session() as session:
            session.execute(
                delete(Interaction).where(Interaction.id == interaction_id, Interaction.outcome == RECEIVED)
            )

    def start_answering(self, received_id: int) -> bool:
        """The listener takes its question (False: the worker took it first, its listener having waited too
        long). A database that cannot say lets the listener answer."""
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
                taken.append((_asker_of(row), row.question))
        return taken

    def vote(
        self, interaction_id: int, user_id: str, helpful: bool, comment: str | None = None, team_id: str | None = None
    ) -> Vote | None:
        """Record a vote; a person's second vote on the same answer replaces the first. None when the
        answer is not the workspace's. Two clicks at the same moment (in two processes) keep one vote: the
        one that loses the race for the row updates it instead."""
        vote = self._store_vote(interaction_id, user_id, helpful, comment, team_id)
        if vote is not None:
            self.count(interaction_id, user_id, helpful, team_id)
        return vote

    def cast(self, interaction_id: int, user_id: str, helpful: bool, team_id: str | None = None) -> bool:
        """Record a vote before its click is acknowledged: in the database within the intake's deadline, or
        else spooled on the host (synced; written into its database when that is back, by this process, the
        next one on the host or the worker). False when the answer is not the workspace's. Raises `OSError`
        when it can be neither written nor spooled. What it teaches is counted after (`count`)."""
        row = {"interaction_id": interaction_id, "user_id": user_id, "helpful": helpful, "team_id": team_id}
        if self.ballots is None:
            return self._store_vote(**row, comment=None) is not None
        written, vote = self.ballots.record(row)
        return not written or vote is not None

    def store_ballot(self, row: dict) -> Vote | None:
        """Write a vote cast (`cast`), again for a spooled one. Raises `DatabaseUnavailableError`."""
        return self._store_vote(row["interaction_id"], row["user_id"], row["helpful"], None, row["team_id"])

    def count(self, interaction_id: int, user_id: str, helpful: bool, team_id: str | None) -> None:
        """What a vote recorded teaches: several people's Helpful votes confirm a passage as a verified answer
        (`on_helpful`); a Not helpful vote demotes the answer's passage for that question (`on_not_helpful`)."""
        team = self.workspaces.team(team_id)
        try:
            if helpful and self.on_helpful is not None:
                self.on_helpful(interaction_id, team)
            elif not helpful and self.on_not_helpful is not None:
                self.on_not_helpful(interaction_id, team, user_id)
        except Exception:
            log.exception("a vote could not be counted (verified answers, demotions)")

    def _store_vote(
        self, interaction_id: int, user_id: str, helpful: bool, comment: str | None, team_id: str | None
    ) -> Vote | None:
        try:
            return self._vote(interaction_id, user_id, helpful, comment, team_id)
        except IntegrityError:
            return self._vote(interaction_id, user_id, helpful, comment, team_id)  # the row exists now

    def _vote(
        self, interaction_id: int, user_id: str, helpful: bool, comment: str | None, team_id: str | None
    ) -> Vote | None:
        with self.database.session() as session:
            if self.in_workspace(session, interaction_id, team_id) is None:
                return None
            vote = session.scalar(select(Vote).where(Vote.interaction_id == interaction_id, Vote.user_id == user_id))
            if vote is None:
                vote = Vote(
                    interaction_id=interaction_id,
                    user_id=user_id,
                    helpful=helpful,
                    comment=comment,
                    team_id=self.workspaces.team(team_id),
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
            found = self.in_workspace(session, interaction_id, team_id)
            if found is not None:
                _ = found.sources, found.votes  # load before the session closes
            return found

    def in_workspace(self, session, interaction_id: int, team_id: str | None) -> Interaction | None:
        """The interaction in `session`, if it is the workspace's."""
        found = session.get(Interaction, interaction_id)
        if found is None or found.team_id != self.workspaces.team(team_id):
            return None  # another workspace's question is nobody's business here
        return found

    def recent_interactions(self, user_id: str, limit: int = 5, team_id: str | None = None) -> list[Interaction]:
        """A person's latest questions in the workspace, newest first (App Home), each with only the sources
        they may see now (their groups, or the item's audience, may have changed since)."""
        with self.database.session() as session:
            rows = session.scalars(
                select(Interaction)
                .where(Interaction.user_id == user_id, Interaction.team_id == self.workspaces.team(team_id))
                .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                .limit(limit)
            ).all()
            for row in rows:
                _ = row.sources
                session.expunge(row)  # what is shown is filtered below; nothing here is written back
        audiences = {s.path: self.access.audience_of(s.path, s.audience) for row in rows for s in row.sources}
        if any(audiences.values()):
            viewer = self.access.viewer_for(user_id, self.workspaces.team(team_id))
            for row in rows:
                row.sources = [s for s in row.sources if viewer.may_see(audiences[s.path])]
        return list(rows)

    def answer_for(
        self, interaction_id: int, team_id: str | None = None, *, asked_by: str | None = None
    ) -> Answer | None:
        """The answer that was shown for an interaction of the workspace (to share it, or show it again).
        With `asked_by`, only if that person asked it (`NotTheAskerError` otherwise): an answer shown to one
        person privately is theirs to share."""
        with self.database.session() as session:
            row = self.in_workspace(session, interaction_id, team_id)
            if row is None or row.answer is None:
                return None
            if asked_by is not None and row.user_id != asked_by:
                raise NotTheAskerError(f"{asked_by} is not the asker of interaction {interaction_id}")
            answer = answer_from_dict(row.answer)
            answer.interaction_id = row.id
            return answer

    def follow_question(self, interaction_id: int, user_id: str, team_id: str | None = None) -> bool:
        """`user_id` has the same question as the interaction's asker; False when already following (or
        when the question is not the workspace's)."""
        try:
            with self.database.session() as session:
                if self.in_workspace(session, interaction_id, team_id) is None:
                    return False
                session.add(
                    QuestionFollower(
                        interaction_id=interaction_id, user_id=user_id, team_id=self.workspaces.team(team_id)
                    )
                )
        except IntegrityError:
            return False
        return True

    def followers(self, interaction_id: int | None) -> list[str]:
        """Who follows the question (`follow_question`), in the order they came."""
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

    def interactions_of(self, user_id: str) -> int:
        """How many interactions are held under `user_id`."""
        with self.database.session() as session:
            return session.scalar(select(func.count(Interaction.id)).where(Interaction.user_id == user_id)) or 0


def _asker_of(row: Interaction) -> Asker:
    """Who asked a question recorded on arrival, and where (to answer it, or post its answer)."""
    return Asker(
        user_id=row.user_id,
        surface=row.surface,
        team_id=row.team_id,
        channel_id=row.channel_id,
        thread_ts=row.thread_ts,
        enterprise_id=row.enterprise_id,
        received_id=row.id,
        receipt_key=row.receipt_key,
    )


def _arrival(row: dict) -> Interaction:
    """A question's record made on arrival (outcome `received`), from `Interactions._arrival_row`."""
    created = row["created_at"]
    return Interaction(
        **{k: v for k, v in row.items() if k not in ("created_at", "database")},
        created_at=dt.datetime.fromisoformat(created) if isinstance(created, str) else created,
        answered=False,
        outcome=RECEIVED,
        confidence=0.0,
        latency_ms=0.0,
    )
