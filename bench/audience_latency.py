"""Warm answer latency with content audiences: does filtering for the asker's user groups keep the answer
within 10% of today's?

Four answerers in one process, on the same synthetic 100,000-chunk corpus (bench/corpus.py), the same
questions (content/eval/questions.jsonl) after a warm-up; each question is asked by every answerer in turn,
the first rotating (`--order blocks`: alternating blocks, as bench/answer_latency.py runs them), so that a
shared machine's changing load falls on all of them alike:
  today     the index as built (no audiences): today's answer path; the asker's groups are never read
  filtered  a copy of that index in which every 10th document is for @managers and every 10th + 5 for
            @people-ops (20% of the documents restricted), asked by someone in neither group: their groups
            come from the group cache (SQLite) as the service reads them (from the database, then kept in the
            process for MOMENT_AUDIENCE_CACHE_SECONDS), and the restricted documents' chunks
            are kept out of FAISS (ID selector) and BM25 before ranking
  member    the same restricted index, asked by someone in both groups (groups read, nothing hidden)
  filtered_cold  as filtered, with the groups read from the database on every question (each question the
            asker's first in MOMENT_AUDIENCE_CACHE_SECONDS, as in traffic where people rarely ask twice in
            a few seconds)

    .venv/bin/python bench/audience_latency.py                 # 100,000 chunks
    .venv/bin/python bench/audience_latency.py --sizes 1000    # quicker
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_latency import MomentAnswerer, runq_wait_ms, undisturbed
from common import common_args, eval_questions, fmt, moment_embedder, summary, write_result

TARGET_RATIO = 1.10
MEMBER, OUTSIDER = "U0BENCHMGR", "U0BENCHEMP"


def restricted_copy(index: Path) -> tuple[Path, int, int]:
    """A copy of `index` with 20% of its documents restricted (every 10th to managers, every 10th + 5 to
    people-ops); returns it, the number of restricted documents and of their chunks."""
    from indexer.store import IndexStore

    target = index.with_name(index.name + "-audiences")
    store = IndexStore(index)
    version = store.current()
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(index, target)
        with sqlite3.connect(target / "versions" / version / "catalog.sqlite") as db:
            db.execute("""UPDATE documents SET audience = '["managers"]' WHERE number % 10 = 0""")
            db.execute("""UPDATE documents SET audience = '["people-ops"]' WHERE number % 10 = 5""")
        db.close()
        (target / ".complete").write_text("restricted copy\n")
    opened = IndexStore(target).open()
    restricted = opened.restricted
    chunks = sum(opened.documents[n].chunk_count for n in restricted)
    opened.close()
    return target, len(restricted), chunks


def group_cache(directory: Path):
    """A group cache in a SQLite file: MEMBER in @managers and @people-ops, OUTSIDER in @sales."""
    from assistant.access.audiences import GroupDirectory, UserGroupInfo
    from assistant.db.database import Database

    database = Database(f"sqlite:///{directory / 'groups.db'}")
    database.upgrade()
    groups = GroupDirectory(database, max_age=dt.timedelta(days=1))
    groups.replace(
        "T0BENCH",
        [
            UserGroupInfo("S0MANAGERS", "managers", "Managers", frozenset({MEMBER})),
            UserGroupInfo("S0PEOPLEOP", "people-ops", "People Ops", frozenset({MEMBER})),
            UserGroupInfo("S0SALES000", "sales", "Sales", frozenset({OUTSIDER})),
        ],
    )
    return groups


def never_called():
    raise AssertionError("an index with nothing restricted read someone's groups")


def viewer_read_ms(groups, rounds: int = 400) -> dict:
    """One person's groups read from the database cache (what a question pays when that person's groups are
    not in the process: their first question in `cache_seconds`), and from the process (every other)."""
    cache_seconds = groups.cache_seconds
    try:
        groups.cache_seconds = 0
        uncached = []
        for i in range(rounds):
            t = time.perf_counter()
            groups.viewer(OUTSIDER if i % 2 else MEMBER, "T0BENCH")
            uncached.append((time.perf_counter() - t) * 1000)
    finally:
        groups.cache_seconds = cache_seconds
    cached = []
    for i in range(rounds):
        t = time.perf_counter()
        groups.viewer(OUTSIDER if i % 2 else MEMBER, "T0BENCH")
        cached.append((time.perf_counter() - t) * 1000)
    return {"from_database": summary(uncached, p99=True), "in_process": summary(cached, p99=True)}


def run_size(
    chunks: int, questions: list[str], rounds: int, warmup: int, embedder, groups, order: str = "questions"
) -> dict:
    from assistant.access.audiences import GroupDirectory

    uncached = GroupDirectory(groups.database, max_age=groups.max_age, cache_seconds=0)
    from corpus import index_chunks, index_for

    _content, index, method = index_for(chunks)
    restricted_index, restricted_docs, restricted_chunks = restricted_copy(index)
    answerers = {
        # Today's index has nothing restricted: the viewer function is passed as the service passes it, and
        # must never be called (the groups are not read at all).
        "today": MomentAnswerer(index, embedder, viewer=never_called),
        "filtered": MomentAnswerer(restricted_index, embedder, viewer=lambda: groups.viewer(OUTSIDER, "T0BENCH")),
        "member": MomentAnswerer(restricted_index, embedder, viewer=lambda: groups.viewer(MEMBER, "T0BENCH")),
        # Every question someone's first in MOMENT_AUDIENCE_CACHE_SECONDS: their groups read from the database.
        "filtered_cold": MomentAnswerer(
            restricted_index, embedder, viewer=lambda: uncached.viewer(OUTSIDER, "T0BENCH")
        ),
    }
    for fn in answerers.values():
        for q in questions[:warmup]:
            fn(q)
        for v in fn.parts.values():
            v.clear()
    names = list(answerers)
    times: dict[str, list[float]] = {n: [] for n in names}
    waits: dict[str, list[float]] = {n: [] for n in names}

    def measure(name: str, q: str) -> None:
        w = runq_wait_ms()
        t = time.perf_counter()
        answerers[name](q)
        times[name].append((time.perf_counter() - t) * 1000)
        waits[name].append(runq_wait_ms() - w)

    def warm(name: str, q: str) -> None:
        answerers[name](q)
        for v in answerers[name].parts.values():
            v.pop()  # not measured

    for r in range(rounds):
        if order == "questions":
            # Each question asked by every answerer back to back, the first one rotating: a machine whose load
            # changes from second to second slows them all alike.
            for i, q in enumerate(questions):
                k = (i + r) % len(names)
                for name in names[k:] + names[:k]:
                    measure(name, q)
        else:
            for name in names if r % 2 == 0 else names[::-1]:
                for q in questions[:5]:
                    warm(name, q)
                for q in questions:
                    measure(name, q)
    out = {
        "chunks": index_chunks(index),
        "documents": len(answerers["today"].version.documents),
        "restricted_documents": restricted_docs,
        "restricted_chunks": restricted_chunks,
        "vectors": method,
        "order": order,
        "dense_index": "hnsw" if hasattr(answerers["today"].version.dense, "hnsw") else "flat",
    }
    for name in names:
        out[f"{name}_ms"] = summary(times[name], p99=True)
        out[f"{name}_runq_wait_ms"] = summary(waits[name], p99=True)
        out[f"{name}_undisturbed_ms"] = summary(undisturbed(times[name], waits[name]), p99=True)
        out[f"{name}_breakdown_median_ms"] = {k: summary(v)["median"] for k, v in answerers[name].parts.items()}
        out[f"{name}_breakdown_p95_ms"] = {k: summary(v)["p95"] for k, v in answerers[name].parts.items()}
        # Everything but the question's embedding, which is the same work in every answerer and, on a busy
        # machine, most of the noise: the part audiences can change.
        no_embed = [
            sum(v[i] for k, v in answerers[name].parts.items() if k != "embed")
            for i in range(len(answerers[name].parts["embed"]))
        ]
        out[f"{name}_without_embedding_ms"] = summary(no_embed, p99=True)
    out["viewer_read_ms"] = viewer_read_ms(groups)
    out["viewer_cache_seconds"] = groups.cache_seconds
    for stat in ("median", "p95"):
        for name in ("filtered", "member", "filtered_cold"):
            out[f"{name}_over_today_{stat}"] = out[f"{name}_ms"][stat] / out["today_ms"][stat]
            out[f"{name}_over_today_without_embedding_{stat}"] = (
                out[f"{name}_without_embedding_ms"][stat] / out["today_without_embedding_ms"][stat]
            )
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description="Warm answer latency with audience filtering vs today's.")
    common_args(parser)
    parser.add_argument("--sizes", type=int, nargs="+", help="corpus sizes in chunks (default 100000)")
    parser.add_argument("--rounds", type=int, help="passes over the question set per answerer (default 2)")
    parser.add_argument(
        "--order",
        choices=("questions", "blocks"),
        default="questions",
        help="questions: every answerer asks each question in turn (default); blocks: each answerer asks them all",
    )
    args = parser.parse_args()
    sizes = args.sizes or ([1000] if args.quick else [100000])
    rounds = args.rounds or (1 if args.quick else 2)
    questions = [q["question"] for q in eval_questions()]
    if args.quick:
        questions = questions[:40]
    load_before = os.getloadavg()
    embedder = moment_embedder("onnx")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        groups = group_cache(Path(tmp))
        for size in sizes:
            print(f"\n== {size:,} chunks ==", flush=True)
            r = run_size(size, questions, rounds, 10 if args.quick else 30, embedder, groups, args.order)
            results.append(r)
            print(
                f"{r['chunks']:,} chunks, {r['documents']:,} documents ({r['restricted_documents']:,} restricted, "
                f"{r['restricted_chunks']:,} chunks), FAISS {r['dense_index']}, n={r['today_ms']['n']} per answerer"
            )
            for name in ("today", "filtered", "member", "filtered_cold"):
                m, u, x = r[f"{name}_ms"], r[f"{name}_undisturbed_ms"], r[f"{name}_without_embedding_ms"]
                parts = ", ".join(f"{k} {v:.2f}" for k, v in r[f"{name}_breakdown_median_ms"].items())
                print(
                    f"  {name:13s} median {fmt(m['median'])} ms, p95 {fmt(m['p95'])} ms, p99 {fmt(m['p99'])} ms "
                    f"(never waited for a CPU: {u['n']}/{m['n']}, p95 {fmt(u['p95'])} ms); without the embedding: "
                    f"median {fmt(x['median'])} ms, p95 {fmt(x['p95'])} ms; median parts: {parts}"
                )
            v = r["viewer_read_ms"]
            print(
                f"  a person's groups: from the database median {v['from_database']['median']:.3f} ms, p95 "
                f"{v['from_database']['p95']:.3f} ms (their first question in {r['viewer_cache_seconds']:g} s); "
                f"in the process median {v['in_process']['median']:.4f} ms, p95 {v['in_process']['p95']:.4f} ms"
            )
            print(
                f"  filtered / today: median {r['filtered_over_today_median']:.3f}, "
                f"p95 {r['filtered_over_today_p95']:.3f}"
                f" (target <= {TARGET_RATIO:.2f}); member / today: median {r['member_over_today_median']:.3f}, "
                f"p95 {r['member_over_today_p95']:.3f}; without the embedding, filtered / today: median "
                f"{r['filtered_over_today_without_embedding_median']:.3f}, "
                f"p95 {r['filtered_over_today_without_embedding_p95']:.3f}; groups read every question, filtered / "
                f"today: median {r['filtered_cold_over_today_median']:.3f}, p95 {r['filtered_cold_over_today_p95']:.3f}"
            )
    load_after = os.getloadavg()
    largest = results[-1]
    met = (
        max(largest[f"{arm}_over_today_{stat}"] for arm in ("filtered", "filtered_cold") for stat in ("median", "p95"))
        <= TARGET_RATIO
    )
    print(
        f"\ntarget (filtered, groups kept or read every question, within 10% of today at median and p95): "
        f"{'met' if met else 'MISSED'}; "
        f"load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f}"
    )
    data = {
        "sizes": results,
        "target_ratio": TARGET_RATIO,
        "met": met,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "method": "synthetic 100k-chunk index (bench/corpus.py) and a copy with 20% of documents restricted; "
        "today / filtered / member / filtered_cold over content/eval/questions.jsonl after a warm-up, "
        + (
            "each question asked by every answerer in turn (rotating first)"
            if args.order == "questions"
            else "in alternating blocks"
        ),
    }
    write_result("audience_latency", data, args.out)
    return data


if __name__ == "__main__":
    main()
