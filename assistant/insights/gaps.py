"""Content gaps with owners: the one way Moment groups the questions its content did not answer well.

The questions are those declined (not answered), answered but voted not helpful (👎 and no 👍), and those
handed to a mentor (`gap_inputs`). `Gaps.refresh` takes the ones not in a gap yet with their embeddings by
Moment's own model (a declined question keeps the one it was searched with; the others are embedded now),
puts each next to an existing gap when it is close enough to the gap's centroid, and clusters the rest
(`clustering`: scikit-learn's `AgglomerativeClustering` partition, average linkage, a cosine distance
threshold). A gap's label is its top terms by class-based TF-IDF (each gap's questions against every other
gap's, with Moment's stop words), or its most central question when no term is shared by enough of them.

An admin gives a gap to a content owner (`assign`), closes it (`close`) or opens it again (`reopen`); every
change is kept in the gap's history. After the content changes, `recheck` re-asks a gap's questions against
the new index (without recording them) and keeps "now answered k of n"; a gap whose questions are all
answered now is closed by Moment. A new question that joins a closed gap opens it again.

    gaps = Gaps(database, embedder)
    gaps.refresh("T0001")                                  # RefreshResult(new_questions=12, joined=4, ...)
    for gap in gaps.list("T0001", status="open"):          # [GapSummary(label="parental leave · weeks", ...)]
        print(gap.id, gap.label, gap.size, gap.trend)
    gaps.assign("T0001", gap.id, owner_id="U024BE7LH", actor="U0ADMIN01")
    gaps.detail("T0001", gap.id).history                   # [GapEventView(action="created"), ...]
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import and_, delete, exists, func, insert, or_, select, update

from assistant.db.database import Database
from assistant.db.gap_models import Gap, GapEvent, GapQuestion
from assistant.db.models import Interaction, utcnow
from assistant.errors import MomentError
from assistant.insights.clustering import JOIN_SIMILARITY, centroid, clusters, label_clusters, nearest, shorten
from assistant.insights.gap_inputs import answered_now, model_key, pending_questions, question_vectors
from assistant.insights.gap_views import (
    GapDetail,
    GapEventView,
    GapQuestionView,
    GapSummary,
    RecheckResult,
    RefreshResult,
)
from indexer.store import IndexMissingError

if TYPE_CHECKING:
    from assistant.insights.questions import Privacy

STATUSES = ("open", "assigned", "closed")
ACTIVE = ("open", "assigned")  # what `list` shows when no status is given
MOMENT = "moment"  # the actor of what Moment did itself
FORGOTTEN = "forgotten"  # the actor (or owner) of history whose person was forgotten

# Questions clustered in one refresh (their pairwise distances take 4 bytes x len², 400 MB at 10,000); the rest
# wait for the next refresh, when most join the gaps this one made.
MAX_CLUSTERED = 12_000
# Questions re-asked per gap after the content changed (the most recent ones).
RECHECK_LIMIT = 25
EXAMPLES = 3
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


class GapError(MomentError):
    """A gap that is not the workspace's, an owner that is not a Slack user id, or a change its status forbids."""


class GapNotFound(GapError):
    """No gap of that id in the workspace (none at all, or another workspace's)."""


# -- the store ---------------------------------------------------------------------------------------------


class Gaps:
    """A workspace's content gaps: made by `refresh`, read by `list` and `detail`, changed by `assign`, `close`,
    `reopen` and `recheck`; `update` refreshes and re-asks as the worker does. `embedder` (Moment's,
    `indexer.embedding`) is needed by `refresh`; `ask_again(interaction)` (an `Answer`, nothing recorded) and
    `index_version()` (the serving index's) by `update`."""

    def __init__(
        self,
        database: Database,
        embedder=None,
        *,
        ask_again: Callable[[Interaction], object] | None = None,
        index_version: Callable[[], str] | None = None,
    ) -> None:
        self.database = database
        self.embedder = embedder
        self.ask_again = ask_again
        self.index_version = index_version

    # -- reading --

    def list(
        self,
        team_id: str,
        status: str | None = None,
        *,
        days: int = 7,
        now: dt.datetime | None = None,
        start: dt.datetime | None = None,
        limit: int | None = None,
        privacy: Privacy | None = None,
    ) -> list[GapSummary]:
        """The workspace's gaps, the busiest in the period first. `status`: one of `STATUSES`, `all`, or None
        (open and assigned). The period is `start` (default: `days` before `now`) to `now`; the trend compares it
        with the period as long before it. `privacy` (the admin pages'): without question text, no examples,
        and a gap of one question is not labelled with it."""
        states = _states(status)
        with self.database.session() as session:
            chosen = (Gap.team_id == team_id, Gap.status.in_(states))
            rows = session.scalars(select(Gap).where(*chosen).order_by(Gap.id)).all()
            summaries = self._summaries(session, rows, chosen, days=days, now=now, start=start, privacy=privacy)
        summaries.sort(key=lambda g: (-g.recent, -g.size, g.id))
        return summaries[:limit] if limit else summaries

    def detail(
        self,
        team_id: str,
        gap_id: int,
        *,
        days: int = 7,
        now: dt.datetime | None = None,
        privacy: Privacy | None = None,
    ) -> GapDetail:
        """One gap with its questions and history (GapError when the workspace has no such gap). `privacy`:
        who asked and what, as the admin pages may show them."""
        with self.database.session() as session:
            gap = _gap(session, team_id, gap_id)
            return self._detail(session, gap, days=days, now=now, privacy=privacy)

    # -- changing --

    def assign(self, team_id: str, gap_id: int, owner_id: str, actor: str) -> GapDetail:
        """Give the gap to a content owner (a Slack user id); the edge tells them (a DM with its questions)."""
        owner_id = (owner_id or "").strip()
        if not SLACK_USER_ID.match(owner_id):
            raise GapError(f"{owner_id!r} is not a Slack user id (U… or W…): give the content owner's member id.")
        with self.database.session() as session:
            gap = _gap(session, team_id, gap_id)
            if gap.status == "closed":
                raise GapError(f"Gap {gap_id} is closed: reopen it first.")
            gap.owner_id, gap.status, gap.updated_at = owner_id, "assigned", utcnow()
            _event(session, gap, actor, "assigned", owner_id)
            session.flush()
            return self._detail(session, gap)

    def close(self, team_id: str, gap_id: int, actor: str, note: str | None = None) -> GapDetail:
        """Close the gap (an admin's decision: the content is there, or it will not be)."""
        with self.database.session() as session:
            gap = _gap(session, team_id, gap_id)
            if gap.status == "closed":
                raise GapError(f"Gap {gap_id} is closed already.")
            _close(session, gap, actor, note)
            session.flush()
            return self._detail(session, gap)

    def reopen(self, team_id: str, gap_id: int, actor: str, note: str | None = None) -> GapDetail:
        """Open a closed gap again (assigned to its owner, if it had one)."""
        with self.database.session() as session:
            gap = _gap(session, team_id, gap_id)
            if gap.status != "closed":
                raise GapError(f"Gap {gap_id} is not closed (it is {gap.status}).")
            _reopen(session, gap, actor, note)
            session.flush()
            return self._detail(session, gap)

    # -- making gaps --

    def refresh(self, team_id: str, now: dt.datetime | None = None) -> RefreshResult:
        """Put the workspace's questions that are in no gap yet into gaps: next to an existing gap when close
        enough to its centroid, else clustered among themselves into new gaps. Safe to run again (a question
        is in one gap at most: a second process's refresh of the same questions fails on the key, not twice)."""
        if self.embedder is None:
            raise RuntimeError("Gaps.refresh needs the embedding model (Gaps(database, embedder))")
        started = time.perf_counter()
        result = RefreshResult()
        now = now or utcnow()
        model = model_key(self.embedder)
        with self.database.session() as session:
            pending = pending_questions(session, team_id)
            result.waiting = max(0, len(pending) - MAX_CLUSTERED)
            pending = pending[:MAX_CLUSTERED]
            result.new_questions = len(pending)
            if not pending:
                result.seconds = time.perf_counter() - started
                return result
            embedding = time.perf_counter()
            vectors, result.embedded = question_vectors(session, self.embedder, pending)
            result.embed_seconds = time.perf_counter() - embedding
            gaps = session.scalars(select(Gap).where(Gap.team_id == team_id).order_by(Gap.id)).all()
            gaps = [g for g in gaps if g.embedding_model == model]  # a gap of another model takes no new questions
            nearest_gap, similarity = nearest(vectors, [g.centroid for g in gaps])
            grown: dict[int, list[int]] = defaultdict(list)  # gap id -> rows of `pending` joining it
            loose: list[int] = []
            for row, (gap_index, sim) in enumerate(zip(nearest_gap, similarity, strict=True)):
                if gap_index >= 0 and sim >= JOIN_SIMILARITY:
                    grown[gaps[gap_index].id].append(row)
                else:
                    loose.append(row)
            by_id = {g.id: g for g in gaps}
            _add(session, [(by_id[i], rows) for i, rows in grown.items()], pending, vectors, now)
            for gap_id, rows in grown.items():
                gap = by_id[gap_id]
                gap.centroid = centroid(_member_vectors(session, gap.id)).tobytes()
                if gap.status == "closed":
                    _reopen(session, gap, MOMENT, f"{_questions(len(rows))} asked since it was closed", now)
                    result.reopened.append(gap.id)
                else:
                    _grew(session, gap, len(rows), now)
                result.joined += len(rows)
            made = [[loose[m] for m in members] for members in clusters(vectors[loose])]
            new = [Gap(team_id=team_id, label="", status="open", created_at=now, updated_at=now,
                       centroid=centroid(vectors[rows]).tobytes(), embedding_model=model) for rows in made]  # fmt: skip
            session.add_all(new)
            session.flush()  # their ids
            _add(session, list(zip(new, made, strict=True)), pending, vectors, now)
            for gap, rows in zip(new, made, strict=True):
                _event(session, gap, MOMENT, "created", _questions(len(rows)), now)
            result.new_gaps = len(new)
            session.flush()
            _relabel(session, team_id, [by_id[i] for i in grown] + new)
        result.seconds = time.perf_counter() - started
        return result

    def update(self, team_id: str) -> tuple[RefreshResult, RecheckResult | None]:
        """Bring the workspace's gaps up to date: cluster the questions not in a gap yet, then, when the index
        changed since the gaps were last re-asked, re-ask their questions against it (`recheck`; None when
        there was nothing to re-ask, or no index yet)."""
        made = self.refresh(team_id)
        try:
            version = self.index_version()
        except IndexMissingError:
            return made, None
        if not self.needs_recheck(team_id, version):
            return made, None
        return made, self.recheck(team_id, self.ask_again, version)

    def needs_recheck(self, team_id: str, index_version: str) -> bool:
        """True when an open or assigned gap was not re-asked against `index_version` yet."""
        with self.database.session() as session:
            return bool(session.scalar(select(func.count(Gap.id)).where(*_unchecked(team_id, index_version))))

    def recheck(
        self, team_id: str, ask: Callable[[Interaction], object], index_version: str, now: dt.datetime | None = None
    ) -> RecheckResult:
        """Re-ask the open and assigned gaps' questions (the `RECHECK_LIMIT` latest of each) that were not asked
        against `index_version` yet, and keep "now answered k of n". `ask(interaction)` answers the interaction's
        question as its asker would be answered now, without recording it (an `Answer`). A question counts as
        answered now when the answer is not the one it had: it was declined and is answered, or the passage
        shown first is another one (another page, or the page's text changed). A gap whose questions are all
        answered now is closed by Moment."""
        result = RecheckResult()
        now = now or utcnow()
        with self.database.session() as session:
            gaps = session.scalars(select(Gap).where(*_unchecked(team_id, index_version)).order_by(Gap.id)).all()
            for gap in gaps:
                members = session.execute(
                    select(GapQuestion, Interaction)
                    .join(Interaction, Interaction.id == GapQuestion.interaction_id)
                    .where(GapQuestion.gap_id == gap.id)
                    .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                    .limit(RECHECK_LIMIT)
                ).all()
                answered = 0
                for member, interaction in members:
                    member.answered_now = answered_now(interaction, ask(interaction))
                    answered += member.answered_now
                before = (gap.answered_now, gap.checked_count)
                gap.answered_now, gap.checked_count = answered, len(members)
                gap.checked_index_version, gap.checked_at = index_version, now
                if before != (answered, len(members)):
                    _event(session, gap, MOMENT, "rechecked", f"now answered {answered} of {len(members)}", now)
                if members and answered == len(members):
                    _close(session, gap, MOMENT, f"all {_questions(len(members))} answered by the content now", now)
                    result.closed.append(gap.id)
                result.gaps += 1
                result.questions += len(members)
        return result

    # -- privacy and retention --

    @staticmethod
    def gaps_of_person(session, user_id: str) -> set[int]:
        """The gaps holding a person's questions (before they are forgotten)."""
        return set(
            session.scalars(
                select(GapQuestion.gap_id)
                .join(Interaction, Interaction.id == GapQuestion.interaction_id)
                .where(Interaction.user_id == user_id)
            )
        )

    @staticmethod
    def forget_person(session, user_id: str, affected: Iterable[int]) -> int:
        """After a person's interactions were deleted (their questions left their gaps with them): gaps left
        empty go, the others get a centroid and label from the questions left; the person leaves the history
        and the owners. The gaps deleted."""
        session.flush()
        session.execute(update(GapEvent).where(GapEvent.actor == user_id).values(actor=FORGOTTEN))
        session.execute(
            update(GapEvent).where(GapEvent.action == "assigned", GapEvent.detail == user_id).values(detail=FORGOTTEN)
        )
        owned = session.scalars(select(Gap).where(Gap.owner_id == user_id)).all()
        for gap in owned:
            gap.owner_id = None
            if gap.status == "assigned":
                gap.status = "open"
        deleted = Gaps.drop_empty(session)
        left = session.scalars(select(Gap).where(Gap.id.in_(set(affected)))).all()
        for team_id in {g.team_id for g in left}:
            team_gaps = [g for g in left if g.team_id == team_id]
            for gap in team_gaps:
                gap.centroid = centroid(_member_vectors(session, gap.id)).tobytes()
            _relabel(session, team_id, team_gaps)
        return deleted

    @staticmethod
    def drop_empty(session) -> int:
        """Delete the gaps none of whose questions is left (forgotten, or past retention)."""
        empty = select(Gap.id).where(~exists().where(GapQuestion.gap_id == Gap.id))
        ids = list(session.scalars(empty))
        if ids:
            session.execute(delete(GapEvent).where(GapEvent.gap_id.in_(ids)))
            session.execute(delete(Gap).where(Gap.id.in_(ids)))
        return len(ids)

    # -- inside --

    def _summaries(self, session, gaps, chosen, *, days=7, now=None, start=None, privacy=None) -> list[GapSummary]:
        """`gaps` as summaries; `chosen`: the conditions on `Gap` that selected them (a sub-query, not a list of
        thousands of ids)."""
        if not gaps:
            return []
        now = now or utcnow()
        start = start or now - dt.timedelta(days=days)
        before = start - (now - start)
        ids = select(Gap.id).where(*chosen).scalar_subquery()
        counts = {
            gap_id: (size, recent or 0, previous or 0)
            for gap_id, size, recent, previous in session.execute(
                select(
                    GapQuestion.gap_id,
                    func.count(),
                    func.sum(_between(start, now)),
                    func.sum(_between(before, start)),
                )
                .join(Interaction, Interaction.id == GapQuestion.interaction_id)
                .where(GapQuestion.gap_id.in_(ids))
                .group_by(GapQuestion.gap_id)
            )
        }
        reasons: dict[int, dict[str, int]] = defaultdict(dict)
        for gap_id, reason, n in session.execute(
            select(GapQuestion.gap_id, GapQuestion.reason, func.count())
            .where(GapQuestion.gap_id.in_(ids))
            .group_by(GapQuestion.gap_id, GapQuestion.reason)
        ):
            reasons[gap_id][reason] = n
        latest = (
            select(
                GapQuestion.gap_id,
                Interaction.question,
                func.row_number()
                .over(partition_by=GapQuestion.gap_id, order_by=(Interaction.created_at.desc(), Interaction.id.desc()))
                .label("n"),
            )
            .join(Interaction, Interaction.id == GapQuestion.interaction_id)
            .where(GapQuestion.gap_id.in_(ids))
            .subquery()
        )
        examples: dict[int, list[str]] = defaultdict(list)
        for gap_id, question in session.execute(
            select(latest.c.gap_id, latest.c.question).where(latest.c.n <= EXAMPLES * 3).order_by(latest.c.n)
        ):
            seen = examples[gap_id]
            if len(seen) < EXAMPLES and question not in seen:
                seen.append(question)
        return [
            GapSummary(
                id=g.id,
                label=_label(g.label, counts.get(g.id, (0, 0, 0))[0], privacy),
                status=g.status,
                owner_id=g.owner_id,
                size=counts.get(g.id, (0, 0, 0))[0],
                examples=tuple(examples.get(g.id, ())) if privacy is None or privacy.show_text else (),
                recent=int(counts.get(g.id, (0, 0, 0))[1]),
                previous=int(counts.get(g.id, (0, 0, 0))[2]),
                reasons=dict(reasons.get(g.id, {})),
                answered_now=g.answered_now,
                checked=g.checked_count,
                created_at=g.created_at,
                updated_at=g.updated_at,
            )
            for g in gaps
        ]

    def _detail(self, session, gap: Gap, *, days=7, now=None, privacy=None) -> GapDetail:
        questions = session.execute(
            select(GapQuestion, Interaction)
            .join(Interaction, Interaction.id == GapQuestion.interaction_id)
            .where(GapQuestion.gap_id == gap.id)
            .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        ).all()
        events = session.scalars(select(GapEvent).where(GapEvent.gap_id == gap.id).order_by(GapEvent.id)).all()
        return GapDetail(
            gap=self._summaries(session, [gap], (Gap.id == gap.id,), days=days, now=now, privacy=privacy)[0],
            questions=tuple(
                GapQuestionView(
                    i.id,
                    i.created_at,
                    privacy.asker(i.user_id) if privacy else i.user_id,
                    i.question if privacy is None or privacy.show_text else None,
                    q.reason,
                    q.answered_now,
                )
                for q, i in questions
            ),
            history=tuple(GapEventView(e.at, e.actor, e.action, e.detail) for e in events),
        )


# -- helpers ----------------------------------------------------------------------------------------------


def _label(label: str, size: int, privacy: Privacy | None) -> str:
    """A gap of one question is labelled with it: not where question text is hidden."""
    if privacy is not None and not privacy.show_text and size <= 1:
        return "one question (its text is hidden)"
    return label


def _states(status: str | None) -> tuple[str, ...]:
    if status is None:
        return ACTIVE
    if status == "all":
        return STATUSES
    if status not in STATUSES:
        raise GapError(f"Unknown gap status {status!r}: one of {', '.join(STATUSES)} or all.")
    return (status,)


def _unchecked(team_id: str, index_version: str) -> tuple:
    """The workspace's open and assigned gaps not re-asked against `index_version` yet."""
    checked_elsewhere = or_(Gap.checked_index_version.is_(None), Gap.checked_index_version != index_version)
    return Gap.team_id == team_id, Gap.status.in_(ACTIVE), checked_elsewhere


def _gap(session, team_id: str, gap_id) -> Gap:
    try:
        gap_id = int(gap_id)
    except (TypeError, ValueError):
        raise GapNotFound(f"{gap_id!r} is not a gap id (a number, as the list of gaps gives it).") from None
    gap = session.get(Gap, gap_id)
    if gap is None or gap.team_id != team_id:
        raise GapNotFound(
            f"No gap {gap_id} in this workspace (the list of gaps, closed ones too, gives their numbers)."
        )
    return gap


def _event(session, gap: Gap, actor: str, action: str, detail: str | None = None, at: dt.datetime | None = None):
    session.add(GapEvent(gap_id=gap.id, team_id=gap.team_id, at=at or utcnow(), actor=actor, action=action,
                         detail=detail))  # fmt: skip


def _grew(session, gap: Gap, n: int, now: dt.datetime) -> None:
    """ "+n questions" in the history, one line per day: the day's line counts up (a refresh runs every few
    minutes)."""
    last = session.scalars(select(GapEvent).where(GapEvent.gap_id == gap.id).order_by(GapEvent.id.desc())).first()
    if last is not None and last.action == "grew" and last.at.date() == now.date():
        n += int(re.sub(r"\D", "", last.detail or "") or 0)
        last.detail, last.at = f"+{_questions(n)}", now
        return
    _event(session, gap, MOMENT, "grew", f"+{_questions(n)}", now)


def _close(session, gap: Gap, actor: str, note: str | None, at: dt.datetime | None = None) -> None:
    at = at or utcnow()
    gap.status, gap.closed_at, gap.updated_at = "closed", at, at
    _event(session, gap, actor, "closed", note, at)


def _reopen(session, gap: Gap, actor: str, note: str | None, at: dt.datetime | None = None) -> None:
    at = at or utcnow()
    gap.status, gap.closed_at, gap.updated_at = ("assigned" if gap.owner_id else "open"), None, at
    _event(session, gap, actor, "reopened", note, at)


def _questions(n: int) -> str:
    return f"{n} question" + ("" if n == 1 else "s")


def _between(start: dt.datetime, end: dt.datetime):
    from sqlalchemy import case

    return case((and_(Interaction.created_at >= start, Interaction.created_at < end), 1), else_=0)


def _member_vectors(session, gap_id: int) -> np.ndarray:
    blobs = session.scalars(select(GapQuestion.embedding).where(GapQuestion.gap_id == gap_id)).all()
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs]) if blobs else np.zeros((0, 1), np.float32)


def _add(session, placed: list[tuple[Gap, list[int]]], pending: list[tuple[int, str, str]], vectors, now) -> None:
    """Put questions into gaps, in one statement: `placed` pairs a gap with rows of `pending` (interaction id,
    question, reason) and of `vectors`."""
    values = [
        {"interaction_id": pending[row][0], "gap_id": gap.id, "team_id": gap.team_id, "reason": pending[row][2],
         "embedding": vectors[row].tobytes(), "added_at": now}
        for gap, rows in placed
        for row in rows
    ]  # fmt: skip
    if values:
        session.execute(insert(GapQuestion), values)
    for gap, _ in placed:
        gap.updated_at = now


def _relabel(session, team_id: str, changed: list[Gap]) -> None:
    """New labels for the `changed` gaps, by class-based TF-IDF over all of the workspace's gaps (a term that
    marks one gap's questions apart from the others'); the most central question when no term is shared
    by `LABEL_TERM_SHARE` of a gap's questions (or the gap has one question)."""
    if not changed:
        return
    questions: dict[int, list[str]] = defaultdict(list)
    for gap_id, text in session.execute(
        select(GapQuestion.gap_id, Interaction.question)
        .join(Interaction, Interaction.id == GapQuestion.interaction_id)
        .where(GapQuestion.team_id == team_id)
    ):
        questions[gap_id].append(text)
    order = sorted(questions)
    label_of = dict(zip(order, label_clusters([questions[i] for i in order]), strict=True))
    for gap in changed:
        if gap.id not in label_of:
            continue
        label = label_of[gap.id]
        if label is None and len(questions[gap.id]) == 1:
            label = questions[gap.id][0]
        elif label is None:  # no shared term: the question nearest the centroid
            centroid = np.frombuffer(gap.centroid, dtype=np.float32)
            members = session.execute(
                select(Interaction.question, GapQuestion.embedding)
                .join(Interaction, Interaction.id == GapQuestion.interaction_id)
                .where(GapQuestion.gap_id == gap.id)
            ).all()
            label = max(members, key=lambda m: float(np.frombuffer(m[1], dtype=np.float32) @ centroid))[0]
        gap.label = shorten(label)
