"""Run every benchmark, each in a fresh process, and write bench/results/latest.json and latest.md
(a Markdown table, for docs/performance.md).

    make bench                               # = .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --quick   # a fast smoke run of every script
    .venv/bin/python bench/run_all.py --only answer_latency slack_ack

The first run builds the benchmark corpora and indexes (cached in .moment/bench-corpora/, about
3 minutes for the 100,000-chunk one); a full run then takes about 15-20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, RESULTS_DIR, ROOT, fmt, machine

SCRIPTS = ["answer_latency", "cold_start", "indexing", "slack_ack", "memory"]


def run(name: str, quick: bool) -> tuple[dict | None, float, int]:
    out = RESULTS_DIR / f"{name}{'-quick' if quick else ''}.json"
    cmd = [str(PYTHON), str(ROOT / "bench" / f"{name}.py"), "--out", str(out)] + (["--quick"] if quick else [])
    print(
        f"\n######## {name} ########\n$ {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}",
        flush=True,
    )
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=ROOT).returncode
    seconds = time.perf_counter() - start
    if code != 0 or not out.is_file():
        print(f"!! {name} failed (exit {code})", flush=True)
        return None, seconds, code
    return json.loads(out.read_text()), seconds, code


def yes(flag) -> str:
    return "n/a" if flag is None else ("met" if flag else "**missed**")


def x(plain: float | None, moment: float | None) -> str:
    if not plain or not moment or any(isinstance(v, float) and math.isnan(v) for v in (plain, moment)):
        return ""
    return f"{plain / moment:.1f}x"


def markdown(results: dict, info: dict) -> str:
    lines = [
        f"Measured {info['date']} on {info['machine']['cpu']}, {info['machine']['cores']} cores, "
        f"{info['machine']['memory_gib']} GiB (shared and noisy: load average "
        f"{info['machine']['load_average_at_start'][0]} "
        f"at the start); `{info['command']}`. Medians and percentiles over repeated runs; "
        "plain = sentence-transformers on PyTorch + one FAISS flat index, no caching.",
        "",
        "| Measure | Moment | Plain | Plain / Moment | Target | |",
        "|---|---:|---:|---:|---|---|",
    ]

    def row(measure, m, p, ratio_, target="", met=""):
        lines.append(f"| {measure} | {m} | {p} | {ratio_} | {target} | {met} |")

    a = results.get("answer_latency")
    if a:
        last = a["sizes"][-1]["chunks"]
        for s in a["sizes"]:
            kind = "real vectors" if s["vectors"] == "real" else "synthetic vectors"
            m, p = s["moment_ms"], s["plain_ms"]
            at_target = s["chunks"] == last
            row(
                f"Warm answer, {s['chunks']:,} chunks ({kind}, Moment FAISS {s['moment_dense_index']}): median / p95",
                f"{fmt(m['median'])} / {fmt(m['p95'])} ms",
                f"{fmt(p['median'])} / {fmt(p['p95'])} ms",
                f"{x(p['median'], m['median'])} / {x(p['p95'], m['p95'])}",
                "p95 ≤ 15 ms, ≥ 3× plain" if at_target else "",
                f"{yes(a['targets']['p95_met'])} / {yes(a['targets']['speedup_met'])}" if at_target else "",
            )
        if "moment_undisturbed_ms" in a["sizes"][-1]:
            s = a["sizes"][-1]
            mu, pu = s["moment_undisturbed_ms"], s["plain_undisturbed_ms"]
            row(
                f"… {s['chunks']:,} chunks, only queries whose threads never waited for a CPU (run-queue wait < 1 ms)",
                f"{fmt(mu['median'])} / {fmt(mu['p95'])} ms (n={mu['n']})",
                f"{fmt(pu['median'])} / {fmt(pu['p95'])} ms (n={pu['n']})",
                f"{x(pu['median'], mu['median'])} / {x(pu['p95'], mu['p95'])}",
                "p95 ≤ 15 ms",
                yes(mu["p95"] <= 15),
            )
    c = results.get("cold_start")
    if c:
        m, p = c["moment_printed_s"], c["plain_printed_s"]
        row(
            "Cold `moment ask` to printed answer: median / p95",
            f"{fmt(m['median'])} / {fmt(m['p95'])} s",
            f"{fmt(p['median'])} / {fmt(p['p95'])} s",
            f"{x(p['median'], m['median'])} / {x(p['p95'], m['p95'])}",
            "≤ 3 s",
            yes(c["targets"]["met"]),
        )
        imports = c["plain_breakdown_s"]
        first = next(iter(imports))
        row(
            "… of which plain imports sentence-transformers/PyTorch",
            "",
            f"{imports[first]:.1f} s",
            "",
            "(issue: > 10 s)",
            "",
        )
    i = results.get("indexing")
    if i:
        b = i["full_build"]
        m, p = b["onnx"], b["plain"]
        row(
            f"Full build, {b['chunks']:,} chunks: chunks/s (words/s)",
            f"{fmt(m['chunks_per_s_median'])} ({fmt(m['words_per_s_median'])})",
            f"{fmt(p['chunks_per_s_median'])} ({fmt(p['words_per_s_median'])})",
            f"{m['chunks_per_s_median'] / p['chunks_per_s_median']:.2f}× faster",
            "≥ 2× plain chunks/s",
            yes(i["targets"]["speedup_met"]),
        )
        if "onnx-int8" in b:
            q = b["onnx-int8"]
            row(
                "… with `MOMENT_EMBEDDING_BACKEND=onnx-int8`",
                f"{fmt(q['chunks_per_s_median'])} ({fmt(q['words_per_s_median'])})",
                "",
                f"{q['chunks_per_s_median'] / p['chunks_per_s_median']:.2f}× faster",
                "≥ 2× plain chunks/s",
                yes(i["targets"]["int8_speedup"] >= 2.0),
            )
        r = i["recall"]
        row(
            "recall@5, eval set (ONNX fp32 default; int8) vs PyTorch full precision",
            f"{r['onnx']['recall@5']:.3f}; {r['onnx-int8']['recall@5']:.3f}"
            if "onnx-int8" in r
            else f"{r['onnx']['recall@5']:.3f}",
            f"{r['torch']['recall@5']:.3f}",
            f"{i['recall5_diff_points_onnx_vs_torch']:+.1f} pt",
            "within 1 point",
            yes(i["targets"]["recall_met"]),
        )
        re = i["reindex"]
        row(
            f"Re-index after changing 1 document of {re['documents']:,} ({re['chunks']:,} chunks): median / p95",
            f"{fmt(re['moment_in_process_s']['median'])} / {fmt(re['moment_in_process_s']['p95'])} s",
            f"{fmt(re['plain_full_reembed_s_derived'])} s (derived)",
            x(re["plain_full_reembed_s_derived"], re["moment_in_process_s"]["median"]),
            "≤ 3 s",
            yes(i["targets"]["reindex_met"]),
        )
        row(
            "… as a fresh `moment index` process: median",
            f"{fmt(re['moment_cli_process_s']['median'])} s",
            "",
            "",
            "",
            "",
        )
    s = results.get("slack_ack")
    if s:
        m, p = s["moment"], s["plain"]
        row(
            f"Slack ack, {s['concurrency']} concurrent signed events (×{s['rounds']}): p50 / p99",
            f"{fmt(m['ack_ms']['median'])} / {fmt(m['ack_ms']['p99'])} ms",
            f"{fmt(p['ack_ms']['median'])} / {fmt(p['ack_ms']['p99'])} ms",
            f"{x(p['ack_ms']['median'], m['ack_ms']['median'])} / {x(p['ack_ms']['p99'], m['ack_ms']['p99'])}",
            "p99 ≤ 100 ms",
            yes(m["ack_ms"]["p99"] <= 100),
        )
        if "server_side_ms" in m:
            row(
                "… of which inside the server (gunicorn's request time): p50 / p99",
                f"{fmt(m['server_side_ms']['median'])} / {fmt(m['server_side_ms']['p99'])} ms",
                f"{fmt(p['server_side_ms']['median'])} / {fmt(p['server_side_ms']['p99'])} ms",
                "",
                "",
                "",
            )
            q = m["quiet_rounds_ack_ms"]
            row(
                "… ack p99 in rounds where other processes used < 0.3 cores",
                f"{fmt(q['p99'])} ms (n={q['n']})",
                f"{fmt(p['quiet_rounds_ack_ms']['p99'])} ms (n={p['quiet_rounds_ack_ms']['n']})",
                "",
                "p99 ≤ 100 ms",
                yes(q["p99"] <= 100) if q["n"] else "n/a",
            )
        row(
            "… answer posted to Slack after: p50 / p99",
            f"{fmt(m['answer_posted_s']['median'])} / {fmt(m['answer_posted_s']['p99'])} s",
            f"{fmt(p['answer_posted_s']['median'])} / {fmt(p['answer_posted_s']['p99'])} s",
            f"{x(p['answer_posted_s']['median'], m['answer_posted_s']['median'])} / "
            f"{x(p['answer_posted_s']['p99'], m['answer_posted_s']['p99'])}",
            "",
            "",
        )
        row(
            "… answered; posted twice (of Slack retries sent)",
            f"{m['answered']}/{m['sent']}; {m['duplicates']} ({m['retries_sent']})",
            f"{p['answered']}/{p['sent']}; {p['duplicates']} ({p['retries_sent']})",
            "",
            "every answer, none twice",
            yes(m["answered"] == m["sent"] and m["duplicates"] == 0),
        )
    mem = results.get("memory")
    if mem:
        m, p = mem["moment"], mem["plain"]
        row(
            f"Peak RSS of the server, {mem['chunks']:,}-chunk index, {mem['workers']} workers (all processes; PSS)",
            f"{fmt(m['peak_rss_total_mib'])} MiB ({fmt(m['pss_total_mib'])})",
            f"{fmt(p['peak_rss_total_mib'])} MiB ({fmt(p['pss_total_mib'])})",
            x(p["peak_rss_total_mib"], m["peak_rss_total_mib"]),
            "",
            "",
        )
    lines += [
        "",
        "Corpora: the demo content and copies of it with varied titles, word substitutions and shuffled "
        "sections (bench/corpus.py). The 1,000-chunk corpus is embedded with the real model; the 10,000- and "
        "100,000-chunk indexes (and the 1,000-document base of the re-index test) use the real vectors of the "
        "demo chunks plus calibrated noise, written in Moment's own index format; queries always run the real "
        "path. The plain re-index time is its full re-embedding at its measured throughput.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run of every script")
    parser.add_argument(
        "--only", nargs="+", choices=SCRIPTS, help="run only these (the others are taken from their last results)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "make bench" if not args.quick else ".venv/bin/python bench/run_all.py --quick",
    }
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    failed = []
    for name in SCRIPTS:
        if args.only and name not in args.only:
            previous = RESULTS_DIR / f"{name}{'-quick' if args.quick else ''}.json"
            if previous.is_file():
                results[name] = json.loads(previous.read_text())
            continue
        data, seconds, _code = run(name, args.quick)
        timings[name] = round(seconds, 1)
        if data is None:
            failed.append(name)
        else:
            results[name] = data
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    latest = {**info, "quick": args.quick, "script_seconds": timings, "failed": failed, "results": results}
    (RESULTS_DIR / f"latest{suffix}.json").write_text(json.dumps(latest, indent=2))
    table = markdown(results, info)
    (RESULTS_DIR / f"latest{suffix}.md").write_text(table)
    print("\n" + table)
    print(f"written bench/results/latest{suffix}.json and latest{suffix}.md in {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
