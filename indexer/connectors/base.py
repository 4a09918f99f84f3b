"""The interface every connector implements and the items it yields (`indexer.connectors` describes how
they are used). The kinds import this, and the package's `open_connector` imports the kinds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


class SourceError(Exception):
    """A source that is set up wrongly (a bad target or option); the message says what to change."""


class SourceUnavailable(Exception):
    """The source as a whole cannot be read now; nothing of the last good sync is touched."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Access:
    """Who may read an item at its source. `public`: everyone (an open intranet page). Otherwise only the
    people named by e-mail, and the members of the groups named (their members' e-mails, when the source
    lists them): the assistant maps them to Slack people, and anyone it cannot map stays out."""

    public: bool = True
    emails: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group name -> members' e-mails

    @classmethod
    def restricted(cls, emails: Iterable[str] = (), groups: dict[str, Iterable[str]] | None = None) -> Access:
        return cls(
            False,
            tuple(sorted({e.strip().lower() for e in emails if e})),
            {g: tuple(sorted({m.strip().lower() for m in ms if m})) for g, ms in (groups or {}).items()},
        )

    def readers(self) -> tuple[str, ...]:
        """Every e-mail that may read the item (people named and group members), sorted."""
        found = set(self.emails)
        for members in self.groups.values():
            found.update(members)
        return tuple(sorted(found))


@dataclass(frozen=True)
class Item:
    """One item at a source: a page, a file. `content` is its bytes in `media_type` (text/html,
    application/pdf, text/markdown, text/plain, ...); None until fetched."""

    id: str  # stable at the source (a URL, a page id, a file id)
    title: str | None
    link: str  # the deep link people open
    modified: dt.datetime | None = None
    owner: str | None = None  # e-mail or name of the owner or last editor
    access: Access = Access()
    media_type: str = "text/html"
    content: bytes | None = None
    version: str | None = None  # the source's version tag (ETag, version number): unchanged means unchanged


@dataclass(frozen=True)
class Change:
    """One entry of `Connector.changes`: an item added or changed, an id deleted, or an item that failed."""

    id: str
    item: Item | None = None
    deleted: bool = False
    error: str | None = None


class Connector(Protocol):
    """What every kind implements (see the module docstring)."""

    kind: str
    cursor: dict

    def changes(self, cursor: dict | None) -> Iterator[Change]: ...

    def fetch(self, item_id: str) -> Item: ...

    def ids(self) -> Iterable[str] | None: ...
