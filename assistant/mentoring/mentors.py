"""The mentor registry and matching: who may receive questions, and who fits one best.

The registry starts from `content/mentors.yml` (seeded: a mentor already in the database is never
overwritten, and a removed one is not revived) and then lives in the database, managed from Slack.

Matching ranks vetted, active mentors with room (open requests below capacity), never the asker:
first by how well their topics (and the content they own) match the question on the same embedding
model as the content, then by availability (inside their working hours, in their time zone), then by
load, and among equals whoever was offered a question least recently.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import yaml
from sqlalchemy import func, select

from assistant.db.database import Database
from assistant.db.models import Mentor, MentorOffer, MentorRequest, utcnow
from assistant.mentoring.notices import Notice
from assistant.mentoring.views import snapshot

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_MATCH = 0.30  # below this cosine a mentor's topics do not fit the question
TIER = 0.10  # matches within one tier count as equal; availability, load and fairness decide


class MentorError(Exception):
    """A mentor cannot be added or changed; the message (text or a `Notice` naming people) says why, for
    the person who asked."""

    def render(self, person=str) -> str:
        """The message with each person named by `person(user_id)` (Slack: a mention)."""
        message = self.args[0] if self.args else ""
        return message.render(person) if isinstance(message, Notice) else str(message)


@dataclass(frozen=True)
class Candidate:
    """A mentor who could take a question, and why."""

    slack_id: str
    name: str
    score: float
    matched_topics: tuple[str, ...]
    owns: tuple[str, ...]  # titles of the shown content this mentor owns
    available: bool
    load: int
    capacity: int

    @property
    def reason(self) -> str:
        """One line for the mentor: why them."""
        parts = []
        if self.matched_topics:
            parts.append("You know " + _and(self.matched_topics))
        if self.owns:
            parts.append(f"you own “{self.owns[0]}”")
        text = "; ".join(parts) if parts else "You are a vetted mentor with time"
        return text[0].upper() + text[1:] + "."


@dataclass(frozen=True)
class MentorView:
    """A mentor as the outside sees them (their App Home, the vetting check on Accept): a snapshot."""

    slack_id: str
    name: str
    topics: tuple[str, ...]
    capacity: int
    timezone: str
    working_hours: str
    paused: bool
    vetted: bool
    active: bool  # not paused, not removed
    removed: bool

    @classmethod
    def of(cls, mentor: Mentor) -> MentorView:
        return snapshot(cls, mentor, topics=tuple(mentor.topics), removed=mentor.removed_at is not None)


@dataclass(frozen=True)
class MentorStats:
    """A mentor with their current load and response record (for `/moment mentors`)."""

    mentor: MentorView
    load: int
    offered: int
    accepted: int
    declined: int
    timed_out: int
    resolved: int
    median_accept_minutes: float | None
    median_resolve_minutes: float | None
    available_now: bool


def parse_mentors_file(path: Path) -> list[dict]:
    """The mentors in a mentors.yml, validated; raises `MentorError` naming the entry and the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MentorError(f"{path.name} cannot be read: {exc}") from None
    entries = data.get("mentors") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MentorError(f"{path.name} must have a `mentors:` list.")
    mentors = []
    for n, entry in enumerate(entries, 1):
        where = f"{path.name}, mentor {n}"
        if not isinstance(entry, dict):
            raise MentorError(f"{where}: each mentor is a set of `key: value` lines.")
        slack_id = str(entry.get("slack_id", "")).strip()
        if not SLACK_USER_ID.match(slack_id):
            raise MentorError(f"{where}: `slack_id` must be a Slack user ID like U024BE7LH, not '{slack_id}'.")
        vetted_on = entry.get("vetted_on")
        if isinstance(vetted_on, str):
            vetted_on = dt.date.fromisoformat(vetted_on)
        mentors.append(
            {
                "slack_id": slack_id,
                "name": str(entry.get("name") or slack_id),
                "topics": normalise_topics(entry.get("topics") or []),
                "capacity": _capacity(entry.get("capacity", 2), where),
                "timezone": _timezone(entry.get("timezone", "UTC"), where),
                "working_hours": _hours(entry.get("working_hours", "09:00-17:00"), where),
                "working_days": _days(entry.get("working_days", DAYS[:5]), where),
                "vetted_by": str(entry["vetted_by"]) if entry.get("vetted_by") else None,
                "vetted_at": dt.datetime.combine(vetted_on, dt.time(), dt.UTC) if vetted_on else None,
            }
        )
    return mentors


def normalise_topics(topics: Iterable[str] | str) -> list[str]:
    if isinstance(topics, str):
        topics = [topics]
    seen: list[str] = []
    for item in topics:
        for topic in str(item).split(","):
            t = " ".join(topic.strip().lower().split())
            if t and t not in seen:
                seen.append(t)
    return seen


class MentorRegistry:
    """Mentors in the database, and matching questions to them."""

    def __init__(self, database: Database, embedder) -> None:
        self.database = database
        self.embedder = embedder
        self._topic_vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # -- the registry ------------------------------------------------------------------------

    def seed(self, team_id: str, path: Path) -> int:
        """Add the mentors of a mentors.yml that the workspace does not know yet; returns how many."""
        if not path.is_file():
            return 0
        entries = parse_mentors_file(path)
        added = 0
        with self.database.session() as session:
            known = set(session.scalars(select(Mentor.slack_id).where(Mentor.team_id == team_id)).all())
            for entry in entries:
                if entry["slack_id"] not in known:
                    session.add(Mentor(**entry, team_id=team_id, added_by="mentors.yml"))
                    added += 1
        return added

    def get(self, team_id: str, slack_id: str) -> MentorView | None:
        """The workspace's mentor `slack_id`, removed or not (a mentor of one workspace is nobody in another)."""
        with self.database.session() as session:
            mentor = session.get(Mentor, (team_id, slack_id))
            return MentorView.of(mentor) if mentor is not None else None

    def add(self, team_id: str, slack_id: str, topics: Sequence[str], by: str, name: str | None = None) -> MentorView:
        """Add a mentor (not yet vetted), or set the topics of one already there."""
        if not SLACK_USER_ID.match(slack_id):
            raise MentorError(f"'{slack_id}' is not a Slack user: mention them, like `@priya`.")
        topics = normalise_topics(topics)
        if not topics:
            raise MentorError("Give at least one topic, e.g. `/moment mentor add @priya vpn, remote access`.")
        with self.database.session() as session:
            mentor = session.get(Mentor, (team_id, slack_id))
            if mentor is None:
                mentor = Mentor(
                    team_id=team_id, slack_id=slack_id, name=name or slack_id, topics=topics, added_by=by, paused=False
                )
                session.add(mentor)
            else:
                if mentor.removed_at is not None:  # back after removal: vetted again before getting questions
                    mentor.removed_at = None
                    mentor.vetted_at = None
                    mentor.vetted_by = None
                mentor.topics = topics
                if name:
                    mentor.name = name
            session.flush()
            return MentorView.of(mentor)

    def vet(self, team_id: str, slack_id: str, by: str) -> MentorView:
        with self.database.session() as session:
            mentor = self._existing(session, team_id, slack_id)
            mentor.vetted_at = utcnow()
            mentor.vetted_by = by
            return MentorView.of(mentor)

    def remove(self, team_id: str, slack_id: str) -> MentorView:
        with self.database.session() as session:
            mentor = self._existing(session, team_id, slack_id)
            mentor.removed_at = utcnow()
            return MentorView.of(mentor)

    def set_paused(self, team_id: str, slack_id: str, paused: bool) -> MentorView:
        with self.database.session() as session:
            mentor = self._existing(session, team_id, slack_id)
            mentor.paused = paused
            return MentorView.of(mentor)

    def _existing(self, session, team_id: str, slack_id: str) -> Mentor:
        mentor = session.get(Mentor, (team_id, slack_id))
        if mentor is None or mentor.removed_at is not None:
            raise MentorError(
                Notice(
                    "{person} is not a mentor. Add them with `/moment mentor add @them topics`.", {"person": slack_id}
                )
            )
        return mentor

    def stats(self, team_id: str, now: dt.datetime | None = None) -> list[MentorStats]:
        """Every current mentor of the workspace with load and response record, most loaded first."""
        now = now or utcnow()
        with self.database.session() as session:
            mentors = session.scalars(
                select(Mentor).where(Mentor.team_id == team_id, Mentor.removed_at.is_(None)).order_by(Mentor.name)
            ).all()
            loads = self._loads(session, team_id)
            offers = session.execute(
                select(
                    MentorOffer.mentor_id, MentorOffer.outcome, MentorOffer.offered_at, MentorOffer.responded_at
                ).where(MentorOffer.team_id == team_id)
            ).all()
            resolved = session.execute(
                select(MentorRequest.owner_id, MentorRequest.accepted_at, MentorRequest.resolved_at).where(
                    MentorRequest.team_id == team_id, MentorRequest.resolved_at.is_not(None)
                )
            ).all()
        out = []
        for m in mentors:
            mine = [o for o in offers if o.mentor_id == m.slack_id]
            accept_minutes = [
                (o.responded_at - o.offered_at).total_seconds() / 60
                for o in mine
                if o.outcome == "accepted" and o.responded_at
            ]
            resolve_minutes = [
                (r.resolved_at - r.accepted_at).total_seconds() / 60
                for r in resolved
                if r.owner_id == m.slack_id and r.accepted_at
            ]
            out.append(
                MentorStats(
                    mentor=MentorView.of(m),
                    load=loads.get(m.slack_id, 0),
                    offered=len(mine),
                    accepted=sum(o.outcome == "accepted" for o in mine),
                    declined=sum(o.outcome == "declined" for o in mine),
                    timed_out=sum(o.outcome == "timeout" for o in mine),
                    resolved=len(resolve_minutes),
                    median_accept_minutes=float(np.median(accept_minutes)) if accept_minutes else None,
                    median_resolve_minutes=float(np.median(resolve_minutes)) if resolve_minutes else None,
                    available_now=m.active and m.vetted and is_working(m, now),
                )
            )
        return out

    @staticmethod
    def _loads(session, team_id: str) -> dict[str, int]:
        """Open requests per mentor of the workspace: accepted and unresolved, plus offers waiting for an answer."""
        owned = session.execute(
            select(MentorRequest.owner_id, func.count())
            .where(MentorRequest.team_id == team_id, MentorRequest.status == "accepted")
            .group_by(MentorRequest.owner_id)
        ).all()
        pending = session.execute(
            select(MentorOffer.mentor_id, func.count())
            .where(MentorOffer.team_id == team_id, MentorOffer.outcome == "pending")
            .group_by(MentorOffer.mentor_id)
        ).all()
        loads: dict[str, int] = {}
        for mentor_id, count in [*owned, *pending]:
            loads[mentor_id] = loads.get(mentor_id, 0) + count
        return loads

    # -- matching ----------------------------------------------------------------------------

    def candidates(
        self,
        team_id: str,
        question: str,
        *,
        asker_id: str,
        exclude: Iterable[str] = (),
        owners: dict[str, list[str]] | None = None,
        now: dt.datetime | None = None,
    ) -> list[Candidate]:
        """The workspace's mentors who fit the question, best first. `owners` maps an owner's Slack ID to the titles of
        content shown for this question that they own."""
        now = now or utcnow()
        excluded = {asker_id, *exclude}
        owners = owners or {}
        with self.database.session() as session:
            mentors = [
                m
                for m in session.scalars(
                    select(Mentor).where(
                        Mentor.team_id == team_id,
                        Mentor.removed_at.is_(None),
                        Mentor.paused.is_(False),
                        Mentor.vetted_at.is_not(None),
                    )
                ).all()
                if m.slack_id not in excluded
            ]
            loads = self._loads(session, team_id)
        if not mentors:
            return []
        query = self.embedder.encode([question])[0]
        found = []
        for m in mentors:
            load = loads.get(m.slack_id, 0)
            if load >= m.capacity:
                continue
            scores = {t: float(self._topic_vector(t) @ query) for t in m.topics}
            best = max(scores.values(), default=0.0)
            owns = tuple(owners.get(m.slack_id, ()))
            score = best + (0.1 if owns else 0.0)
            if score < MIN_MATCH:
                continue
            matched = tuple(
                t for t, s in sorted(scores.items(), key=lambda kv: -kv[1]) if s >= max(MIN_MATCH, best - 0.08)
            )
            found.append(
                (
                    m,
                    Candidate(
                        m.slack_id, m.name, round(score, 4), matched[:2], owns, is_working(m, now), load, m.capacity
                    ),
                )
            )
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        found.sort(
            key=lambda mc: (
                -int(mc[1].score / TIER),
                not mc[1].available,
                mc[1].load / max(mc[1].capacity, 1),
                mc[0].last_offered_at or epoch,
                -mc[1].score,
            )
        )
        return [c for _, c in found]

    def _topic_vector(self, topic: str) -> np.ndarray:
        with self._lock:
            vector = self._topic_vectors.get(topic)
        if vector is None:
            vector = self.embedder.encode([topic])[0]
            with self._lock:
                self._topic_vectors[topic] = vector
        return vector


def is_working(mentor: Mentor, now: dt.datetime) -> bool:
    """Inside the mentor's working hours on one of their working days, in their time zone."""
    try:
        local = now.astimezone(ZoneInfo(mentor.timezone))
    except ZoneInfoNotFoundError:
        local = now
    start_s, end_s = mentor.working_hours.split("-")
    start = dt.time.fromisoformat(start_s)
    end = dt.time(23, 59, 59) if end_s == "24:00" else dt.time.fromisoformat(end_s)
    day = DAYS[local.weekday()]
    t = local.time()
    if start <= end:
        return day in mentor.working_days and start <= t < end
    # overnight shift, e.g. 22:00-06:00: the morning part belongs to the previous day's shift
    if t >= start:
        return day in mentor.working_days
    return t < end and DAYS[(local.weekday() - 1) % 7] in mentor.working_days


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _capacity(value, where: str) -> int:
    try:
        capacity = int(value)
    except (TypeError, ValueError):
        capacity = 0
    if capacity < 1:
        raise MentorError(f"{where}: `capacity` must be a whole number of open requests, 1 or more.")
    return capacity


def _timezone(value, where: str) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise MentorError(f"{where}: `timezone` '{value}' is not a time zone like Europe/London.") from None
    return str(value)


def _hours(value, where: str) -> str:
    text = str(value).replace(" ", "")
    if not HOURS.match(text):
        raise MentorError(f"{where}: `working_hours` must look like \"09:00-17:30\", not '{value}'.")
    return text


def _days(value, where: str) -> list[str]:
    days = [str(d).strip().lower()[:3] for d in (value.split(",") if isinstance(value, str) else value)]
    bad = [d for d in days if d not in DAYS]
    if bad or not days:
        raise MentorError(f"{where}: `working_days` must be days like [mon, tue, wed], not {bad or 'nothing'}.")
    return days
