"""Where a synced source's items live on disk, as content files the build reads like any other.

    MOMENT_HOME/sources/<name>/items/   one file per item (HTML, PDF, text) and its `.yml` sidecar

The build reads each such folder as `<name>/…` of the content (`synced_roots`). Every file is written to a
temporary name and renamed into place, the sidecar before the content: an interrupted sync leaves each item
whole (old or new), and an item's new audience is never later than its new text (fail closed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from pathlib import Path

import yaml

from indexer.connectors import Item

EXTENSIONS = {
    "text/html": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".txt",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
}

SUFFIXES = (".yml", *sorted(set(EXTENSIONS.values())))  # every file an item can have


def sources_dir(home: Path) -> Path:
    return Path(home) / "sources"


def synced_roots(home: Path) -> dict[str, Path]:
    """{source name: its items folder} of every synced source on this host, for the build."""
    root = sources_dir(home)
    if not root.is_dir():
        return {}
    return {p.name: p / "items" for p in sorted(root.iterdir()) if (p / "items").is_dir()}


class ItemFolder:
    """The items folder of one source."""

    def __init__(self, home: Path, name: str) -> None:
        self.base = sources_dir(home) / name
        self.root = self.base / "items"

    def file_stem(self, item_id: str) -> str:
        """A readable, stable file name for an id: the end of its path, and a hash that keeps it unique."""
        tail = re.sub(r"[^A-Za-z0-9]+", "-", item_id.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("-")
        return f"{(tail or 'index')[:60].lower()}-{hashlib.sha1(item_id.encode()).hexdigest()[:12]}"

    def files_of(self, item_id: str) -> list[Path]:
        """The item's files, looked up by name (each extension Moment writes), not by listing the folder."""
        stem = self.file_stem(item_id)
        return [path for ext in SUFFIXES if (path := self.root / f"{stem}{ext}").is_file()]

    def write(self, item: Item, meta: dict) -> str:
        """Store `item` (its content must be fetched) with its metadata; returns the file's name."""
        self.root.mkdir(parents=True, exist_ok=True)
        ext = EXTENSIONS.get(item.media_type)
        if ext is None:
            raise ValueError(f"Moment cannot index {item.media_type} items.")
        stem = self.file_stem(item.id)
        sidecar = self.root / f"{stem}.yml"
        content = self.root / f"{stem}{ext}"
        _atomic_write(sidecar, yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).encode("utf-8"))
        _atomic_write(content, item.content or b"")
        for other in self.files_of(item.id):
            if other not in (sidecar, content):
                other.unlink(missing_ok=True)  # it was another kind of file before (HTML then PDF)
        return content.name

    def write_file(self, relative: str, data: bytes) -> None:
        """A file copied as it is (the folder kind: content with its own front matter or sidecar)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)

    def delete(self, item_id: str) -> bool:
        """Remove an item's files; True when there were any."""
        files = self.files_of(item_id)
        for path in files:
            path.unlink(missing_ok=True)
        return bool(files)

    def delete_file(self, relative: str) -> bool:
        path = self.root / relative
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def count(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(1 for p in self.root.rglob("*") if p.is_file() and p.suffix not in (".yml", ".yaml"))

    def remove_all(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def item_meta(item: Item, source: str, owner_slack_id: str | None, audience: list[str] | None) -> dict:
    """The sidecar of an item: what the build reads (title, url, reviewed, owner, audience) and where it
    came from (source, id, editor)."""
    meta: dict = {"type": "reference", "url": item.link, "source": source, "source_id": item.id}
    if item.title:
        meta["title"] = item.title
    if item.modified is not None:
        meta["reviewed"] = item.modified.astimezone(dt.UTC).date().isoformat()
        meta["modified"] = item.modified.astimezone(dt.UTC).isoformat()
    if owner_slack_id:
        meta["owner"] = owner_slack_id
    if item.owner:
        meta["editor"] = item.owner
    if audience:
        meta["audience"] = [f"<@{user}>" for user in audience]
    return meta


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.part")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
