"""The `folder` kind: a folder of content files on this host (the content folder is the default source).

A folder is indexed where it lies (the build reads it as one of its roots), so the connector only tells
what changed: its cursor is each file's content hash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer import sources
from indexer.connectors.base import Change, Item, SourceUnavailable

MEDIA_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".html": "text/html", ".htm": "text/html"}
MEDIA_TYPES |= {".pdf": "application/pdf", ".txt": "text/plain", ".vtt": "text/vtt", ".srt": "application/x-subrip"}


class FolderConnector:
    """Content files below one folder."""

    kind = "folder"

    def __init__(self, target: str, max_bytes: int = sources.DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = Path(target)
        self.max_bytes = int(max_bytes)
        self.cursor: dict = {}

    def _files(self) -> list[sources.SourceFile]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"The folder {self.root} does not exist (or cannot be read) on this host.")
        found, _rejected = sources.discover(self.root, self.max_bytes)
        return found

    def changes(self, cursor: dict | None) -> Iterator[Change]:
        """Files added or changed since `cursor` (by content hash), and files gone."""
        before = dict((cursor or {}).get("digests", {}))
        now: dict[str, str] = {}
        for file in self._files():
            now[file.path] = file.digest or f"size:{file.size}"
            if before.get(file.path) != now[file.path]:
                yield Change(file.path, item=self._item(file))
        for path in sorted(set(before) - set(now)):
            yield Change(path, deleted=True)
        self.cursor = {"digests": now}

    def _item(self, file: sources.SourceFile, content: bytes | None = None) -> Item:
        stat = file.absolute.stat()
        return Item(
            id=file.path,
            title=None,
            link=file.absolute.resolve().as_uri(),
            modified=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC),
            media_type=MEDIA_TYPES.get(file.absolute.suffix.lower(), "application/octet-stream"),
            content=content,
            version=file.digest,
        )

    def fetch(self, item_id: str) -> Item:
        for file in self._files():
            if file.path == item_id:
                return self._item(file, file.absolute.read_bytes())
        raise KeyError(item_id)

    def ids(self) -> Iterable[str]:
        return [file.path for file in self._files()]
