"""Warm answer latency, in process: embed the question, search, compose the answer.

Moment: `assistant.answering.retrieval.Retriever.search` (ONNX query embedding, FAISS - flat below 50,000
chunks, HNSW above -, BM25, fusion, confidence) then `assistant.answering.answers.compose` (snippet, deep link,
sources), exactly as `Asking.ask` does minus the interaction log.
Plain: sentence-transformers on PyTorch embeds the question, one `faiss.IndexFlatIP` over the same
chunk vectors finds the top 5 chunks, the answer is their text and titles; no caching.

Both run on the same index and the same questions (the 167 of content/eval/questions.jsonl), in
alternating blocks of every question (see run_size: interleaving question by question in one process
lets PyTorch's spinning threads slow Moment 2-3x). For each query the time its threads spent waiting
for a CPU (Linux run-queue wait: other processes, or the engine's own threads) is recorded too, to
tell slow code from a busy machine. Corpora: 1,000 chunks are
embedded with the real model; 10,000 and 100,000 chunks use calibrated synthetic vectors (see
bench/corpus.py) - the query path is the real one either way.

    .venv/bin/python bench/answer_latency.py            # 1k, 10k, 100k chunks
    .venv/bin/python bench/answer_latency.py --quick    # 1k chunks, few questions
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    common_args,
    eval_questions,
    fmt,
    moment_embedder,
    plain_flat_index,
    plain_model,
    ratio,
    side_by_side,
    summary,
    write_result,
)

TARGET_P95_MS = 8.0
TARGET_SPEEDUP = 3.0


def runq_wait_ms() -> float:
    """Time this process's threads have spent runnable but waiting for a CPU (Linux schedstat), ms.

    On a shared machine, a query that waited on the run queue was slowed by other processes, not by
    its own work: this tells the two apart."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e6


def undisturbed(times: list[float], waits: list[float], limit_ms: float = 1.0) -> list[float]:
    return [t for t, w in zip(times, waits, strict=True) if w < limit_ms]


class MomentAnswerer:
    """`Asking.ask` minus the log; `reader`: a PassageReader, or None for retrieval alone; `viewer`:
    whose eyes (an `assistant.access.audiences.Viewer`, or a function giving one), as the service passes it."""

    PARTS = ("audience", "embed", "dense", "keyword", "fuse", "read", "compose")

    def __init__(self, index: Path, embedder, reader=None, viewer=None) -> None:
        from assistant.answering.retrieval import Retriever
        from indexer.store import IndexStore

        self.retriever = Retriever(IndexStore(index), embedder, reload_interval=3600, reader=reader)
        self.viewer = viewer
        self.version = self.retriever.version()
        self.parts: dict[str, list[float]] = {p: [] for p in self.PARTS if p != "read" or reader is not None}
        self.slowest: list[tuple[float, str, dict]] = []  # (ms, question, breakdown) of the measured runs

    def __call__(self, text: str):
        from assistant.answering.answers import compose
        from assistant.answering.questions import prepare

        t0 = time.perf_counter()
        question = prepare(text)
        result = self.retriever.search(question.text, k=10, viewer=self.viewer)
        t1 = time.perf_counter()
        keywords = self.retriever.version().keywords
        answer = compose(
            question,
            result,
            self.retriever.params,
            content_base_url=None,
            term_ids_of=keywords.passage_terms,
        )
        t2 = time.perf_counter()
        breakdown = {**result.timings, "compose": (t2 - t1) * 1000}
        for part, values in self.parts.items():
            values.append(breakdown.get(part, 0.0))
        self.slowest.append(((t2 - t0) * 1000, text, breakdown))
        return answer

    def slowest_queries(self, n: int = 5) -> list[dict]:
        """The slowest measured questions with where their time went."""
        top = sorted(self.slowest, key=lambda s: -s[0])[:n]
        return [{"ms": ms, "question": q, "breakdown_ms": b} for ms, q, b in top]


class PlainAnswerer:
    """sentence-transformers (PyTorch) + one FAISS flat index; the answer is the top 5 chunks."""

    def __init__(self, index: Path, model) -> None:
        import numpy as np

        from indexer.store import IndexStore

        store = IndexStore(index)
        directory = store.versions_dir / store.current()
        vectors = np.load(directory / "embeddings.npy")
        self.flat = plain_flat_index(vectors)
        db = sqlite3.connect(directory / "catalog.sqlite")
        titles = dict(db.execute("SELECT number, title FROM documents"))
        rows = db.execute("SELECT id, doc_number, text FROM chunks ORDER BY id").fetchall()
        db.close()
        self.chunks = [(titles[d], text) for _, d, text in rows]
        self.model = model
        self.parts: dict[str, list[float]] = {"embed": [], "flat search": [], "answer": []}

    def __call__(self, text: str):
        t0 = time.perf_counter()
        q = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        t1 = time.perf_counter()
        scores, ids = self.flat.search(q, 5)
        t2 = time.perf_counter()
        answer = "\n\n".join(
            f"{self.chunks[i][0]} ({s:.2f})\n{self.chunks[i][1]}"
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0
        )
        t3 = time.perf_counter()
        self.parts["embed"].append((t1 - t0) * 1000)
        self.parts["flat search"].append((t2 - t1) * 1000)
        self.parts["answer"].append((t3 - t2) * 1000)
        return answer


def run_size(chunks: int, questions: list[str], rounds: int, warmup: int, model, embedder, flat_too: bool) -> dict:
    from corpus import index_chunks, index_for

    _content, index, method = index_for(chunks)
    n = index_chunks(index)
    moment = MomentAnswerer(index, embedder)
    plain = PlainAnswerer(index, model)
    dense_kind = "hnsw" if hasattr(moment.version.dense, "hnsw") else "flat"
    for q in questions[:warmup]:
        moment(q)
        plain(q)
    for parts in (moment.parts, plain.parts):
        for v in parts.values():
            v.clear()
    moment.slowest.clear()
    # Blocks, not question-by-question interleaving: in one process, PyTorch's and FAISS's OpenMP threads
    # keep spinning for a while after each plain query and slow the next Moment query 2-3x (and ONNX
    # Runtime's threads do the same to plain). Each round runs every question through one, then the
    # other, the order alternating between rounds so that background load drifts over both alike.
    times: dict[str, list[float]] = {"moment": [], "plain": []}
    waits: dict[str, list[float]] = {"moment": [], "plain": []}
    answerers = {"moment": moment, "plain": plain}
    for r in range(rounds):
        for name in ("moment", "plain") if r % 2 == 0 else ("plain", "moment"):
            fn = answerers[name]
            for q in questions[:5]:  # let the other engine's threads go quiet
                fn(q)
            for q in questions:
                w = runq_wait_ms()
                t = time.perf_counter()
                fn(q)
                times[name].append((time.perf_counter() - t) * 1000)
                waits[name].append(runq_wait_ms() - w)
    for parts in (moment.parts, plain.parts):  # breakdowns: measured runs only
        for v in parts.values():
            del v[: len(v) - rounds * len(questions)]
    m_times, p_times, m_wait, p_wait = times["moment"], times["plain"], waits["moment"], waits["plain"]
    out = {
        "chunks": n,
        "documents": len(moment.version.documents),
        "vectors": method,
        "moment_dense_index": dense_kind,
        "moment_ms": summary(m_times, p99=True),
        "plain_ms": summary(p_times, p99=True),
        "moment_runq_wait_ms": summary(m_wait, p99=True),
        "plain_runq_wait_ms": summary(p_wait, p99=True),
        "moment_undisturbed_ms": summary(undisturbed(m_times, m_wait), p99=True),
        "plain_undisturbed_ms": summary(undisturbed(p_times, p_wait), p99=True),
        "moment_breakdown_median_ms": {k: summary(v)["median"] for k, v in moment.parts.items()},
        "moment_breakdown_p95_ms": {k: summary(v)["p95"] for k, v in moment.parts.items()},
        "plain_breakdown_median_ms": {k: summary(v)["median"] for k, v in plain.parts.items()},
        "moment_slowest": moment.slowest_queries(),
    }
    out["speedup_median"] = ratio(out["plain_ms"]["median"], out["moment_ms"]["median"])
    out["speedup_p95"] = ratio(out["plain_ms"]["p95"], out["moment_ms"]["p95"])
    if flat_too and dense_kind == "hnsw":
        from indexer import vectors as vec

        moment.version._dense = vec.build(moment.version.embeddings, "flat")
        for q in questions[:warmup]:
            moment(q)
        flat_times = []
        for q in questions:
            t = time.perf_counter()
            moment(q)
            flat_times.append((time.perf_counter() - t) * 1000)
        out["moment_with_flat_faiss_ms"] = summary(flat_times, p99=True)
        moment.version._dense = None
    out["_moment"] = moment  # for profiling; removed before writing
    return out


def run_concurrent(answerer, questions: list[str], threads: int, rounds: int) -> dict:
    """`threads` questions at once (each thread takes the next question as it finishes one): each
    answer's latency and the throughput, answers per second."""
    import queue
    import threading

    work: queue.Queue = queue.Queue()
    for _ in range(rounds):
        for q in questions:
            work.put(q)
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                q = work.get_nowait()
            except queue.Empty:
                return
            t = time.perf_counter()
            answerer(q)
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                times.append(elapsed)

    for q in questions[:10]:
        answerer(q)
    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    return {"threads": threads, "ms": summary(times, p99=True), "answers_per_second": len(times) / wall}


def profile(moment: MomentAnswerer, questions: list[str]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for q in questions:
        moment(q)
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(18)
    return buffer.getvalue()


def main() -> dict:
    parser = argparse.ArgumentParser(description="Warm answer latency: Moment vs plain.")
    common_args(parser)
    parser.add_argument("--sizes", type=int, nargs="+", help="corpus sizes in chunks (default 1000 10000 100000)")
    parser.add_argument("--rounds", type=int, help="passes over the question set (default 3; quick 1)")
    parser.add_argument("--profile", action="store_true", help="always print a cProfile of the largest size")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="questions at once in the load test at 1,000 chunks (0: skip)"
    )
    args = parser.parse_args()
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000, 100000])
    rounds = args.rounds or (1 if args.quick else 3)
    questions = [q["question"] for q in eval_questions()]
    if args.quick:
        questions = questions[:40]
    warmup = 10 if args.quick else 30

    print("loading the models (Moment: ONNX fp32; plain: sentence-transformers on PyTorch) ...", flush=True)
    embedder = moment_embedder("onnx")
    model = plain_model()
    results = []
    for size in sizes:
        print(f"\n== {size:,} chunks ==", flush=True)
        r = run_size(size, questions, rounds, warmup, model, embedder, flat_too=not args.quick)
        results.append(r)
        m, p = r["moment_ms"], r["plain_ms"]
        rows = [
            ("median ms", fmt(m["median"]), fmt(p["median"]), fmt(r["speedup_median"], "x")),
            ("p95 ms", fmt(m["p95"]), fmt(p["p95"]), fmt(r["speedup_p95"], "x")),
            ("p99 ms", fmt(m["p99"]), fmt(p["p99"]), fmt(ratio(p["p99"], m["p99"]), "x")),
        ]
        note = "real model vectors" if r["vectors"] == "real" else "synthetic vectors (bench/corpus.py)"
        print(
            side_by_side(
                f"{r['chunks']:,} chunks, {r['documents']:,} documents, {note}, "
                f"Moment FAISS {r['moment_dense_index']}; n={m['n']}",
                rows,
            )
        )
        print(
            "  Moment median breakdown ms: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["moment_breakdown_median_ms"].items())
        )
        print(
            "  Moment p95 breakdown ms:    "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["moment_breakdown_p95_ms"].items())
        )
        print(
            "  plain median breakdown ms:  "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["plain_breakdown_median_ms"].items())
        )
        for slow in r["moment_slowest"]:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in slow["breakdown_ms"].items())
            print(f"  slow: {slow['ms']:.1f} ms ({parts}) {slow['question'][:70]!r}")
        mu, pu = r["moment_undisturbed_ms"], r["plain_undisturbed_ms"]
        print(
            f"  run-queue wait (threads ready but no CPU free), p95: "
            f"Moment {fmt(r['moment_runq_wait_ms']['p95'])} ms, plain "
            f"{fmt(r['plain_runq_wait_ms']['p95'])} ms; queries that waited < 1 ms: Moment {mu['n']}/{m['n']} "
            f"median {fmt(mu['median'])} / p95 {fmt(mu['p95'])} ms, plain {pu['n']}/{p['n']} "
            f"median {fmt(pu['median'])} / p95 {fmt(pu['p95'])} ms"
        )
        if "moment_with_flat_faiss_ms" in r:
            f = r["moment_with_flat_faiss_ms"]
            print(
                f"  Moment with a flat FAISS index instead of HNSW: "
                f"median {fmt(f['median'])} ms, p95 {fmt(f['p95'])} ms"
            )

    load = None
    if args.concurrency:
        from corpus import index_for

        _content, index, _method = index_for(1000)
        load = {
            name: run_concurrent(answerer, questions, args.concurrency, 1 if args.quick else 2)
            for name, answerer in (("moment", MomentAnswerer(index, embedder)), ("plain", PlainAnswerer(index, model)))
        }
        m, p = load["moment"], load["plain"]
        print(
            f"\n{args.concurrency} questions at once, 1,000 chunks: Moment median / p95 "
            f"{fmt(m['ms']['median'])} / {fmt(m['ms']['p95'])} ms, {m['answers_per_second']:.0f} answers/s; "
            f"plain {fmt(p['ms']['median'])} / {fmt(p['ms']['p95'])} ms, {p['answers_per_second']:.0f} answers/s"
        )

    largest = results[-1]
    met_p95 = largest["moment_ms"]["p95"] <= TARGET_P95_MS
    met_speed = largest["speedup_p95"] >= TARGET_SPEEDUP
    targets = {
        "undisturbed_p95_ms_at_largest": largest["moment_undisturbed_ms"]["p95"],
        "chunks": largest["chunks"],
        "p95_ms_at_largest": largest["moment_ms"]["p95"],
        "p95_target_ms": TARGET_P95_MS,
        "p95_met": met_p95,
        "speedup_p95": largest["speedup_p95"],
        "speedup_target": TARGET_SPEEDUP,
        "speedup_met": met_speed,
    }
    print(
        f"\ntarget at {largest['chunks']:,} chunks: p95 {fmt(largest['moment_ms']['p95'])} ms (<= {TARGET_P95_MS:.0f}: "
        f"{'met' if met_p95 else 'MISSED'}), {fmt(largest['speedup_p95'])}x plain at p95 (>= {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if met_speed else 'MISSED'}); queries whose threads never waited for a CPU (run-queue wait < 1 ms): "
        f"p95 {fmt(largest['moment_undisturbed_ms']['p95'])} ms"
    )
    prof = None
    if args.profile or not (met_p95 and met_speed):
        prof = profile(largest["_moment"], questions[:100])
        print("\ncProfile of Moment's answer path (100 questions, largest corpus), by own time:\n" + prof)
    for r in results:
        r.pop("_moment", None)
    data = {
        "sizes": results,
        "under_load": load,
        "targets": targets,
        "profile": prof,
        "method": "1k chunks: real ONNX vectors; larger: synthetic vectors (real demo vectors + calibrated noise); "
        "questions: content/eval/questions.jsonl, alternating blocks Moment/plain, after a warm-up",
    }
    write_result("answer_latency", data, args.out)
    return data


if __name__ == "__main__":
    main()
