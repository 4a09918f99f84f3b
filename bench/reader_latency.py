"""What the reader costs: warm answers with the reader on and off, the reading alone, answers under
load, and a cold `moment ask`.

The reader (assistant/answering/reader/) re-scores up to 8 passage windows (one may start at every line) of the
top 4 pages with a 3-layer int8 cross-encoder, then the lines of the first page's best window.
Measured in process on the demo index (real vectors) and the 1,000-chunk bench corpus, over every
eval question, the same retriever with the reader and without it (as the service runs them: the
embedding model's threads spin only when the reader is off), in alternating blocks; "read" is the time inside the reader
(`SearchResult.timings`). Under load: 4 questions at once on this 2-core machine.

    .venv/bin/python bench/reader_latency.py            # demo and 1k chunks, 3 rounds, cold ask x5
    .venv/bin/python bench/reader_latency.py --quick
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_latency import MomentAnswerer, run_concurrent
from common import MOMENT, ROOT, child_env, common_args, eval_questions, fmt, moment_embedder, summary, write_result

TARGET_READ_P95_MS = 60.0
TARGET_COLD_ASK_S = 1.5


def warm(index: Path, questions: list[str], rounds: int, embedders, reader) -> dict:
    # As the service runs: with the reader on, the embedding model's threads do not spin between runs.
    on = MomentAnswerer(index, embedders["on"], reader=reader)
    off = MomentAnswerer(index, embedders["off"])
    for q in questions[:20]:
        on(q)
        off(q)
    times: dict[str, list[float]] = {"on": [], "off": []}
    on.parts = {k: [] for k in on.parts}
    on.slowest.clear()
    for r in range(rounds):
        for name, answerer in (("on", on), ("off", off)) if r % 2 == 0 else (("off", off), ("on", on)):
            for q in questions:
                t = time.perf_counter()
                answerer(q)
                times[name].append((time.perf_counter() - t) * 1000)
    return {
        "chunks": on.version.size,
        "reader_on_ms": summary(times["on"], p99=True),
        "reader_off_ms": summary(times["off"], p99=True),
        "read_ms": summary(on.parts["read"], p99=True),
        "breakdown_median_ms": {k: summary(v)["median"] for k, v in on.parts.items()},
        "slowest": on.slowest_queries(),
        "_on": on,
        "_off": off,
    }


def cold_ask(runs: int, index: Path, reader: bool) -> dict:
    home = ROOT / ".moment" / "bench-cold-ask"
    env = child_env(MOMENT_HOME=str(home), MOMENT_INDEX_DIR=str(index), MOMENT_READER="on" if reader else "off")
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(MOMENT), "ask", "how do i reset my vpn token"], env=env, cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        times.append(time.perf_counter() - t)
    return summary(times)


def main() -> dict:
    from corpus import index_for

    from assistant.answering.reader.model import load_reader
    from assistant.answering.reader.reading import PassageReader
    from assistant.settings import load_settings

    parser = argparse.ArgumentParser(description="What the reader costs.")
    common_args(parser)
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    questions = [q["question"] for q in eval_questions()]
    if args.quick:
        questions = questions[:40]
    embedders = {"on": moment_embedder("onnx", spinning=False), "off": moment_embedder("onnx")}
    model = load_reader(load_settings().reader_dir_override)  # MOMENT_READER_DIR, as the service reads it
    print(f"reader: {model.describe()}")
    reader = PassageReader(model)
    results = {"reader": model.describe()}
    for label, chunks in (("demo", 0), ("1k", 1000)):
        _content, index, method = index_for(chunks)
        r = warm(index, questions, rounds, embedders, reader)
        print(f"\n== {label}: {r['chunks']:,} chunks ({method} vectors), {len(questions)} questions x {rounds} ==")
        on, off, read = r["reader_on_ms"], r["reader_off_ms"], r["read_ms"]
        print(f"  answer, reader on:  median {fmt(on['median'])} ms, p95 {fmt(on['p95'])} ms")
        print(f"  answer, reader off: median {fmt(off['median'])} ms, p95 {fmt(off['p95'])} ms")
        verdict = "met" if read["p95"] <= TARGET_READ_P95_MS else "MISSED"
        print(f"  reading alone:      median {fmt(read['median'])} ms, p95 {fmt(read['p95'])} ms "
              f"(target p95 <= {TARGET_READ_P95_MS:.0f} ms: {verdict})")  # fmt: skip
        print("  median breakdown ms: " + ", ".join(f"{k} {v:.1f}" for k, v in r["breakdown_median_ms"].items()))
        for slow in r["slowest"][:3]:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in slow["breakdown_ms"].items())
            print(f"  slow: {slow['ms']:.1f} ms ({parts}) {slow['question'][:70]!r}")
        if label == "1k":
            load_on = run_concurrent(r["_on"], questions, 4, 1 if args.quick else 2)
            load_off = run_concurrent(r["_off"], questions, 4, 1 if args.quick else 2)
            r["under_load"] = {"reader_on": load_on, "reader_off": load_off}
            print(
                f"  4 at once: reader on median / p95 {fmt(load_on['ms']['median'])} / {fmt(load_on['ms']['p95'])} ms, "
                f"{load_on['answers_per_second']:.1f} answers/s; reader off {fmt(load_off['ms']['median'])} / "
                f"{fmt(load_off['ms']['p95'])} ms, {load_off['answers_per_second']:.1f} answers/s"
            )
        r.pop("_on")
        r.pop("_off")
        results[label] = r
        if label == "demo":
            runs = 2 if args.quick else 5
            results["cold_ask_s"] = {
                "reader_on": cold_ask(runs, index, True),
                "reader_off": cold_ask(runs, index, False),
            }
            c = results["cold_ask_s"]
            print(f"  cold `moment ask`: reader on median {fmt(c['reader_on']['median'])} s, p95 "
                  f"{fmt(c['reader_on']['p95'])} s; off {fmt(c['reader_off']['median'])} s "
                  f"(target <= {TARGET_COLD_ASK_S} s)")  # fmt: skip
    write_result("reader_latency", results, args.out)
    return results


if __name__ == "__main__":
    main()
