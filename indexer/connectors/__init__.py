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

from indexer.connectors.base import Access, Change, Connector, Item, SourceError, SourceUnavailable

__all__ = ["KINDS", "Access", "Change", "Connector", "Item", "SourceError", "SourceUnavailable", "open_connector"]

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
