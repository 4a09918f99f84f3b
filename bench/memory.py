"""Memory: peak resident memory of `moment serve` holding the 100,000-chunk index.

`moment serve` (gunicorn, 2 workers, default threads) serves the 100,000-chunk corpus's index
(synthetic vectors, Moment's own format; see bench/corpus.py) against the Slack stand-in; it answers
60 questions (so the search structures are touched as in service), then every process's peak
resident set (VmHWM) is read from /proc, with its current RSS and its proportional share (PSS: pages
shared between the workers - memory-mapped index files, the page cache - are split between them).
The plain approach (bench/plain_slack_app.py: PyTorch + one FAISS flat index of the same vectors held
in memory + the chunk texts) is measured the same way, with the same number of workers.

    .venv/bin/python bench/memory.py [--quick]   # quick: the 10,000-chunk index
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, common_args, eval_questions, fmt, ratio, side_by_side, write_result


def measure(server, stub, questions: list[str], tag: str) -> dict:
    from servers import SIGNING_SECRET

    from slackstub import payloads
    from slackstub.signing import SlackSender

    print(f"starting {server.name} ...", flush=True)
    ready = server.wait_ready(timeout=600)
    print(f"  ready in {ready:.1f} s", flush=True)
    idle = server.memory()
    sender = SlackSender(server.url, SIGNING_SECRET, timeout=60)
    stub.clear()
    for i, q in enumerate(questions):
        sender.event(payloads.event_callback(payloads.app_mention(q, user=f"U{tag}{i:03d}", channel=f"C{tag}{i:03d}")))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(stub.calls("chat.postMessage")) < len(questions):
        time.sleep(0.1)
    answered = len(stub.calls("chat.postMessage"))
    time.sleep(1.0)
    after = server.memory()
    procs = sorted(after.values(), key=lambda e: -e["peak_rss_mib"])
    return {
        "ready_s": ready,
        "answered": answered,
        "processes": len(after),
        "peak_rss_total_mib": sum(e["peak_rss_mib"] for e in after.values()),
        "peak_rss_largest_process_mib": procs[0]["peak_rss_mib"] if procs else float("nan"),
        "rss_total_mib": sum(e["rss_mib"] for e in after.values()),
        "pss_total_mib": sum(e.get("pss_mib", 0.0) for e in after.values()),
        "idle_rss_total_mib": sum(e["rss_mib"] for e in idle.values()),
        "per_process": list(after.values()),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description="Peak resident memory of `moment serve` vs the plain app.")
    common_args(parser)
    parser.add_argument("--chunks", type=int, help="index size (default 100000; quick 10000)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    chunks = args.chunks or (10000 if args.quick else 100000)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from corpus import index_chunks, index_for
    from servers import BOT_TOKEN, plain_dir_for, start_moment, start_plain
    from slack_stub_proc import RemoteStub

    content, index, method = index_for(chunks)
    n = index_chunks(index)
    plain_dir = plain_dir_for(index, f"{chunks}c")
    questions = [q["question"] for q in eval_questions()][:60]
    out = {}
    with RemoteStub(BOT_TOKEN) as stub:
        for name in ("moment", "plain"):
            server = (
                start_moment(stub.api_url, index, content, workers=args.workers, tag="-memory")
                if name == "moment"
                else start_plain(stub.api_url, plain_dir, workers=args.workers, tag="-memory")
            )
            try:
                out[name] = measure(server, stub, questions, name[0].upper())
            finally:
                server.stop()
    m, p = out["moment"], out["plain"]
    rows = [
        (
            "peak RSS, all processes MiB",
            fmt(m["peak_rss_total_mib"]),
            fmt(p["peak_rss_total_mib"]),
            fmt(ratio(p["peak_rss_total_mib"], m["peak_rss_total_mib"]), "x"),
        ),
        (
            "peak RSS, largest process MiB",
            fmt(m["peak_rss_largest_process_mib"]),
            fmt(p["peak_rss_largest_process_mib"]),
            fmt(ratio(p["peak_rss_largest_process_mib"], m["peak_rss_largest_process_mib"]), "x"),
        ),
        (
            "PSS after answering MiB",
            fmt(m["pss_total_mib"]),
            fmt(p["pss_total_mib"]),
            fmt(ratio(p["pss_total_mib"], m["pss_total_mib"]), "x"),
        ),
        ("processes", str(m["processes"]), str(p["processes"]), ""),
        ("answered", f"{m['answered']}/{len(questions)}", f"{p['answered']}/{len(questions)}", ""),
        ("ready after start s", fmt(m["ready_s"]), fmt(p["ready_s"]), ""),
    ]
    print()
    print(side_by_side(f"{n:,}-chunk index ({method} vectors), {args.workers} workers each", rows))
    data = {"chunks": n, "vectors": method, "workers": args.workers, "moment": m, "plain": p}
    write_result("memory", data, args.out)
    return data


if __name__ == "__main__":
    main()
