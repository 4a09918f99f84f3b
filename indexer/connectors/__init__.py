"""Content sources as plug-ins: where items come from, and what changed there since the last sync.

A connector knows one kind of system (a folder, a web site, Confluence, ...). It has one small interface:

    connector = open_connector("web", target, settings, secrets)
    for change in connector.changes(cursor):     # what changed since `cursor` (None: everything)
        change.item                              # an `Item` (content included when cheap to get), or
        change.deleted                           # its id, gone at the source (or no longer readable)
        change.error                             # one item that failed, with the reason, for its owner
    connector.cursor                             # where the next sync starts (JSON-serialisable)
    connector.fetch(item_id)                     # one item with its content
    connector.ids()                              # every id at the source now (the prune pass; None:
                                                 # no listing cheaper than a sync)

A connector raises `SourceUnavailable` when the source as a whole cannot be read (bad credentials, a
timeout, 5xx, 429 with Retry-After): the sync then changes nothing and the last good items keep answering.
Connectors know nothing of Slack, the database or the index: the assistant's sync (`assistant/sources/`)
turns items into content files and builds them through the one indexing path.
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


KINDS = ("folder", "web", "confluence", "sharepoint", "gdrive")


def open_connector(kind: str, target: str, settings: dict | None = None, secrets: dict | None = None) -> Connector:
    """The connector of `kind` for `target` with its options; raises `SourceError` for an unknown kind or a
    target it cannot use."""
    settings = dict(settings or {})
    try:
        return _open(kind, target, settings, secrets)
    except TypeError as exc:  # an option the kind does not have
        raise SourceError(f"The {kind} kind has no such option ({exc}).") from None


def _open(kind: str, target: str, settings: dict, secrets: dict | None) -> Connector:
    if kind == "folder":
        from indexer.connectors.folder import FolderConnector

        return FolderConnector(target, **settings)
    if kind == "web":
        from indexer.connectors.web import WebConnector

        return WebConnector(target, secrets=secrets, **settings)
    if kind == "confluence":
        from indexer.connectors.confluence import ConfluenceConnector

        return ConfluenceConnector(target, secrets=secrets, **settings)
    if kind == "sharepoint":
        from indexer.connectors.sharepoint import SharePointConnector

        return SharePointConnector(target, secrets=secrets, **settings)
    if kind == "gdrive":
        from indexer.connectors.gdrive import DriveConnector

        return DriveConnector(target, secrets=secrets, **settings)
    raise SourceError(f"Unknown source kind '{kind}': use one of {', '.join(KINDS)}.")
