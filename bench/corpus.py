"""Large synthetic corpora, made by varying the demo content, and indexes over them.

How the corpora are made
------------------------
Copy 0 is the demo content (`content/`, 34 items, ~250 chunks) unchanged, so the eval questions still
find their answer pages. Copy k >= 1 of every demo item is written to `v{k:05d}/<original path>` with
deterministic variations (seeded by k and the path), so that its chunks differ from the original's
and from every other copy's:
  - the title gets a depot name and the copy number ("Reset a VPN hardware token - Leeds depot #12");
    the title is part of every chunk's embedded and keyword-indexed text;
  - about half of ~45 word substitutions are applied to the body (customer -> client, check ->
    inspect, van -> vehicle, ...), only in text (not in front matter, HTML tags or timestamps);
  - Markdown items have their `##` sections shuffled half of the time;
  - PDFs are copied as they are (their sidecar's title changes).
Copies are added, item by item, until the target number of chunks (or documents) is reached; the
per-item chunk counts come from chunking the demo content with Moment's own chunker. Corpora are
cached under `.moment/bench-corpora/` (git-ignored).

How the indexes are made
------------------------
`real_index(content)`   `indexer.build.build_index` with the real ONNX model: exact, but about 45
                        chunks/s here, so a 100,000-chunk index would take ~40 min.
`synthetic_index(content)`  every document is loaded and chunked by Moment's own loader and chunker,
                        the catalog, BM25 index and FAISS index are written by Moment's own
                        `IndexStore` writer (same format as `moment index`, HNSW from 50,000 chunks
                        up, as `auto` picks), but the vectors are the real model's vectors of the
                        corresponding demo chunk plus Gaussian noise, re-normalised. The noise is
                        calibrated so that the mean cosine between a copy's vector and its original's
                        equals the mean cosine measured with the real model on a sample of real copies
                        (printed, and recorded in the index's meta.json as `synthetic_vectors`).
                        Used for the 10,000- and 100,000-chunk latency and memory benchmarks only: the
                        query path (embedding, FAISS, BM25, fusion, compose) is the real one either way.

    .venv/bin/python bench/corpus.py --chunks 100000   # build (or show) the 100k corpus and its index
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_HOME, CONTENT_DIR, ROOT, moment_embedder

GENERATION = 1  # bump when the way corpora are made changes: cached corpora are then rebuilt

DEPOTS = [
    "Leeds", "Bristol", "Glasgow", "Cardiff", "Norwich", "Derby", "Exeter", "Hull", "York", "Leicester",
    "Preston", "Swindon", "Reading", "Dundee", "Bangor", "Carlisle", "Ipswich", "Lincoln", "Truro", "Perth",
]  # fmt: skip

SUBSTITUTIONS = {
    "customer": "client", "customers": "clients", "check": "inspect", "van": "vehicle", "vans": "vehicles",
    "supervisor": "manager", "technician": "engineer", "technicians": "engineers", "depot": "site",
    "request": "ticket", "form": "template", "phone": "mobile", "quickly": "promptly", "must": "should",
    "start": "begin", "finish": "complete", "help": "assistance", "problem": "issue", "problems": "issues",
    "use": "utilise", "need": "require", "get": "obtain", "send": "submit", "show": "display",
    "tell": "inform", "find": "locate", "each": "every", "about": "roughly", "job": "task", "jobs": "tasks",
    "team": "crew", "email": "e-mail", "contact": "reach", "report": "log", "choose": "select",
    "open": "launch", "wait": "hold on", "call": "ring", "before": "prior to", "after": "following",
    "new": "fresh", "old": "previous", "safe": "secure", "fix": "repair", "usually": "normally",
}  # fmt: skip

_WORDS = re.compile(r"\b[A-Za-z]+\b")
_COPY_DIR = re.compile(r"^v\d{5}/")


# -- content ---------------------------------------------------------------------------------------


def demo_items() -> list[tuple[str, int]]:
    """(path, chunks) of every demo document, chunked by Moment's own loader and chunker."""
    from indexer import sources
    from indexer.chunking import Chunker

    cache = BENCH_HOME / f"demo-chunk-counts-g{GENERATION}.json"
    if cache.is_file():
        return [tuple(x) for x in json.loads(cache.read_text())]
    embedder = moment_embedder()
    chunker = Chunker(embedder.count_tokens)
    files, _ = sources.discover(CONTENT_DIR)
    items = [(f.path, len(chunker.chunk(sources.load(f)))) for f in files]
    BENCH_HOME.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(items))
    return items


def plan(chunks: int | None = None, documents: int | None = None) -> list[tuple[int, str]]:
    """(copy, demo path) of every document of a corpus of about `chunks` chunks or exactly `documents` documents."""
    items = demo_items()
    out: list[tuple[int, str]] = []
    total = 0
    copy = 0
    while True:
        for path, n in items:
            if (chunks is not None and total >= chunks) or (documents is not None and len(out) >= documents):
                return out
            out.append((copy, path))
            total += n
        copy += 1


def corpus_dir(chunks: int | None = None, documents: int | None = None) -> Path:
    """The content folder of a corpus (made on first use, then cached)."""
    name = f"content-{chunks}c" if chunks is not None else f"content-{documents}d"
    target = BENCH_HOME / f"{name}-g{GENERATION}"
    if (target / ".complete").is_file():
        return target
    started = time.perf_counter()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(CONTENT_DIR / "mentors.yml", tmp / "mentors.yml")
    for copy, path in plan(chunks, documents):
        write_copy(copy, path, tmp)
    (tmp / ".complete").write_text(json.dumps({"chunks_target": chunks, "documents_target": documents}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    print(
        f"corpus {target.name}: {len(plan(chunks, documents))} documents written "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return target


def copy_path(copy: int, path: str) -> str:
    return path if copy == 0 else f"v{copy:05d}/{path}"


def original_path(path: str) -> str:
    return _COPY_DIR.sub("", path)


def write_copy(copy: int, path: str, root: Path, *, salt: str = "") -> Path:
    """Write copy `copy` of demo item `path` (and its sidecar) under `root`; returns the file written."""
    source = CONTENT_DIR / path
    dest = root / copy_path(copy, path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sidecar = next((source.with_suffix(s) for s in (".yml", ".yaml") if source.with_suffix(s).is_file()), None)
    if copy == 0 and not salt:
        shutil.copy2(source, dest)
        if sidecar:
            shutil.copy2(sidecar, dest.with_suffix(sidecar.suffix))
        return dest
    rng = random.Random(f"{copy}:{path}:{salt}")
    suffix = f" - {DEPOTS[copy % len(DEPOTS)]} depot #{copy}"
    subs = {w: r for w, r in SUBSTITUTIONS.items() if rng.random() < 0.5}
    kind = source.suffix.lower()
    if kind == ".pdf":
        shutil.copy2(source, dest)
    else:
        text = source.read_text(encoding="utf-8")
        if kind in (".md", ".markdown"):
            text = _vary_markdown(text, subs, suffix, rng)
        elif kind in (".html", ".htm"):
            text = re.sub(r">([^<]+)<", lambda m: ">" + _substitute(m.group(1), subs) + "<", text)
        else:  # .txt, .vtt, .srt: words only (timestamps have no letters)
            text = _substitute(text, subs)
        if salt:
            text += (
                f"\n\nUpdated note ({salt}): confirm the details with your {DEPOTS[copy % len(DEPOTS)]} supervisor.\n"
            )
        dest.write_text(text, encoding="utf-8")
    if sidecar:
        meta = _retitle(sidecar.read_text(encoding="utf-8"), suffix)
        dest.with_suffix(sidecar.suffix).write_text(meta, encoding="utf-8")
    return dest


def _substitute(text: str, subs: dict[str, str]) -> str:
    if not subs:
        return text

    def repl(m: re.Match) -> str:
        word = m.group(0)
        new = subs.get(word.lower())
        if new is None:
            return word
        return new[0].upper() + new[1:] if word[0].isupper() else new

    return _WORDS.sub(repl, text)


def _retitle(yaml_text: str, suffix: str) -> str:
    def repl(m: re.Match) -> str:
        value = m.group(2).rstrip()
        if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            return f"{m.group(1)}{value[:-1]}{suffix}{value[-1]}"
        return f"{m.group(1)}{value}{suffix}"

    return re.sub(r"^(title:\s*)(.*)$", repl, yaml_text, count=1, flags=re.M)


def _vary_markdown(text: str, subs: dict[str, str], suffix: str, rng: random.Random) -> str:
    front, body = "", text
    if text.startswith("---"):
        end = text.find("\n---", 3)
        front, body = text[: end + 4], text[end + 4 :]
        front = _retitle(front, suffix)
    body = _substitute(body, subs)
    parts = re.split(r"(?m)^(?=## )", body)
    if len(parts) > 2 and rng.random() < 0.5:
        head, sections = parts[0], parts[1:]
        sections = [s if s.endswith("\n") else s + "\n" for s in sections]
        rng.shuffle(sections)
        body = head + "".join(sections)
    return front + body


# -- indexes ---------------------------------------------------------------------------------------


def index_dir_for(content: Path, method: str) -> Path:
    return BENCH_HOME / f"index-{content.name}-{method}"


def real_index(content: Path, *, quiet: bool = False) -> Path:
    """An index of `content` built by `build_index` with the real ONNX model (cached)."""
    from indexer.build import build_index
    from indexer.store import IndexStore

    target = index_dir_for(content, "real")
    if (target / ".complete").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    if not quiet:
        print(f"building {target.name} with the real model (build_index, onnx) ...", flush=True)
    report = build_index(content, IndexStore(target), moment_embedder(), full=True)
    (target / ".complete").write_text(json.dumps({"chunks": report.chunks, "seconds": report.seconds}))
    if not quiet:
        print(f"  {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f} s")
    return target


def demo_vectors() -> dict[tuple, np.ndarray]:  # noqa: F821
    """The real model's vector of every demo chunk, by (path, position) and by (path, heading path,
    ordinal within that heading): a copy's shuffled sections still find their original chunk."""
    import numpy as np

    from indexer.store import IndexStore

    version = IndexStore(real_index(CONTENT_DIR, quiet=True)).open(search=False)
    vectors = np.asarray(version.embeddings)
    out = {}
    for doc in version.documents:
        stored = version.document_chunks(doc.path)
        for key, s in zip(_keys(doc.path, [s.chunk for s in stored]), stored, strict=True):
            out[key] = vectors[s.id]
        for i, s in enumerate(stored):
            out[(doc.path, i)] = vectors[s.id]
    version.close()
    return out


def _keys(original: str, chunks) -> list[tuple]:
    seen: dict[tuple, int] = {}
    keys = []
    for c in chunks:
        head = tuple(c.heading_path)
        n = seen.get(head, 0)
        seen[head] = n + 1
        keys.append((original, head, n))
    return keys


def _base_vector(base: dict, original: str, chunks) -> list:
    """The original demo chunk's vector for each chunk of a copy."""
    count = sum(1 for k in base if len(k) == 2 and k[0] == original)
    out = []
    for key, c in zip(_keys(original, chunks), chunks, strict=True):
        out.append(base[key] if key in base else base[(original, min(c.position, count - 1))])
    return out


def calibrate_noise(sample: int = 160) -> dict:
    """Mean cosine between the real model's vectors of copied chunks and of their originals, and the
    Gaussian noise (per dimension) that gives the same mean cosine. Cached."""
    import numpy as np

    from indexer import sources
    from indexer.chunking import Chunker

    cache = BENCH_HOME / f"noise-calibration-g{GENERATION}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    base = demo_vectors()
    embedder = moment_embedder()
    chunker = Chunker(embedder.count_tokens)
    tmp = BENCH_HOME / "calibration-copies"
    shutil.rmtree(tmp, ignore_errors=True)
    items = [p for p, _ in demo_items()]
    rng = random.Random(7)
    texts, originals = [], []
    for copy in range(1, 40):
        path = rng.choice(items)
        write_copy(copy, path, tmp)
    files, _ = sources.discover(tmp)
    for f in files:
        doc = sources.load(f)
        doc_chunks = chunker.chunk(doc)
        for c, vec in zip(doc_chunks, _base_vector(base, original_path(f.path), doc_chunks), strict=True):
            texts.append(c.search_text(doc.meta.title))
            originals.append(vec)
    texts, originals = texts[:sample], np.array(originals[:sample])
    vectors = embedder.encode(texts)
    cosines = (vectors * originals).sum(axis=1)
    mean = float(cosines.mean())
    dim = vectors.shape[1]
    sigma = ((1.0 / mean**2 - 1.0) / dim) ** 0.5
    # check: the sigma reproduces the mean cosine on the same originals
    noisy = originals + np.random.default_rng(0).normal(0, sigma, originals.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    check = float((noisy * originals).sum(axis=1).mean())
    shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "sample_chunks": len(texts),
        "real_mean_cosine": round(mean, 4),
        "real_min_cosine": round(float(cosines.min()), 4),
        "sigma": sigma,
        "synthetic_mean_cosine": round(check, 4),
    }
    cache.write_text(json.dumps(result, indent=2))
    return result


def synthetic_index(content: Path, *, quiet: bool = False) -> Path:
    """An index of `content` in Moment's own format, with calibrated synthetic vectors (see module doc)."""
    import numpy as np

    from indexer import sources
    from indexer.chunking import CHUNKER_VERSION, Chunker
    from indexer.store import IndexedDocument, IndexStore

    target = index_dir_for(content, "synthetic")
    if (target / ".complete").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    calib = calibrate_noise()
    base = demo_vectors()
    embedder = moment_embedder()
    chunker = Chunker(embedder.count_tokens)
    files, _ = sources.discover(content)
    if not quiet:
        print(f"building {target.name}: loading and chunking {len(files)} documents ...", flush=True)
    documents, chunks, rows = [], [], []
    for f in files:
        doc = sources.load(f)
        doc_chunks = chunker.chunk(doc)
        original = original_path(f.path)
        for vec in _base_vector(base, original, doc_chunks):
            rows.append((vec, f.path != original))
        documents.append(
            IndexedDocument(
                len(documents), f.path, doc.meta, f.digest or "", len(chunks), len(doc_chunks), doc.warnings
            )
        )
        chunks.extend(doc_chunks)
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(12345)
    dim = embedder.spec.dimension
    vectors = np.empty((len(chunks), dim), dtype=np.float32)
    for i, (vec, _) in enumerate(rows):
        vectors[i] = vec
    noisy_rows = np.array([r[1] for r in rows])
    vectors[noisy_rows] += rng.normal(0, calib["sigma"], (int(noisy_rows.sum()), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if not quiet:
        print(f"  {len(chunks)} chunks ({loaded:.0f} s); writing catalog, BM25 and FAISS index ...", flush=True)
    store = IndexStore(target)
    with store.lock():
        writer = store.begin()
        writer.write(
            spec=embedder.spec,
            chunker_version=CHUNKER_VERSION,
            documents=documents,
            chunks=chunks,
            embeddings=vectors,
            previous=None,
            faiss_kind="auto",
            extra={
                "content_root": str(content.resolve()),
                "synthetic_vectors": {
                    "method": "real vector of the corresponding demo chunk + Gaussian noise, re-normalised",
                    **calib,
                },
            },
        )
        writer.publish()
    seconds = time.perf_counter() - started
    (target / ".complete").write_text(json.dumps({"chunks": len(chunks), "seconds": seconds}))
    if not quiet:
        print(f"  done in {seconds:.0f} s")
    return target


def index_for(chunks: int, method: str = "auto") -> tuple[Path, Path, str]:
    """(content, index, method) for a corpus of about `chunks` chunks. `auto`: the real model up to
    2,000 chunks, synthetic vectors above."""
    content = CONTENT_DIR if chunks <= 0 else corpus_dir(chunks=chunks)
    if method == "auto":
        method = "real" if chunks <= 2000 else "synthetic"
    index = real_index(content) if method == "real" else synthetic_index(content)
    return content, index, method


def index_chunks(index: Path) -> int:
    from indexer.store import IndexStore

    return int(
        json.loads((IndexStore(index).versions_dir / IndexStore(index).current() / "meta.json").read_text())["chunks"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, action="append", help="corpus size(s) in chunks")
    parser.add_argument("--documents", type=int, help="corpus size in documents (content only)")
    parser.add_argument("--method", default="auto", choices=["auto", "real", "synthetic"])
    args = parser.parse_args()
    if args.documents:
        print(corpus_dir(documents=args.documents))
    for n in args.chunks or []:
        content, index, method = index_for(n, args.method)
        print(
            f"{n}: content {content.relative_to(ROOT)}, index {index.relative_to(ROOT)} "
            f"({method}, {index_chunks(index)} chunks)"
        )
    print(json.dumps(calibrate_noise(), indent=2))


if __name__ == "__main__":
    main()
