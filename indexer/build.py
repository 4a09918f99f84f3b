"""Build a new index version from a content folder, incrementally.

Each document's content hash (file plus sidecar) is recorded in the index. A build reuses the chunks
and vectors of every document whose hash, the model and the chunker are unchanged, embeds only added
and changed documents, and drops removed ones. A document that fails to load is reported and, if an
earlier version of it was indexed, that earlier version keeps serving: a typo in front matter never
takes an answer away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from indexer import sources
from indexer.chunking import CHUNKER_VERSION, Chunker
from indexer.documents import AudienceError, BuildReport, Chunk, ContentError, Document, Failure
from indexer.embedding import Embedder
from indexer.store import FORMAT_VERSION, IndexedDocument, IndexMissingError, IndexStore, IndexVersion

ProgressCallback = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)
EMBED_BATCH = 256
SYMLINK_SKIPPED = (
    "Skipped: a symbolic link, which Moment does not follow (it could bring any file on the host into answers). "
    "Copy the file or folder into the content folder instead."
)


@dataclass
class _Planned:
    path: str
    digest: str
    document: Document | None = None  # loaded anew
    chunks: list[Chunk] | None = None
    reused_from: IndexedDocument | None = None  # carried over from the previous version


def build_index(
    content_dir: Path,
    store: IndexStore,
    embedder: Embedder,
    *,
    full: bool = False,
    max_file_bytes: int = sources.DEFAULT_MAX_FILE_BYTES,
    faiss_kind: str = "auto",
    on_progress: ProgressCallback | None = None,
    lock_timeout: float = -1,
    extra_roots: dict[str, Path] | None = None,
) -> BuildReport:
    """Index `content_dir` into a new version of `store` and publish it.

    `extra_roots` ({folder name: folder}) adds more folders, read as if they were `content_dir/<name>`
    (synced content sources; a missing one is read as empty).

    Nothing is published when nothing changed. Raises `FileNotFoundError` when the content folder
    does not exist; every problem with a single file is reported in `BuildReport.failed` instead.
    """
    started = time.perf_counter()
    content_dir = Path(content_dir)
    if not content_dir.is_dir():
        raise FileNotFoundError(f"The content folder {content_dir} does not exist.")
    report = BuildReport()
    with store.lock(timeout=lock_timeout):
        previous = _open_previous(store)
        report.previous_version = previous.version if previous else None
        reusable = (
            previous is not None
            and not full
            and previous.spec == embedder.spec
            and previous.meta.get("chunker") == CHUNKER_VERSION
            # An index of an older format lacks metadata (format 2: audiences): every file is read again.
            and previous.meta.get("format") == FORMAT_VERSION
        )
        old_docs = previous.by_path if previous else {}

        links: list[str] = []
        files, rejected = sources.discover(content_dir, max_file_bytes, links)
        for prefix, root in sorted((extra_roots or {}).items()):
            if Path(root).is_dir():
                extra, extra_rejected = sources.discover(Path(root), max_file_bytes, links)
                files = [f for f in files if not f.path.startswith(f"{prefix}/")]  # the source wins its name
                files += [replace(f, path=f"{prefix}/{f.path}") for f in extra]
                rejected += [(f"{prefix}/{path}", reason) for path, reason in extra_rejected]
        files.sort(key=lambda f: f.path)  # new vectors are assembled in path order
        report.failed.extend(Failure(path, reason) for path, reason in rejected)
        report.warnings.extend(Failure(path, SYMLINK_SKIPPED) for path in links)
        chunker = Chunker(embedder.count_tokens)
        planned: list[_Planned] = []
        for source in files:
            old = old_docs.get(source.path)
            if reusable and old is not None and source.digest == old.digest:
                planned.append(_Planned(source.path, old.digest, reused_from=old))
                report.unchanged.append(source.path)
                continue
            try:
                document = sources.load(source, max_file_bytes)
                chunks = chunker.chunk(document)
            except ContentError as exc:
                reason = str(exc)
                if isinstance(exc, AudienceError):
                    if old is not None:
                        reason += " The previously indexed version is withdrawn too until this is fixed."
                elif old is not None and previous is not None and previous.spec == embedder.spec:
                    reason += " The previously indexed version stays in the index until this is fixed."
                    planned.append(_Planned(source.path, old.digest, reused_from=old))
                report.failed.append(Failure(source.path, reason))
                continue
            except Exception as exc:  # a parser bug must not sink the other files
                report.failed.append(Failure(source.path, f"Moment could not read this file ({exc!r})."))
                continue
            report.warnings.extend(Failure(source.path, w) for w in document.warnings)
            planned.append(_Planned(source.path, source.digest or "", document=document, chunks=chunks))
            (report.changed if source.path in old_docs else report.added).append(source.path)
        present = {p.path for p in planned} | {s.path for s in files}
        report.removed = sorted(path for path in old_docs if path not in present)

        to_embed = [c for p in planned if p.chunks for c in p.chunks]
        titles = {p.path: p.document.meta.title for p in planned if p.document}
        new_vectors = _embed(embedder, [c.search_text(titles[c.doc_path]) for c in to_embed], on_progress)
        report.embedded_chunks = len(to_embed)

        nothing_changed = (
            previous is not None
            and reusable
            and not (report.added or report.changed or report.removed)
            and all(p.reused_from is not None for p in planned)
            and len(planned) == len(previous.documents)
        )
        if nothing_changed:
            report.version = previous.version
            report.documents = len(previous.documents)
            report.chunks = previous.size
            report.seconds = time.perf_counter() - started
            return report

        documents, chunks, vectors_ = _assemble(planned, previous, new_vectors, embedder.spec.dimension)
        if not documents:
            # Publishing an empty index would silently take every answer away.
            report.seconds = time.perf_counter() - started
            report.version = previous.version if previous else None
            report.failed.append(Failure(str(content_dir), "No document could be indexed, so nothing was published."))
            return report
        writer = store.begin()
        try:
            writer.write(
                spec=embedder.spec,
                chunker_version=CHUNKER_VERSION,
                documents=documents,
                chunks=chunks,
                embeddings=vectors_,
                previous=previous.version if previous else None,
                faiss_kind=faiss_kind,
                extra={"content_root": str(content_dir.resolve())},
            )
            writer.publish()
        except BaseException:
            writer.abandon()
            raise
        report.version = writer.version
        report.published = True
        report.documents = len(documents)
        report.chunks = len(chunks)
    report.seconds = time.perf_counter() - started
    return report


def _open_previous(store: IndexStore) -> IndexVersion | None:
    try:
        # Under the build lock nothing prunes versions, so the search structures can stay closed.
        return store.open(search=False)
    except IndexMissingError:
        return None


def _embed(embedder: Embedder, texts: list[str], on_progress: ProgressCallback | None) -> np.ndarray:
    if not texts:
        return np.zeros((0, embedder.spec.dimension), dtype=np.float32)
    parts = []
    if on_progress:
        on_progress(0, len(texts))
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(embedder.encode(texts[start : start + EMBED_BATCH]))
        if on_progress:
            on_progress(min(start + EMBED_BATCH, len(texts)), len(texts))
    return np.concatenate(parts)


def _assemble(
    planned: list[_Planned], previous: IndexVersion | None, new_vectors: np.ndarray, dimension: int
) -> tuple[list[IndexedDocument], list[Chunk], np.ndarray]:
    documents: list[IndexedDocument] = []
    chunks: list[Chunk] = []
    parts: list[np.ndarray] = []
    cursor = 0
    for item in sorted(planned, key=lambda p: p.path):
        number = len(documents)
        start = len(chunks)
        if item.reused_from is not None:
            old = item.reused_from
            stored = previous.document_chunks(old.path)
            chunks.extend(s.chunk for s in stored)
            parts.append(np.asarray(previous.embeddings[old.chunk_start : old.chunk_start + old.chunk_count]))
            documents.append(IndexedDocument(number, old.path, old.meta, old.digest, start, len(stored), old.warnings))
        else:
            doc_chunks = item.chunks or []
            chunks.extend(doc_chunks)
            parts.append(new_vectors[cursor : cursor + len(doc_chunks)])
            cursor += len(doc_chunks)
            documents.append(
                IndexedDocument(
                    number,
                    item.path,
                    item.document.meta,
                    item.digest,
                    start,
                    len(doc_chunks),
                    item.document.warnings,
                )
            )
    vectors_ = np.concatenate(parts) if parts else np.zeros((0, dimension), dtype=np.float32)
    return documents, chunks, vectors_
