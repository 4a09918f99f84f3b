"""What crosses the indexer's boundaries: documents, their sections, chunks, and load failures."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

CONTENT_TYPES = ("job-aid", "procedure", "reference", "video")


class ContentError(Exception):
    """A content file that cannot be indexed; the message is written for the content's owner."""


class AudienceError(ContentError):
    """A content file whose `audience` cannot be read. Unlike other errors, an earlier indexed version of the
    file does not keep serving: its audience may be what the owner meant to change (restricted items are
    withheld, never shown, when their audience is in doubt)."""


_GROUP_ID = re.compile(r"^S(?=[A-Z0-9]*[0-9])[A-Z0-9]{6,}$")
_GROUP_HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_GROUP_MENTION = re.compile(r"^<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>$")
_PERSON_MENTION = re.compile(r"^<@([UW][A-Z0-9]{6,})(?:\|[^>]*)?>$")


def person_id(value: str) -> str | None:
    """A Slack user an audience names one by one, written as Slack mentions them (`<@U0123ABCD>`): their id,
    upper case (group handles are lower case and group ids start with S, so neither is ever taken for one).
    Synced sources name the people an item is shared with this way."""
    match = _PERSON_MENTION.match(value.strip())
    return match.group(1) if match else None


def group_name(value: str) -> str | None:
    """A Slack user group as content and the group cache both name it: its id (`S0123ABCD`, also written
    `<!subteam^S0123ABCD>`) as is, or its handle lower-cased without the `@` (`@People-Ops` -> `people-ops`).
    None when `value` is neither."""
    text = value.strip()
    if mention := _GROUP_MENTION.match(text):
        text = mention.group(1)
    if _GROUP_ID.match(text):
        return text
    handle = text.removeprefix("@").lower()
    return handle if _GROUP_HANDLE.match(handle) else None


@dataclass(frozen=True)
class DocumentMeta:
    """Curated metadata of one content item (front matter, or a `.yml` sidecar)."""

    title: str
    type: str
    owner: str | None = None
    tags: tuple[str, ...] = ()
    reviewed: dt.date | None = None
    review_every: int | None = None
    url: str | None = None
    duration: float | None = None  # videos only, seconds
    # Slack user groups (ids like S0123ABCD, or handles like managers) whose members alone may see the item,
    # and people by their user id (U0123ABCD, from a synced source's sharing); empty: everyone.
    # See assistant/access/audiences.py.
    audience: tuple[str, ...] = ()
    # `lead`: the heading path of the section shown first when this page is the best but its passage is
    # uncertain (safety procedures: "Immediate actions"); empty: none. See assistant/answering/lead.py.
    lead: tuple[str, ...] = ()

    def review_due(self) -> dt.date | None:
        """The date the item is due for review, when it has a review cycle."""
        if self.reviewed is None or not self.review_every:
            return None
        return self.reviewed + dt.timedelta(days=self.review_every)

    def is_stale(self, today: dt.date | None = None) -> bool:
        """True when the item is past its review date."""
        due = self.review_due()
        return due is not None and due < (today or dt.date.today())


def is_table_row(block: str) -> bool:
    """A table row as the loaders write it: its cells joined by " | " (the first row of a run is the header)."""
    return " | " in block


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (or one page of a PDF, or one stretch of a video)."""

    heading_path: tuple[str, ...]
    blocks: tuple[str, ...]  # paragraphs, list items, table rows: the units the chunker packs
    anchor: str | None = None  # URL fragment of the heading, when the source has one
    page: int | None = None
    # Transcripts: one (start, end, text) per cue, so chunks keep their times.
    cues: tuple[tuple[float, float, str], ...] = ()


@dataclass(frozen=True)
class Document:
    """One loaded content file: its metadata and its sections, in order."""

    path: str  # relative to the content root, POSIX separators
    meta: DocumentMeta
    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """The unit that is embedded and searched."""

    doc_path: str
    position: int  # order within the document
    heading_path: tuple[str, ...]
    text: str
    anchor: str | None = None
    page: int | None = None
    start_seconds: float | None = None
    end_seconds: float | None = None
    # Transcripts: (character offset in `text`, start seconds) of each cue, so a passage inside the
    # chunk can link to its own second.
    cue_starts: tuple[tuple[int, float], ...] = ()

    def seconds_at(self, offset: int) -> float | None:
        """The start time of the cue that contains character `offset` of the text (videos only)."""
        if not self.cue_starts:
            return self.start_seconds
        best = self.cue_starts[0][1]
        for cue_offset, seconds in self.cue_starts:
            if cue_offset > offset:
                break
            best = seconds
        return best

    def search_text(self, title: str) -> str:
        """The text that is embedded and keyword-indexed: the title and heading path give context."""
        context = " > ".join((title, *self.heading_path)) if self.heading_path else title
        return f"{context}\n{self.text}"


@dataclass
class Failure:
    """A file that could not be indexed, and why, in words its owner understands."""

    path: str
    reason: str


@dataclass
class BuildReport:
    """What one index build did; `moment index --json` prints this."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    version: str | None = None
    previous_version: str | None = None
    published: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every file was indexed."""
        return not self.failed

    def to_dict(self) -> dict:
        """The stable JSON shape other tools rely on."""
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "warnings": [{"path": w.path, "reason": w.reason} for w in self.warnings],
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded_chunks": self.embedded_chunks,
            "version": self.version,
            "previous_version": self.previous_version,
            "published": self.published,
            "seconds": round(self.seconds, 3),
        }
