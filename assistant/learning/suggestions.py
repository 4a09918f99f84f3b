"""From questions to courses: when a person keeps asking about one course's topic, suggest the course, once.

Every question is compared with the workspace's courses (its vector against each course's title, topics and
description, `MATCH_COSINE`); the best course the person may be offered (its `audience`) counts the question as
interest in it. When a person has asked about one course `MOMENT_COURSE_AFTER` times within
`MOMENT_COURSE_DAYS` days, the answer carries one suggestion of it, unless:

- it was suggested to them before (whatever they did with it: one suggestion per person and course, kept by a
  unique constraint, so two processes cannot both make it);
- the LRS holds a `completed` or `passed` statement of theirs for the course's activity id (the xAPI
  statements resource queried by agent, verb and activity); when the LRS cannot say (down, slow, an error) the
  suggestion is skipped and one line logged: never guessed;
- the answer is posted where others read it (a channel's thread: the interest still counts, the suggestion
  waits for a private answer).

Each suggestion, its link's clicks (`MOMENT_BASE_URL/c/<signed token>`, `assistant.learning.links`) and Not now
are recorded, and sent as xAPI statements (shared / launched / skipped: `assistant.records.xapi.VERBS`).
Nothing here raises into the answer: a failure means no suggestion.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.db.database import DatabaseUnavailableError
from assistant.db.models import Course, CourseInterest, CourseSuggestion, utcnow
from assistant.learning import links
from assistant.records.lrs import LrsClient, LrsQueryError

log = logging.getLogger(__name__)

# Calibrated on evalsets/course-match.jsonl: 40 questions written for the catalogue evalsets/course-catalogue.json,
# each labelled with the course that teaches it or none (`python bench/course_threshold.py` prints every question's
# best cosine). A question and a whole course's text are far apart for this model: right matches have a median
# cosine of 0.37, questions about no course 0.11. Just above the highest question about no course (0.258), 18 of
# the 25 questions about a course count towards the right one; a suggestion also needs MOMENT_COURSE_AFTER of them.
MATCH_COSINE = 0.26
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
PUBLIC_SURFACES = ("mention", "help_channel")  # answers others read: no suggestion there
LINK_PREVIEWERS = ("slackbot", "slack-imgproxy", "facebookexternalhit", "twitterbot", "linkedinbot")


@dataclass(frozen=True)
class CourseStats:
    """One course's suggestions and what came of them (the admin page's Courses table)."""

    course_id: int
    title: str
    url: str
    suggested: int
    clicked: int  # people who opened it through the link
    dismissed: int  # Not now
    completed: int  # completions seen in the LRS after the suggestion (`refresh_completions`)

    def to_dict(self) -> dict:
        return {
            "course_id": self.course_id,
            "title": self.title,
            "url": self.url,
            "suggested": self.suggested,
            "clicked": self.clicked,
            "dismissed": self.dismissed,
            "completed": self.completed,
        }


class CompletionCheck:
    """Whether the LRS holds a completion of a course by a person (their xAPI actor, as Moment sends it)."""

    def __init__(self, settings, statements) -> None:
        self.settings = settings
        self.statements = statements

    @property
    def configured(self) -> bool:
        return bool(self.settings.lrs_endpoint)

    def completed(self, user_id: str, activity_id: str) -> bool:
        """True when `completed` or `passed` is recorded; False when neither is (or no LRS is configured).
        Raises `LrsQueryError` when the LRS cannot say."""
        if not self.configured:
            return False
        s = self.settings
        client = LrsClient(
            s.lrs_endpoint,
            s.lrs_username or "",
            s.lrs_password.get_secret_value() if s.lrs_password else "",
            timeout=s.course_lrs_timeout,
        )
        agent = self.statements.actor(user_id)
        return any(client.has_statement(agent, verb, activity_id) for verb in (COMPLETED, PASSED))


class _CourseVectors:
    """The workspace's embedded courses as one matrix, kept in the process until the catalogue changes."""

    def __init__(self, database, model: str) -> None:
        self.database = database
        self.model = model
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, np.ndarray, np.ndarray, list]] = {}

    def of(self, team_id: str) -> tuple[np.ndarray, np.ndarray, list]:
        """(course ids, vectors, audiences)."""
        with self.database.session() as session:
            # Changed when a course is added, updated or embedded: then the matrix is read again.
            changes = (func.count(Course.id), func.max(Course.updated_at), func.count(Course.embedding_model))
            stamp = tuple(session.execute(select(*changes).where(Course.team_id == team_id)).one())
            with self._lock:
                cached = self._cache.get(team_id)
                if cached is not None and cached[0] == stamp:
                    return cached[1], cached[2], cached[3]
            rows = session.execute(
                select(Course.id, Course.embedding, Course.audience).where(
                    Course.team_id == team_id, Course.embedding_model == self.model, Course.embedding.is_not(None)
                )
            ).all()
        ids = np.asarray([r.id for r in rows], dtype=np.int64)
        vectors = (
            np.vstack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, 1), dtype=np.float32)
        )
        audiences = [r.audience for r in rows]
        with self._lock:
            self._cache[team_id] = (stamp, ids, vectors, audiences)
        return ids, vectors, audiences


class CourseSuggestions:
    """Course suggestions of every workspace: matching questions, suggesting, clicks, Not now, figures."""

    def __init__(self, settings, database, embedder, xapi) -> None:
        self.settings = settings
        self.database = database
        self.embedder = embedder
        self.xapi = xapi
        self.completions = CompletionCheck(settings, xapi.statements)
        self._vectors: _CourseVectors | None = None
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = links.link_key(self.settings)
        return self._key

    def _course_vectors(self) -> _CourseVectors:
        if self._vectors is None:
            self._vectors = _CourseVectors(self.database, self.embedder.spec.describe())
        return self._vectors

    # -- matching and suggesting --------------------------------------------------------------------

    def best_course(self, team_id: str, query_vector, viewer) -> tuple[int, float] | None:
        """The course of the workspace closest to the question, at least `MATCH_COSINE` away, that `viewer`
        (a `Viewer`, or a function returning one, asked only when a course has an audience) may be offered."""
        ids, vectors, audiences = self._course_vectors().of(team_id)
        if not len(ids):
            return None
        scores = vectors @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        for i in np.argsort(-scores):
            if scores[i] < MATCH_COSINE:
                return None
            if audiences[i]:
                if callable(viewer):
                    viewer = viewer()
                if not viewer.may_see(audiences[i]):
                    continue
            return int(ids[i]), float(scores[i])
        return None

    def suggestion_for(
        self, user_id: str, team_id: str, surface: str, interaction_id: int | None, query_vector, viewer
    ) -> dict | None:
        """Count this question towards the course it is about, and the suggestion to add to its answer when it
        is due (None otherwise, and whenever anything fails: the answer goes out without one)."""
        if query_vector is None:
            return None
        try:
            return self._suggestion_for(user_id, team_id, surface, interaction_id, query_vector, viewer)
        except DatabaseUnavailableError as exc:
            log.info("course suggestions skipped: %s", exc)
        except Exception:
            log.exception("course suggestions skipped")
        return None

    def _suggestion_for(self, user_id, team_id, surface, interaction_id, query_vector, viewer) -> dict | None:
        best = self.best_course(team_id, query_vector, viewer)
        if best is None:
            return None
        course_id, cosine = best
        now = utcnow()
        since = now - dt.timedelta(days=self.settings.course_days)
        with self.database.session() as session:
            session.add(
                CourseInterest(
                    team_id=team_id,
                    user_id=user_id,
                    course_id=course_id,
                    interaction_id=interaction_id,
                    cosine=cosine,
                    created_at=now,
                )
            )
            session.execute(  # older interest no longer counts: not kept
                delete(CourseInterest).where(
                    CourseInterest.team_id == team_id,
                    CourseInterest.user_id == user_id,
                    CourseInterest.created_at < since,
                )
            )
            session.flush()
            asked = session.scalar(
                select(func.count(CourseInterest.id)).where(
                    CourseInterest.team_id == team_id,
                    CourseInterest.user_id == user_id,
                    CourseInterest.course_id == course_id,
                    CourseInterest.created_at >= since,
                )
            )
            suggested_before = session.scalar(
                select(CourseSuggestion.id).where(
                    CourseSuggestion.team_id == team_id,
                    CourseSuggestion.user_id == user_id,
                    CourseSuggestion.course_id == course_id,
                )
            )
            course = session.get(Course, course_id)
            activity_id, title = course.activity_id, course.title
        if asked < self.settings.course_after or suggested_before is not None or surface in PUBLIC_SURFACES:
            return None
        try:
            if self.completions.completed(user_id, activity_id):
                log.info("course %d not suggested to %s: the LRS has their completion", course_id, user_id)
                return None
        except LrsQueryError as exc:
            log.warning("course %d not suggested to %s: the LRS could not say whether they completed it (%s)",
                        course_id, user_id, exc)  # fmt: skip
            return None
        try:
            with self.database.session() as session:
                suggestion = CourseSuggestion(
                    team_id=team_id,
                    user_id=user_id,
                    course_id=course_id,
                    interaction_id=interaction_id,
                    surface=surface,
                    created_at=utcnow(),
                    clicks=0,
                )
                session.add(suggestion)
                session.flush()
                course = session.get(Course, course_id)
                self.xapi.course_event(session, "suggested", suggestion, course)
                offer = self._offer(suggestion, course, asked)
        except IntegrityError:
            return None  # another process suggested it at the same moment
        log.info("course %d (%s) suggested to %s after %d questions", course_id, title[:80], user_id, asked)
        return offer

    def _offer(self, suggestion: CourseSuggestion, course: Course, asked: int) -> dict:
        """What the answer carries (`Answer.course`)."""
        base = self.settings.base_url
        tracked = bool(base)
        return {
            "suggestion_id": suggestion.id,
            "course_id": course.id,
            "title": course.title,
            "url": f"{base.rstrip('/')}/c/{links.sign(self.key, suggestion.id)}" if tracked else course.url,
            "course_url": course.url,
            "duration_minutes": course.duration_minutes,
            "topics": list(course.topics or [])[:3],
            "asked": asked,
            "days": self.settings.course_days,
            "tracked": tracked,
        }

    # -- what people do with a suggestion -----------------------------------------------------------

    def click(self, token: str, user_agent: str = "") -> str | None:
        """The course URL a link's token leads to, recording the click (the first one is sent to the LRS as
        launched); None for a token that is not ours or a suggestion since forgotten. Link previews (Slack's
        unfurler) are led there without counting."""
        suggestion_id = links.verify(self.key, token)
        if suggestion_id is None:
            return None
        with self.database.session() as session:
            suggestion = session.get(CourseSuggestion, suggestion_id)
            if suggestion is None:
                return None
            course = session.get(Course, suggestion.course_id)
            if any(bot in user_agent.lower() for bot in LINK_PREVIEWERS):
                return course.url
            first = suggestion.clicked_at is None
            session.execute(
                update(CourseSuggestion)
                .where(CourseSuggestion.id == suggestion_id)
                .values(
                    clicks=CourseSuggestion.clicks + 1,
                    clicked_at=func.coalesce(CourseSuggestion.clicked_at, utcnow()),
                )
            )
            if first:
                self.xapi.course_event(session, "launched", suggestion, course)
            return course.url

    def dismiss(self, suggestion_id: int, user_id: str, team_id: str) -> bool:
        """Not now, from the person it was suggested to (anyone else: False, nothing recorded)."""
        with self.database.session() as session:
            suggestion = session.get(CourseSuggestion, suggestion_id)
            if suggestion is None or suggestion.user_id != user_id or suggestion.team_id != team_id:
                return False
            if suggestion.dismissed_at is None:
                suggestion.dismissed_at = utcnow()
                self.xapi.course_event(session, "skipped", suggestion, session.get(Course, suggestion.course_id))
            return True

    def embed_pending(self, team_id: str | None = None) -> int:
        """Embed the courses not embedded yet with this model (`catalogue.embed_pending`); how many."""
        from assistant.learning.catalogue import embed_pending

        return embed_pending(self.database, self.embedder, team_id)

    def refresh_completions(self, team_id: str | None = None, limit: int = 500) -> int:
        """Ask the LRS about suggestions not completed yet (oldest first, `limit` of them); the number found
        completed. Stops at the first question the LRS cannot answer (logged)."""
        with self.database.session() as session:
            query = (
                select(CourseSuggestion.id, CourseSuggestion.user_id, Course.activity_id)
                .join(Course, Course.id == CourseSuggestion.course_id)
                .where(CourseSuggestion.completed_at.is_(None))
                .order_by(CourseSuggestion.id)
                .limit(limit)
            )
            if team_id is not None:
                query = query.where(CourseSuggestion.team_id == team_id)
            pending = session.execute(query).all()
        if not pending or not self.completions.configured:
            return 0
        done = []
        for row in pending:
            try:
                if self.completions.completed(row.user_id, row.activity_id):
                    done.append(row.id)
            except LrsQueryError as exc:
                log.warning("course completions not checked: %s", exc)
                break
        if done:
            with self.database.session() as session:
                session.execute(
                    update(CourseSuggestion).where(CourseSuggestion.id.in_(done)).values(completed_at=utcnow())
                )
        return len(done)

    def stats(self, team_id: str, *, limit: int | None = None) -> list[CourseStats]:
        """Per course of the workspace that was ever suggested (`course_stats`)."""
        return course_stats(self.database, team_id, limit=limit)

    def suggestions_of(self, user_id: str, team_id: str) -> list[dict]:
        """A person's suggestions, newest first (what is held about them)."""
        with self.database.session() as session:
            rows = session.execute(
                select(CourseSuggestion, Course.title)
                .join(Course, Course.id == CourseSuggestion.course_id)
                .where(CourseSuggestion.user_id == user_id, CourseSuggestion.team_id == team_id)
                .order_by(CourseSuggestion.id.desc())
            ).all()
            return [
                {
                    "suggestion_id": s.id,
                    "course_id": s.course_id,
                    "title": title,
                    "at": s.created_at.isoformat(),
                    "clicked": s.clicked_at is not None,
                    "dismissed": s.dismissed_at is not None,
                    "completed": s.completed_at is not None,
                }
                for s, title in rows
            ]


def suggestion_sentence(offer: dict, title: str | None = None) -> str:
    """The one polite line of a suggestion, with the course's `title` as the edge renders it (a link in Slack,
    escaped by the caller; plain text by default)."""
    title = title if title is not None else f"“{offer['title']}”"
    duration = f" ({_duration(offer['duration_minutes'])})" if offer.get("duration_minutes") else ""
    return (
        f"You've asked about this a few times lately: the course {title}{duration} covers it, "
        "if you'd like to go deeper."
    )


def _duration(minutes: int) -> str:
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def course_stats(
    database, team_id: str, *, limit: int | None = None, since: dt.datetime | None = None
) -> list[CourseStats]:
    """Per course of the workspace that was ever suggested (`since`: suggested since then): suggested, clicked,
    Not now, completed; the most suggested first (one grouped query)."""
    suggested = func.count(CourseSuggestion.id)
    query = (
        select(
            Course.id,
            Course.title,
            Course.url,
            suggested.label("suggested"),
            func.count(CourseSuggestion.clicked_at).label("clicked"),
            func.count(CourseSuggestion.dismissed_at).label("dismissed"),
            func.count(CourseSuggestion.completed_at).label("completed"),
        )
        .join(CourseSuggestion, CourseSuggestion.course_id == Course.id)
        .where(Course.team_id == team_id)
        .group_by(Course.id, Course.title, Course.url)
        .order_by(suggested.desc(), Course.title)
    )
    if since is not None:
        query = query.where(CourseSuggestion.created_at >= since)
    if limit is not None:
        query = query.limit(limit)
    with database.session() as session:
        return [CourseStats(*row) for row in session.execute(query).all()]
