"""Indexing: throughput of a full build, retrieval quality of the model variant, and re-indexing.

1. Full build of the 1,000-chunk corpus (bench/corpus.py), chunks/s and words/s (words of chunk
   text). Moment: `indexer.build.build_index(full=True)` with the configured default embedder (ONNX
   fp32): load, chunk, embed, BM25, FAISS, catalog, publish - everything `moment index --full` does,
   in process with the model loaded. Plain: sentence-transformers on PyTorch encodes the very same
   chunk texts (given to it for free: no loading or chunking) and adds them to one FAISS flat index.
   Alternating runs. The ONNX int8 variant (`MOMENT_EMBEDDING_BACKEND=onnx-int8`) is measured too.
2. recall@5 on content/eval/questions.jsonl (all 167 questions; Moment's fused retriever) with the
   demo content indexed and queried by each model variant: PyTorch (the full-precision reference),
   ONNX fp32 (Moment's default) and ONNX int8.
3. Re-index after changing one document of 1,000: a 1,000-document corpus is indexed (synthetic
   vectors, Moment's own format - see bench/corpus.py; an incremental build reuses stored vectors
   whatever made them), then, repeatedly, one document is changed and `build_index` (incremental)
   runs with the real model: in process, and as a fresh `moment index` process. The plain approach
   has no incremental build: it re-embeds every chunk, so its time is derived from its throughput
   measured in part 1 of the same run (it is not run: ~6 minutes a time).

    .venv/bin/python bench/indexing.py [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_HOME,
    CONTENT_DIR,
    MOMENT,
    QUESTIONS,
    child_env,
    common_args,
    fmt,
    moment_embedder,
    plain_flat_index,
    plain_model,
    ratio,
    side_by_side,
    summary,
    write_result,
)

TARGET_SPEEDUP = 2.0
TARGET_RECALL_POINTS = 1.0
TARGET_REINDEX_S = 3.0


def catalog_texts(index: Path) -> tuple[list[str], int]:
    """(the embedded text of every chunk - title > headings, newline, text -, words of chunk text)."""
    from indexer.store import IndexStore

    store = IndexStore(index)
    db = sqlite3.connect(store.versions_dir / store.current() / "catalog.sqlite")
    titles = dict(db.execute("SELECT number, title FROM documents"))
    texts, words = [], 0
    for doc, heading, text in db.execute("SELECT doc_number, heading_path, text FROM chunks ORDER BY id"):
        context = " > ".join((titles[doc], *json.loads(heading)))
        texts.append(f"{context}\n{text}")
        words += len(text.split())
    db.close()
    return texts, words


class SummingEmbedder:
    """Wraps an embedder to add up the time spent embedding during a build."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.seconds = 0.0

    def encode(self, texts, *args, **kwargs):
        start = time.perf_counter()
        out = self.inner.encode(texts, *args, **kwargs)
        self.seconds += time.perf_counter() - start
        return out

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)


def full_builds(content: Path, repeats: int, model, embedders: dict) -> dict:
    from indexer.build import build_index
    from indexer.store import IndexStore

    work = BENCH_HOME / "indexing-work"
    shutil.rmtree(work, ignore_errors=True)
    times: dict[str, list[float]] = {name: [] for name in embedders}
    times["plain"] = []
    embed_share: dict[str, list[float]] = {name: [] for name in embedders}
    chunks = words = 0
    texts: list[str] = []
    for r in range(repeats):
        for name, embedder in embedders.items():
            target = work / f"{name}-{r}"
            timed = SummingEmbedder(embedder)
            report = build_index(content, IndexStore(target), timed, full=True)
            times[name].append(report.seconds)
            embed_share[name].append(timed.seconds)
            if not texts:
                texts, words = catalog_texts(target)
                chunks = report.chunks
            shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        plain_flat_index(vectors)
        times["plain"].append(time.perf_counter() - start)
        print(f"  run {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    out = {"chunks": chunks, "words": words, "runs": repeats}
    for name, values in times.items():
        s = summary(values)
        out[name] = {
            "seconds": s,
            "chunks_per_s_median": chunks / s["median"],
            "words_per_s_median": words / s["median"],
            "chunks_per_s_p95_time": chunks / s["p95"],
        }
        if name in embed_share:
            out[name]["embedding_s_median"] = summary(embed_share[name])["median"]
    return out


def recall(embedders: dict) -> dict:
    """recall@5 (Moment's retriever) on the eval set, demo content indexed and queried by each variant."""
    from assistant.answering.evaluation import evaluate, load_questions
    from assistant.answering.retrieval import Retriever
    from indexer.build import build_index
    from indexer.store import IndexStore

    questions = load_questions(QUESTIONS)
    out = {}
    for name, embedder in embedders.items():
        target = BENCH_HOME / f"index-content-{name}"
        store = IndexStore(target)
        build_index(CONTENT_DIR, store, embedder)  # incremental: cached after the first run
        report = evaluate(Retriever(store, embedder), questions, ["moment", "dense"])
        data = report.to_dict()
        out[name] = {
            "recall@5": data["systems"]["moment"]["recall@5"],
            "recall@1": data["systems"]["moment"]["recall@1"],
            "mrr@10": data["systems"]["moment"]["mrr@10"],
            "dense_recall@5": data["systems"]["dense"]["recall@5"],
        }
    return out


def reindex(documents: int, repeats: int, embedder, plain_chunks_per_s: float, cli_runs: int) -> dict:
    from corpus import corpus_dir, demo_items, index_chunks, synthetic_index, write_copy
    from corpus import plan as corpus_plan

    from indexer.build import build_index
    from indexer.store import IndexStore

    pristine = corpus_dir(documents=documents)
    base = synthetic_index(pristine)
    work_content = BENCH_HOME / "reindex-content"
    work_index = BENCH_HOME / "reindex-index"
    for d in (work_content, work_index):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(pristine, work_content)
    shutil.copytree(base, work_index)
    store = IndexStore(work_index)
    chunks = index_chunks(work_index)
    docs = corpus_plan(documents=documents)
    sizes = dict(demo_items())
    # documents to change: spread over the corpus, every type of file among them
    picks = [docs[(i * 37 + 11) % len(docs)] for i in range(repeats + cli_runs)]
    runs, cli, detail = [], [], []
    profile_text = None
    for i, (copy, path) in enumerate(picks):
        changed = write_copy(copy, path, work_content, salt=f"edit-{time.time_ns()}")
        rel = changed.relative_to(work_content).as_posix()
        if i < repeats:
            profiler = cProfile.Profile() if i == repeats - 1 else None
            if profiler:
                profiler.enable()
            report = build_index(work_content, store, embedder)
            if profiler:
                profiler.disable()
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(25)
                profile_text = buffer.getvalue()
            assert report.changed == [rel], (report.changed, rel)
            runs.append(report.seconds)
            detail.append({"path": rel, "embedded_chunks": report.embedded_chunks, "seconds": report.seconds})
            print(
                f"  in process: changed {rel} ({report.embedded_chunks} chunks embedded): {report.seconds:.2f} s",
                flush=True,
            )
        else:
            env = child_env(MOMENT_HOME=str(BENCH_HOME / "reindex-home"))
            start = time.perf_counter()
            done = subprocess.run(
                [str(MOMENT), "index", "--content", str(work_content), "--index", str(work_index), "--json"],
                env=env, capture_output=True, text=True, cwd=BENCH_HOME,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"moment index failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")
            result = json.loads(done.stdout)
            assert result["changed"] == [rel], (result["changed"], rel)
            cli.append(seconds)
            print(f"  `moment index` process: changed {rel}: {seconds:.2f} s", flush=True)
    plain_s = chunks / plain_chunks_per_s if plain_chunks_per_s else float("nan")
    del sizes
    return {
        "documents": documents,
        "chunks": chunks,
        "moment_in_process_s": summary(runs),
        "moment_cli_process_s": summary(cli),
        "runs": detail,
        "plain_full_reembed_s_derived": plain_s,
        "profile": profile_text,
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description="Indexing throughput and re-indexing: Moment vs plain.")
    common_args(parser)
    parser.add_argument("--repeats", type=int, help="full builds of each (default 3; quick 1)")
    parser.add_argument("--chunks", type=int, help="corpus for full builds, in chunks (default 1000; quick: demo)")
    parser.add_argument("--documents", type=int, default=1000, help="corpus size for the re-index test (quick: 200)")
    parser.add_argument("--no-int8", action="store_true", help="skip the onnx-int8 variant")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    documents = 200 if args.quick and args.documents == 1000 else args.documents

    from corpus import corpus_dir

    content = CONTENT_DIR if (args.quick and not args.chunks) else corpus_dir(chunks=args.chunks or 1000)
    print("loading models ...", flush=True)
    embedders = {"onnx": moment_embedder("onnx")}
    if not args.no_int8:
        embedders["onnx-int8"] = moment_embedder("onnx-int8")
    model = plain_model()

    print(f"\n1. full builds of {content.name} ({repeats} each)", flush=True)
    builds = full_builds(content, repeats, model, embedders)
    m, p = builds["onnx"], builds["plain"]
    speed = m["chunks_per_s_median"] / p["chunks_per_s_median"]
    rows = [
        (
            "seconds, median",
            fmt(m["seconds"]["median"]),
            fmt(p["seconds"]["median"]),
            fmt(ratio(p["seconds"]["median"], m["seconds"]["median"]), "x"),
        ),
        (
            "seconds, p95",
            fmt(m["seconds"]["p95"]),
            fmt(p["seconds"]["p95"]),
            fmt(ratio(p["seconds"]["p95"], m["seconds"]["p95"]), "x"),
        ),
        ("chunks/s (median)", fmt(m["chunks_per_s_median"]), fmt(p["chunks_per_s_median"]), fmt(speed, "x")),
        (
            "words/s (median)",
            fmt(m["words_per_s_median"]),
            fmt(p["words_per_s_median"]),
            fmt(m["words_per_s_median"] / p["words_per_s_median"], "x"),
        ),
    ]
    print(
        side_by_side(
            f"full build, {builds['chunks']:,} chunks, {builds['words']:,} words (Moment: ONNX fp32, the default)", rows
        )
    )
    print(
        f"  where Moment's build time goes (median): embedding {m['embedding_s_median']:.1f} s "
        f"of {m['seconds']['median']:.1f} s "
        f"({m['embedding_s_median'] / m['seconds']['median'] * 100:.0f} %); "
        "load, chunk, BM25, FAISS, catalog, publish: the rest"
    )
    if "onnx-int8" in builds:
        q = builds["onnx-int8"]
        print(
            f"  Moment with onnx-int8: {fmt(q['chunks_per_s_median'])} chunks/s, "
            f"{fmt(q['words_per_s_median'])} words/s "
            f"({fmt(q['chunks_per_s_median'] / p['chunks_per_s_median'], 'x')} plain)"
        )

    print(
        "\n2. recall@5 on the eval set (demo content; Moment's retriever; each variant indexes and queries)", flush=True
    )
    from indexer.embedding import TorchEmbedder

    variants = {"torch": TorchEmbedder("all-MiniLM-L6-v2"), **embedders}
    rec = recall(variants)
    for name, r in rec.items():
        print(
            f"  {name:10} recall@5 {r['recall@5']:.3f}  recall@1 {r['recall@1']:.3f}  MRR@10 {r['mrr@10']:.3f}  "
            f"(dense alone recall@5 {r['dense_recall@5']:.3f})"
        )
    diff_points = (rec["onnx"]["recall@5"] - rec["torch"]["recall@5"]) * 100

    print(f"\n3. re-index after changing one document of {documents:,}", flush=True)
    re = reindex(documents, 2 if args.quick else 5, embedders["onnx"], p["chunks_per_s_median"], 1 if args.quick else 3)
    mi, mc = re["moment_in_process_s"], re["moment_cli_process_s"]
    rows = [
        (
            "in process, median s",
            fmt(mi["median"]),
            fmt(re["plain_full_reembed_s_derived"]),
            fmt(ratio(re["plain_full_reembed_s_derived"], mi["median"]), "x"),
        ),
        ("in process, p95 s", fmt(mi["p95"]), "", ""),
        ("`moment index` process, median s", fmt(mc["median"]), "", ""),
        ("`moment index` process, p95 s", fmt(mc["p95"]), "", ""),
    ]
    print(
        side_by_side(
            f"re-index, {re['documents']:,} documents / {re['chunks']:,} chunks "
            "(plain: every chunk re-embedded, derived from its throughput)",
            rows,
        )
    )

    met_speed = speed >= TARGET_SPEEDUP
    met_recall = abs(diff_points) <= TARGET_RECALL_POINTS
    met_reindex = mi["p95"] <= TARGET_REINDEX_S
    int8_speed = (
        builds["onnx-int8"]["chunks_per_s_median"] / p["chunks_per_s_median"] if "onnx-int8" in builds else None
    )
    int8_diff = (rec["onnx-int8"]["recall@5"] - rec["torch"]["recall@5"]) * 100 if "onnx-int8" in rec else None
    print(
        f"\ntargets: full build {fmt(speed)}x plain chunks/s (>= 2x: {'met' if met_speed else 'MISSED'}); "
        f"recall@5 {diff_points:+.1f} points vs full precision (within 1: {'met' if met_recall else 'MISSED'}); "
        f"re-index p95 {fmt(mi['p95'])} s (<= 3 s: {'met' if met_reindex else 'MISSED'})"
    )
    if int8_speed is not None:
        print(f"  onnx-int8 instead: {fmt(int8_speed)}x plain chunks/s, recall@5 {int8_diff:+.1f} points")
    if not met_reindex and re["profile"]:
        print("\ncProfile of one incremental build (cumulative):\n" + re["profile"])
    data = {
        "full_build": builds,
        "full_build_corpus": content.name,
        "speedup_chunks_per_s": speed,
        "recall": rec,
        "recall5_diff_points_onnx_vs_torch": diff_points,
        "reindex": re,
        "targets": {
            "speedup": speed,
            "speedup_met": met_speed,
            "recall_diff_points": diff_points,
            "recall_met": met_recall,
            "reindex_p95_s": mi["p95"],
            "reindex_met": met_reindex,
            "int8_speedup": int8_speed,
            "int8_recall_diff_points": int8_diff,
        },
    }
    write_result("indexing", data, args.out)
    return data


if __name__ == "__main__":
    main()
