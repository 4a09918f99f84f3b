"""The course catalogue: courses and learning paths read from a file (CSV or JSON) or an LMS, kept per workspace.

A catalogue row has a title, a URL, a description, topics, a duration and an xAPI activity id (the URL when it
has none), and optionally the user groups it is for (`audience`). Bad rows are reported one by one, naming
the line (CSV) or record (JSON) and the field; the good rows are kept. A re-import updates a course found by
its activity id (or, failing that, its URL) and never makes a second one. Rows are written in batches, so
that a catalogue of 50,000 rows takes seconds (`bench/course_catalogue.py`); embedding them for matching is
a step of its own (`embed_pending`), which only embeds what is new or changed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import defer

from assistant.db.models import Course, utcnow
from assistant.errors import MomentError

MAX_ROWS = 200_000  # a catalogue larger than this is refused whole: it is not a catalogue
MAX_TITLE = 500
MAX_URL = 2000
MAX_ACTIVITY_ID = 1000
MAX_DESCRIPTION = 20_000
MAX_TOPICS = 50
BATCH = 1000  # rows per INSERT / UPDATE statement
EMBED_BATCH = 64
EMBEDDED_DESCRIPTION_CHARS = 1000  # the model reads the first ~256 word pieces anyway
FIELDS = ("title", "url", "description", "topics", "duration", "activity_id", "audience")
# Column names people write for a field (compared case-insensitively, spaces and dashes as underscores).
ALIASES = {
    "name": "title",
    "link": "url",
    "xapi_activity_id": "activity_id",
    "xapi_id": "activity_id",
    "activity": "activity_id",
    "summary": "description",
    "tags": "topics",
    "duration_minutes": "duration",
    "minutes": "duration",
    "groups": "audience",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.I)
_HOURS_MINUTES = re.compile(r"^(?:(\d+)h(?:ours?|rs?)?)?(?:(\d+)(?:m(?:in(?:utes?|s)?)?)?)?$", re.I)


class CatalogueError(MomentError):
    """A catalogue that cannot be read at all (not CSV or JSON, no usable columns, far too many rows)."""


@dataclass(frozen=True)
class RowError:
    """One bad row: where it is, which field, what is wrong."""

    where: str  # "line 7" (CSV) or "record 3" (JSON)
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


@dataclass(frozen=True)
class CourseEntry:
    """A valid catalogue row."""

    title: str
    url: str
    description: str = ""
    topics: tuple[str, ...] = ()
    duration_minutes: int | None = None
    activity_id: str = ""  # "" : the URL
    audience: tuple[str, ...] = ()
    where: str = ""

    @property
    def activity(self) -> str:
        return self.activity_id or self.url

    @property
    def text(self) -> str:
        """What is embedded to match questions against: title, topics, description."""
        parts = [self.title]
        if self.topics:
            parts.append("Topics: " + ", ".join(self.topics))
        if self.description:
            parts.append(self.description[:EMBEDDED_DESCRIPTION_CHARS])
        return ". ".join(parts)

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class ImportResult:
    """What an import did."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    embedded: int = 0

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "errors": [{"where": e.where, "field": e.field, "message": e.message} for e in self.errors],
        }


# -- reading ---------------------------------------------------------------------------------------


def read_catalogue(path: Path) -> tuple[list[CourseEntry], list[RowError]]:
    """The valid rows of a CSV or JSON catalogue file, and the errors of the others. Raises `CatalogueError`
    when the file cannot be read as a catalogue at all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"Cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path} is not UTF-8 text (byte {exc.start} cannot be read)") from None
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped[:1] in ("[", "{"):
        return parse_json(text, str(path))
    return parse_csv(text, str(path))


def parse_json(text: str, name: str = "the catalogue") -> tuple[list[CourseEntry], list[RowError]]:
    """A JSON list of course objects, or an object with a `courses` list."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("courses"), list):
        data = data["courses"]
    if not isinstance(data, list):
        raise CatalogueError(f'{name}: expected a JSON list of courses, or {{"courses": [...]}}')
    _check_size(len(data), name)
    return entries_from(((f"record {n}", item) for n, item in enumerate(data, start=1)))


def parse_csv(text: str, name: str = "the catalogue") -> tuple[list[CourseEntry], list[RowError]]:
    """A CSV file with a header row naming the fields (title, url, description, topics, duration,
    activity_id, audience; a few other names are understood: `ALIASES`)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogueError(f"{name} is empty") from None
    except csv.Error as exc:
        raise CatalogueError(f"{name}: line 1: {exc}") from None
    columns = [_field_name(h) for h in header]
    missing = [f for f in ("title", "url") if f not in columns]
    if missing:
        raise CatalogueError(
            f"{name}: the header row has no {' or '.join(missing)} column (it has: {', '.join(header) or 'nothing'}); "
            f"the columns are {', '.join(FIELDS)}"
        )

    def rows():
        count = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield f"line {reader.line_num}", exc
                continue
            count += 1
            _check_size(count, name)
            if not any(v.strip() for v in values):
                continue  # a blank line
            yield f"line {reader.line_num}", dict(zip(columns, values, strict=False))

    return entries_from(rows())


def entries_from(rows: Iterable[tuple[str, object]]) -> tuple[list[CourseEntry], list[RowError]]:
    """Validate rows (where, mapping of field -> value); a later row with an activity id seen before is an
    error naming the first."""
    entries: list[CourseEntry] = []
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        if isinstance(row, Exception):
            errors.append(RowError(where, "row", f"cannot be read as CSV ({row})"))
            continue
        if not isinstance(row, dict):
            errors.append(RowError(where, "row", "is not an object with the course's fields"))
            continue
        entry, problems = validate({_field_name(k): v for k, v in row.items() if isinstance(k, str)}, where)
        if problems:
            errors.extend(problems)
            continue
        first = seen.get(entry.activity)
        if first is not None:
            errors.append(RowError(where, "activity_id", f"{entry.activity!r} is already the course of {first}"))
            continue
        seen[entry.activity] = where
        entries.append(entry)
    return entries, errors


def validate(row: dict, where: str) -> tuple[CourseEntry | None, list[RowError]]:
    """One row as a course, or what is wrong with it (every wrong field)."""
    problems: list[RowError] = []

    def bad(name: str, message: str) -> None:
        problems.append(RowError(where, name, message))

    title = _text(row.get("title"))
    if not title:
        bad("title", "missing")
    elif len(title) > MAX_TITLE:
        bad("title", f"longer than {MAX_TITLE} characters")
    url = _text(row.get("url"))
    if not url:
        bad("url", "missing")
    elif (why := _bad_url(url, MAX_URL, web=True)) is not None:
        bad("url", why)
    activity_id = _text(row.get("activity_id"))
    if activity_id and (why := _bad_url(activity_id, MAX_ACTIVITY_ID, web=False)) is not None:
        bad("activity_id", why)
    description = _text(row.get("description"), keep_lines=True)
    if len(description) > MAX_DESCRIPTION:
        bad("description", f"longer than {MAX_DESCRIPTION} characters")
    topics, why = _list(row.get("topics"))
    if why:
        bad("topics", why)
    elif len(topics) > MAX_TOPICS:
        bad("topics", f"more than {MAX_TOPICS} topics")
    audience, why = _list(row.get("audience"))
    if why:
        bad("audience", why)
    duration, why = parse_duration(row.get("duration"))
    if why:
        bad("duration", why)
    if problems:
        return None, problems
    entry = CourseEntry(
        title=title,
        url=url,
        description=description,
        topics=topics,
        duration_minutes=duration,
        activity_id=activity_id,
        audience=audience,
        where=where,
    )
    return entry, []


def parse_duration(value) -> tuple[int | None, str | None]:
    """Minutes from 45, "45", "45 min", "1h30", "1 h 30 min", "1:30" or ISO 8601 "PT1H30M"; (None, why)
    when it cannot be read."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"{value!r} is not a duration"
    if isinstance(value, int | float):
        minutes = value
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            minutes = float(text)
        elif m := re.fullmatch(r"(\d+):([0-5]\d)", text):
            minutes = int(m[1]) * 60 + int(m[2])
        elif (m := _ISO_DURATION.match(text)) and any(m.groups()):
            days, hours, mins, secs = (float(g) if g else 0.0 for g in m.groups())
            minutes = days * 1440 + hours * 60 + mins + secs / 60
        elif (m := _HOURS_MINUTES.match(text.replace(" ", ""))) and any(m.groups()):
            minutes = int(m[1] or 0) * 60 + int(m[2] or 0)
        else:
            return None, f"{text[:40]!r} is not a duration (minutes, '1h30', '1:30' or ISO 8601 'PT1H30M')"
    if not 0 <= minutes <= 100_000:
        return None, f"{value!r} minutes is out of range"
    return round(minutes), None


def _field_name(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    return ALIASES.get(key, key)


def _text(value, *, keep_lines: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return ""
    text = str(value).strip()
    if keep_lines:
        return _CONTROL.sub(lambda m: m[0] if m[0] in "\n\t" else " ", text)
    return " ".join(_CONTROL.sub(" ", text).split())


def _bad_url(value: str, limit: int, *, web: bool) -> str | None:
    """Why `value` is not an absolute http(s) URL (`web`) or IRI; None when it is."""
    if len(value) > limit:
        return f"longer than {limit} characters"
    if any(c.isspace() for c in value):
        return f"{value[:60]!r} has spaces in it"
    parts = urlsplit(value)
    if web:
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return f"{value[:60]!r} is not an http(s) address"
    elif not parts.scheme or not (parts.netloc or parts.path):
        return f"{value[:60]!r} is not an absolute IRI (e.g. https://lms.example/courses/42)"
    return None


def _list(value) -> tuple[tuple[str, ...], str | None]:
    """Topics or groups: a JSON list, or text separated by ';', '|' or ','."""
    if value is None:
        return (), None
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            return (), "a list of words is expected"
        items = value
    elif isinstance(value, str):
        items = re.split(r"[;|,]", value)
    else:
        return (), f"{value!r} is not a list of words"
    return tuple(dict.fromkeys(t for t in (" ".join(_text(i).split()) for i in items) if t)), None


def _check_size(rows: int, name: str) -> None:
    if rows > MAX_ROWS:
        raise CatalogueError(f"{name} has more than {MAX_ROWS:,} rows: split it, or check it is a course catalogue")


# -- storing ---------------------------------------------------------------------------------------


def store_entries(database, team_id: str, entries: Sequence[CourseEntry], origin: str) -> ImportResult:
    """Add new courses and update changed ones of the workspace, in batches, in one transaction. A course is
    the same course when its activity id is (or, when this row has no activity id of its own, its URL)."""
    result = ImportResult(rows=len(entries))
    now = utcnow()
    with database.session() as session:
        existing = session.execute(
            select(
                Course.id,
                Course.activity_id,
                Course.url,
                Course.title,
                Course.description,
                Course.topics,
                Course.duration_minutes,
                Course.audience,
                Course.text_hash,
            ).where(Course.team_id == team_id)
        ).all()
        by_activity = {row.activity_id: row for row in existing}
        by_url = {row.url: row for row in existing}
        new: list[dict] = []
        changed: list[dict] = []
        for entry in entries:
            row = by_activity.get(entry.activity) or (None if entry.activity_id else by_url.get(entry.url))
            values = {
                "activity_id": entry.activity,
                "url": entry.url,
                "title": entry.title,
                "description": entry.description,
                "topics": list(entry.topics),
                "duration_minutes": entry.duration_minutes,
                "audience": list(entry.audience) or None,
                "text_hash": entry.text_hash,
            }
            if row is None:
                new.append({**values, "team_id": team_id, "origin": origin, "imported_at": now, "updated_at": now})
                continue
            if all(getattr(row, key) == value for key, value in values.items()):
                result.unchanged += 1
                continue
            update_values = {**values, "id": row.id, "origin": origin, "updated_at": now}
            if row.text_hash != entry.text_hash:
                update_values.update(embedding=None, embedding_model=None)  # embedded again
            changed.append(update_values)
        for start in range(0, len(new), BATCH):
            session.execute(insert(Course), new[start : start + BATCH])
        for start in range(0, len(changed), BATCH):
            session.execute(update(Course), changed[start : start + BATCH])
        result.added, result.updated = len(new), len(changed)
    return result


def embed_pending(database, embedder, team_id: str | None = None, *, progress=None) -> int:
    """Embed the courses not embedded yet with this model (new, changed, or embedded by another model), in
    batches, each committed; the number embedded."""
    model = embedder.spec.describe()
    done = 0
    while True:
        with database.session() as session:
            query = select(Course.id, Course.title, Course.description, Course.topics).where(
                (Course.embedding.is_(None)) | (Course.embedding_model != model)
            )
            if team_id is not None:
                query = query.where(Course.team_id == team_id)
            batch = session.execute(query.order_by(Course.id).limit(EMBED_BATCH * 8)).all()
        if not batch:
            return done
        texts = [CourseEntry(r.title, "", r.description, tuple(r.topics or ())).text for r in batch]
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        with database.session() as session:
            session.execute(
                update(Course),
                [
                    {"id": r.id, "embedding": v.tobytes(), "embedding_model": model}
                    for r, v in zip(batch, vectors, strict=True)
                ],
            )
        done += len(batch)
        if progress is not None:
            progress(done)


@dataclass(frozen=True)
class CourseView:
    """A course as the edges show it (`moment courses list`, the admin page)."""

    id: int
    title: str
    url: str
    activity_id: str
    description: str
    topics: tuple[str, ...]
    duration_minutes: int | None
    audience: tuple[str, ...]
    origin: str
    embedded: bool
    updated_at: dt.datetime

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "activity_id": self.activity_id,
            "description": self.description,
            "topics": list(self.topics),
            "duration_minutes": self.duration_minutes,
            "audience": list(self.audience),
            "origin": self.origin,
            "embedded": self.embedded,
            "updated_at": self.updated_at.isoformat(),
        }


def list_courses(database, team_id: str, *, limit: int | None = None, offset: int = 0) -> list[CourseView]:
    """The workspace's catalogue, by title."""
    with database.session() as session:
        query = (
            select(Course, Course.embedding.is_not(None).label("embedded"))
            .options(defer(Course.embedding))
            .where(Course.team_id == team_id)
            .order_by(func.lower(Course.title), Course.id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        return [
            CourseView(
                id=c.id,
                title=c.title,
                url=c.url,
                activity_id=c.activity_id,
                description=c.description,
                topics=tuple(c.topics or ()),
                duration_minutes=c.duration_minutes,
                audience=tuple(c.audience or ()),
                origin=c.origin,
                embedded=bool(embedded),
                updated_at=c.updated_at,
            )
            for c, embedded in session.execute(query).all()
        ]


def count_courses(database, team_id: str) -> int:
    with database.session() as session:
        return session.scalar(select(func.count(Course.id)).where(Course.team_id == team_id)) or 0
