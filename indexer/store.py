"""Index versions on disk, published atomically.

    index/
      CURRENT                 the id of the version that serves (replaced atomically)
      build.lock              held while a build runs: two builds run one after the other
      versions/<id>/          immutable once published
        meta.json             model spec, chunker version, counts, when, from which version
        catalog.sqlite        documents (metadata, content hash, chunk range) and chunks (text, heading
                              path, anchor, page, video times)
        embeddings.npy        float32 vectors, row i = chunk i (reused by incremental builds)
        chunk_doc.npy         document number of each chunk
        dense.faiss           the vector index
        keywords/             the BM25 index and its tokenizer vocabulary

A build writes `versions/.building-<id>/`, renames it into place, then replaces CURRENT. A reader
therefore sees the old version or the new one, never a half-written one; a build that fails or is
killed leaves CURRENT untouched. The last `keep` versions stay on disk so that a reader that has just
read CURRENT still finds its version, and so an admin can roll back.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import secrets
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.documents import Chunk, DocumentMeta
from indexer.embedding import EmbedderSpec
from indexer.keywords import KeywordIndex
from indexer.spelling import is_english_word

FORMAT_VERSION = 4  # 3: documents carry their audience; 4: and their lead section
READABLE_FORMATS = (2, 3, 4)  # format 2 is read as having no audiences, 2 and 3 as having no lead sections
DEFAULT_KEEP = 3


class IndexMissingError(Exception):
    """There is no published index where one was expected; the message says how to build one."""


@dataclass(frozen=True)
class IndexedDocument:
    """A document as recorded in an index version."""

    number: int
    path: str
    meta: DocumentMeta
    digest: str
    chunk_start: int
    chunk_count: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as recorded in an index version; `id` is its row in the vector and keyword indexes."""

    id: int
    chunk: Chunk


_SCHEMA = """
CREATE TABLE documents (
    number INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, digest TEXT NOT NULL,
    title TEXT NOT NULL, type TEXT NOT NULL, owner TEXT, tags TEXT NOT NULL, reviewed TEXT,
    review_every INTEGER, url TEXT, duration REAL, chunk_start INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL, warnings TEXT NOT NULL, audience TEXT NOT NULL, lead TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, doc_number INTEGER NOT NULL, position INTEGER NOT NULL,
    heading_path TEXT NOT NULL, text TEXT NOT NULL, anchor TEXT, page INTEGER,
    start_seconds REAL, end_seconds REAL, cue_starts TEXT
);
"""


class IndexStore:
    """The folder that holds every version of one index."""

    def __init__(self, root: Path, keep: int = DEFAULT_KEEP) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(
                errno.ENOTDIR, "a file, not an index folder: give a folder (--index or MOMENT_INDEX_DIR)", str(root)
            )
        self.keep = max(2, keep)
        self.versions_dir = self.root / "versions"

    # -- reading ------------------------------------------------------------------------------

    def current(self) -> str | None:
        """The id of the serving version, or None when nothing was published yet."""
        try:
            value = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return value or None

    def versions(self) -> list[str]:
        """Published version ids, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def open(self, version: str | None = None, *, search: bool = True) -> IndexVersion:
        """Open a version (default: the serving one) for reading.

        With `search` (the default) the vector and keyword indexes are opened now too, so the version
        stays fully readable even if a later build prunes it while it is being served.
        """
        for _ in range(5):
            wanted = version or self.current()
            if wanted is None:
                raise IndexMissingError(
                    f"No index has been built in {self.root} yet. Build it with `moment index` "
                    "(or `moment index --content DIR` for another content folder)."
                )
            directory = self.versions_dir / wanted
            try:
                return IndexVersion(wanted, directory, search=search)
            except (FileNotFoundError, sqlite3.OperationalError, RuntimeError) as exc:
                # FAISS says a vanished file with a RuntimeError: pruned only if no longer the serving one.
                if isinstance(exc, RuntimeError) and directory.exists() and self.current() == wanted:
                    raise
                if version is not None:
                    raise IndexMissingError(f"Index version {version} does not exist in {self.root}.") from None
                continue  # pruned between reading CURRENT and opening it: read CURRENT again
        raise IndexMissingError(f"The index in {self.root} is damaged: rebuild it with `moment index --full`.")

    # -- writing ------------------------------------------------------------------------------

    def lock(self, timeout: float = -1):
        """The build lock: concurrent builds (two `/moment reindex`, cron and a human) queue on it."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / "build.lock"), timeout=timeout)

    def begin(self) -> VersionWriter:
        """Start writing a new version; call under `lock()`."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.versions_dir.glob(".building-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a build that was killed
        # Sortable by age (builds run one at a time under the lock), unique across hosts.
        version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f") + "-" + secrets.token_hex(3)
        latest = self.versions()
        if latest and version <= latest[-1]:  # a clock that stepped back must not reorder versions
            version = latest[-1].split("-")[0] + "1-" + secrets.token_hex(3)
        return VersionWriter(self, version, self.versions_dir / f".building-{version}")

    def _publish(self, writer: VersionWriter) -> None:
        final = self.versions_dir / writer.version
        _fsync_tree(writer.directory)
        writer.directory.rename(final)
        _fsync_dir(self.versions_dir)
        self.set_current(writer.version)
        self.prune()

    def set_current(self, version: str) -> None:
        """Point CURRENT at a published version, atomically (also used to roll back)."""
        if not (self.versions_dir / version).is_dir():
            raise IndexMissingError(f"Index version {version} does not exist in {self.root}.")
        tmp = self.root / f".CURRENT.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "CURRENT")
        _fsync_dir(self.root)

    def export(self, version: str) -> bytes:
        """One published version as a gzipped tar (to publish it where other hosts can fetch it)."""
        import io
        import tarfile

        directory = self.versions_dir / version
        if not directory.is_dir():
            raise IndexMissingError(f"Index version {version} does not exist in {self.root}.")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted(directory.iterdir()):
                tar.add(path, arcname=path.name)
        return buffer.getvalue()

    def install(self, version: str, archive: bytes) -> bool:
        """Install a version exported by another host and serve it, unless it is not newer than the
        serving one. Returns True when it now serves. Readers see the old or the new version, never a mix."""
        import io
        import tarfile

        with self.lock():
            current = self.current()
            if current is not None and current >= version:
                return False
            if not (self.versions_dir / version).is_dir():
                self.versions_dir.mkdir(parents=True, exist_ok=True)
                building = self.versions_dir / f".building-{version}"
                shutil.rmtree(building, ignore_errors=True)
                building.mkdir()
                with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                    tar.extractall(building, filter="data")
                _fsync_tree(building)
                building.rename(self.versions_dir / version)
                _fsync_dir(self.versions_dir)
            IndexVersion(version, self.versions_dir / version, search=False).close()  # refuse a damaged one
            self.set_current(version)
            self.prune()
            return True

    def prune(self) -> list[str]:
        """Delete all but the newest `keep` versions (never the serving one); returns what went."""
        current = self.current()
        existing = self.versions()
        doomed = [v for v in existing[: max(0, len(existing) - self.keep)] if v != current]
        for version in doomed:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)
        return doomed


class VersionWriter:
    """Writes the files of one version into a private folder, then publishes it."""

    def __init__(self, store: IndexStore, version: str, directory: Path) -> None:
        self.store = store
        self.version = version
        self.directory = directory
        directory.mkdir(parents=True)

    def write(
        self,
        *,
        spec: EmbedderSpec,
        chunker_version: str,
        documents: list[IndexedDocument],
        chunks: list[Chunk],
        embeddings: np.ndarray,
        previous: str | None,
        faiss_kind: str = "auto",
        extra: dict | None = None,
    ) -> None:
        """Write every file of the version (documents numbered in order, chunks in id order)."""
        d = self.directory
        with sqlite3.connect(d / "catalog.sqlite") as db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        doc.number,
                        doc.path,
                        doc.digest,
                        doc.meta.title,
                        doc.meta.type,
                        doc.meta.owner,
                        json.dumps(list(doc.meta.tags)),
                        doc.meta.reviewed.isoformat() if doc.meta.reviewed else None,
                        doc.meta.review_every,
                        doc.meta.url,
                        doc.meta.duration,
                        doc.chunk_start,
                        doc.chunk_count,
                        json.dumps(list(doc.warnings)),
                        json.dumps(list(doc.meta.audience)),
                        json.dumps(list(doc.meta.lead)),
                    )
                    for doc in documents
                ],
            )
            numbers = {doc.path: doc.number for doc in documents}
            db.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        i,
                        numbers[c.doc_path],
                        c.position,
                        json.dumps(list(c.heading_path)),
                        c.text,
                        c.anchor,
                        c.page,
                        c.start_seconds,
                        c.end_seconds,
                        json.dumps(c.cue_starts) if c.cue_starts else None,
                    )
                    for i, c in enumerate(chunks)
                ],
            )
        db.close()
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(len(chunks), spec.dimension)
        np.save(d / "embeddings.npy", embeddings)
        np.save(d / "chunk_doc.npy", np.array([numbers[c.doc_path] for c in chunks], dtype=np.int32))
        dense = vectors.build(embeddings, faiss_kind)
        vectors.save(dense, d)
        titles = {doc.path: doc.meta.title for doc in documents}
        keyword_dir = d / "keywords"
        keyword_dir.mkdir()
        KeywordIndex.build([c.search_text(titles[c.doc_path]) for c in chunks]).save(keyword_dir)
        meta = {
            "format": FORMAT_VERSION,
            "version": self.version,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "embedding": spec.to_dict(),
            "chunker": chunker_version,
            "documents": len(documents),
            "chunks": len(chunks),
            "by_type": _count_by_type(documents),
            "dense_index": vectors.kind_of(dense),
            "previous": previous,
            **(extra or {}),
        }
        (d / "meta.json").write_text(json.dumps(meta, indent=2))

    def publish(self) -> None:
        """Make this version the serving one."""
        self.store._publish(self)

    def abandon(self) -> None:
        """Throw the half-written version away (the serving one is untouched)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _count_by_type(documents: list[IndexedDocument]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for doc in documents:
        entry = out.setdefault(doc.meta.type, {"documents": 0, "chunks": 0})
        entry["documents"] += 1
        entry["chunks"] += doc.chunk_count
    return out


class IndexVersion:
    """One published version, open for reading. Thread-safe; vectors and scores are memory-mapped."""

    def __init__(self, version: str, directory: Path, search: bool = True) -> None:
        self.version = version
        self.directory = directory
        self.meta = json.loads((directory / "meta.json").read_text())
        if self.meta.get("format") not in READABLE_FORMATS:
            raise IndexMissingError(
                f"Index version {version} has an old format: rebuild it with `moment index --full`."
            )
        self.spec = EmbedderSpec.from_dict(self.meta["embedding"])
        # Opened now, so that the version stays readable even if it is pruned while we serve it.
        self._db = sqlite3.connect(f"file:{directory / 'catalog.sqlite'}?mode=ro", uri=True, check_same_thread=False)
        self._db_lock = threading.Lock()
        self.chunk_doc = np.load(directory / "chunk_doc.npy", mmap_mode="r")
        audience = "audience" if self.meta["format"] >= 3 else "'[]'"
        lead = "lead" if self.meta["format"] >= 4 else "'[]'"
        self.documents: list[IndexedDocument] = [
            _document_from_row(r)
            for r in self._query(
                "SELECT number, path, digest, title, type, owner, tags, reviewed, review_every, url, duration,"
                f" chunk_start, chunk_count, warnings, {audience}, {lead} FROM documents ORDER BY number"
            )
        ]
        self.by_path = {doc.path: doc for doc in self.documents}
        # Documents only some people may see: number -> the user groups that may (most indexes: none).
        self.restricted: dict[int, tuple[str, ...]] = {
            d.number: d.meta.audience for d in self.documents if d.meta.audience
        }
        self._filters: dict[tuple[int, ...], ChunkFilter] = {}
        self._dense = None
        self._keywords: KeywordIndex | None = None
        self._embeddings: np.ndarray | None = None
        self._load_lock = threading.Lock()
        if search:
            self.warm()

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.meta["created_at"])

    @property
    def size(self) -> int:
        """Number of chunks."""
        return int(self.meta["chunks"])

    @property
    def dense(self):
        """The FAISS index (loaded on first use)."""
        if self._dense is None:
            with self._load_lock:
                if self._dense is None:
                    self._dense = vectors.load(self.directory)
        return self._dense

    @property
    def keywords(self) -> KeywordIndex:
        """The BM25 index (loaded on first use)."""
        if self._keywords is None:
            with self._load_lock:
                if self._keywords is None:
                    self._keywords = KeywordIndex.load(self.directory / "keywords", self.size)
        return self._keywords

    @property
    def embeddings(self) -> np.ndarray:
        """All chunk vectors, memory-mapped (for incremental builds and snippet scoring)."""
        if self._embeddings is None:
            self._embeddings = np.load(self.directory / "embeddings.npy", mmap_mode="r")
        return self._embeddings

    def warm(self) -> None:
        """Open the search structures now rather than on the first question."""
        _ = self.dense, self.keywords, self.embeddings
        is_english_word("")  # the word list (0.1 s), read when a question has a word the content does not use

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        """Chunks by id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT c.id, d.path, c.position, c.heading_path, c.text, c.anchor, c.page, c.start_seconds,"
            " c.end_seconds, c.cue_starts FROM chunks c JOIN documents d ON d.number = c.doc_number"
            f" WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        )
        return {
            r[0]: StoredChunk(
                r[0],
                Chunk(
                    r[1],
                    r[2],
                    tuple(json.loads(r[3])),
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    r[8],
                    tuple((int(o), float(t)) for o, t in json.loads(r[9])) if r[9] else (),
                ),
            )
            for r in rows
        }

    def document_chunks(self, path: str) -> list[StoredChunk]:
        """All chunks of one document, in order."""
        doc = self.by_path[path]
        found = self.chunks(list(range(doc.chunk_start, doc.chunk_start + doc.chunk_count)))
        return [found[i] for i in sorted(found)]

    def chunk_filter(self, hidden: tuple[int, ...]) -> ChunkFilter | None:
        """What keeps the chunks of the documents numbered `hidden` out of a search (None: nothing hidden).
        Made once per set of hidden documents and kept (people in the same groups share one)."""
        if not hidden:
            return None
        found = self._filters.get(hidden)
        if found is None:
            with self._load_lock:
                found = self._filters.get(hidden)
                if found is None:
                    if len(self._filters) >= MAX_FILTERS:
                        self._filters.clear()
                    found = ChunkFilter(self.size, [self.documents[n] for n in hidden], self.dense)
                    self._filters[hidden] = found
        return found

    def _query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._db_lock:
            self._db.close()


MAX_FILTERS = 256  # distinct sets of hidden documents kept per version


class ChunkFilter:
    """The chunks a search must leave out (those of documents the asker may not see), applied before
    ranking on both sides: FAISS searches with an ID selector (a bitmap of allowed chunks), so the nearest
    allowed chunks fill the candidates; BM25 scores of hidden chunks are zeroed before the top is taken."""

    def __init__(self, size: int, hidden: list[IndexedDocument], dense) -> None:
        allowed = np.ones(size, dtype=bool)
        for doc in hidden:
            allowed[doc.chunk_start : doc.chunk_start + doc.chunk_count] = False
        self.allowed = allowed
        self.hidden_ids = np.flatnonzero(~allowed)
        self.search_params = vectors.search_params(dense, allowed)

    def keep(self, ids: np.ndarray) -> np.ndarray:
        """`ids` without hidden chunks."""
        return ids[self.allowed[ids]]


def _document_from_row(r: tuple) -> IndexedDocument:
    meta = DocumentMeta(
        title=r[3],
        type=r[4],
        owner=r[5],
        tags=tuple(json.loads(r[6])),
        reviewed=dt.date.fromisoformat(r[7]) if r[7] else None,
        review_every=r[8],
        url=r[9],
        duration=r[10],
        audience=tuple(json.loads(r[14])),
        lead=tuple(json.loads(r[15])),
    )
    return IndexedDocument(r[0], r[1], meta, r[2], r[11], r[12], tuple(json.loads(r[13])))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))
