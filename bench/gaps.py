"""Content gap clustering: 10,000 unanswered questions made into gaps, then the incremental runs after it.

Moment: `assistant.insights.gaps.Gaps.refresh` as the worker runs it: the questions not in a gap are read from
the database with the embeddings the retriever made when they were asked and declined (`question_vectors`;
`MomentService.ask` keeps them), put next to an existing gap's centroid when close enough, the rest
clustered (average linkage, cosine: scikit-learn's AgglomerativeClustering partition, from BLAS distances),
labelled by class-based TF-IDF, and written back. The embeddings are made before the timed run, as answering
made them (their time is printed: the answering path paid it already); `--embed-now` also times a first run
over questions with no embedding kept (older records, or answered and voted down), which embeds them all.
The first run has every question to cluster; an incremental run has the questions asked since (here
batches of 200), most of which join a gap.
Plain: clustering everything again from scratch on each run (what a report that groups its questions anew
each time does): the first run's time, which grows with the whole history, not with what is new.

The questions are generated from the topics of the demo content (content/): 80 subjects, phrased 14 ways,
with 16 qualifiers, 10,000 distinct texts. Target: the first run <= 30 s on 2 cores.

    .venv/bin/python bench/gaps.py                       # 10,000 questions, SQLite
    .venv/bin/python bench/gaps.py --quick               # 1,000 questions
    .venv/bin/python bench/gaps.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import common_args, moment_embedder, write_result

TARGET_SECONDS = 30.0
TEAM = "T0BENCH01"
SUBJECTS = [
    "parental leave", "shared parental leave", "pension contributions", "the pension statement", "sick pay",
    "jury duty leave", "bereavement leave", "the cycle to work scheme", "the eye test voucher", "a payslip error",
    "the electric van charging", "the EV charge card", "a cracked tablet screen", "a lost van key", "the dash cam",
    "the van tracker", "a flat tyre on the van", "the fuel card abroad", "the congestion charge", "a parking fine",
    "a smart meter install", "a meter exchange", "the asbestos register", "working at height", "a ladder check",
    "the gas safe card", "a carbon monoxide alarm", "confined spaces", "a needle found on site", "a dog at a job",
    "the customer complaint form", "a customer refund", "a missed appointment", "a vulnerable customer",
    "the job notes app", "the timesheet app", "overtime approval", "on-call swaps", "the standby allowance",
    "the night shift rota", "a new starter laptop", "the printer on floor two", "the guest wifi", "the Teams phone",
    "a locked out account", "the MFA app on a new phone", "the expense card limit", "hotel booking rules",
    "train travel booking", "meal allowance", "the tool allowance", "PPE boots size", "hi-vis jackets",
    "the first aid kit", "an eye wash station", "a near miss report", "the accident book", "a van accident abroad",
    "the depot gate code", "the canteen opening hours", "the car park permit", "the christmas party",
    "long service awards", "the training budget", "the apprenticeship scheme", "a CSCS card", "the NVQ course",
    "the mentoring programme", "an internal job move", "a pay rise review", "the appraisal form", "flexible working",
    "working from home kit", "a second job", "the union rep", "the whistleblowing line", "the data breach form",
    "a customer's personal data", "recording calls", "the company phone upgrade",
]  # fmt: skip
PHRASINGS = [
    "how do I sort out {s}", "where can I find {s}", "who do I ask about {s}", "what's the policy on {s}",
    "{s} help please", "is there a guide for {s}", "what are the rules for {s}", "can someone explain {s}",
    "I need {s} information", "what happens with {s}", "question about {s}", "anyone know about {s}",
    "how does {s} work", "what do I do about {s}",
]  # fmt: skip
QUALIFIERS = [
    "", " today", " for my team", " as a new starter", " on a site visit", " this month", " urgently",
    " in Scotland", " on nights", " as an apprentice", " for next week", " again", " at the depot",
    " on my day off", " as a supervisor", " before Friday",
]  # fmt: skip


def questions(n: int, seed: int) -> list[str]:
    """`n` distinct questions over the subjects, in a random order."""
    rng = random.Random(seed)
    every = [(p.format(s=s) + q) for s in SUBJECTS for p in PHRASINGS for q in QUALIFIERS]
    rng.shuffle(every)
    return every[:n]


def insert(database, texts: list[str], at: dt.datetime, vectors=None, model: str | None = None) -> None:
    """The questions as declined interactions (with the embeddings answering kept, when `vectors` is given)."""
    from sqlalchemy import func, select
    from sqlalchemy import insert as sql_insert

    from assistant.db.gap_models import QuestionVector
    from assistant.db.models import Interaction

    rows = [
        {"created_at": at, "user_id": f"U0B{i % 500:06d}", "team_id": TEAM, "surface": "dm", "question": t,
         "question_chars": len(t), "answered": False, "outcome": "not_answered", "confidence": 0.1,
         "latency_ms": 10.0}
        for i, t in enumerate(texts)
    ]  # fmt: skip
    with database.session() as session:
        first = (session.scalar(select(func.max(Interaction.id))) or 0) + 1
        session.execute(sql_insert(Interaction), rows)
        if vectors is not None:
            kept = [{"interaction_id": first + i, "team_id": TEAM, "embedding_model": model,
                     "embedding": v.astype("float32").tobytes()} for i, v in enumerate(vectors)]  # fmt: skip
            session.execute(sql_insert(QuestionVector), kept)


def first_run(database_url: str | None, tmp: str, name: str, embedder, texts, start, vectors=None):
    from assistant.db.database import Database
    from assistant.insights.gap_inputs import model_key
    from assistant.insights.gaps import Gaps

    database = Database(database_url or f"sqlite:///{Path(tmp) / f'{name}.db'}")
    database.upgrade()
    insert(database, texts, start, vectors, model_key(embedder))
    gaps = Gaps(database, embedder)
    return database, gaps, gaps.refresh(TEAM, now=start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(parser)
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200, help="questions per incremental run")
    parser.add_argument("--runs", type=int, default=3, help="incremental runs")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--embed-now", action="store_true", help="also time a first run with no embedding kept")
    args = parser.parse_args()
    if args.quick:
        args.questions, args.runs = 1_000, 2
    if args.embed_now and args.database_url:
        parser.error("--embed-now makes a second database: give no --database-url (SQLite files)")

    from assistant.insights.gap_inputs import model_key

    total = args.questions + args.batch * args.runs
    texts = questions(total, seed=7)
    first = texts[: args.questions]
    embedder = moment_embedder()
    embedder.encode(["warm up the model"])
    import sklearn.feature_extraction.text  # noqa: F401  (the worker imports it once, not per run)

    started = time.perf_counter()
    vectors = embedder.encode(texts, batch_size=32)
    answering = time.perf_counter() - started
    print(f"embeddings made as answering makes them (not timed below): {total:,} questions in {answering:.1f} s")
    cold = None
    with tempfile.TemporaryDirectory() as tmp:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=14)
        if args.embed_now:
            database, _, cold = first_run(args.database_url, tmp, "cold", embedder, first, start)
            print(f"first run, no embedding kept: {cold.new_questions:,} questions -> {cold.new_gaps:,} gaps in "
                  f"{cold.seconds:.1f} s (embedding {cold.embed_seconds:.1f} s)")  # fmt: skip
            database.dispose()
        database, gaps, full = first_run(args.database_url, tmp, "bench", embedder, first, start, vectors[: len(first)])
        listed = gaps.list(TEAM, "all")
        listing = []
        for _ in range(5):  # what a page listing the gaps asks for
            started = time.perf_counter()
            gaps.list(TEAM, "all")
            listing.append((time.perf_counter() - started) * 1000)
        met = "met" if full.seconds <= TARGET_SECONDS else "NOT met"
        print(f"first run: {full.new_questions:,} questions -> {full.new_gaps:,} gaps in {full.seconds:.1f} s "
              f"({full.embedded} embedded now; reading embeddings {full.embed_seconds:.1f} s); "
              f"target <= {TARGET_SECONDS:.0f} s: {met}")  # fmt: skip
        print(f"  listing the {len(listed)} gaps (size, trend, examples): median {statistics.median(listing):.0f} ms")
        sizes = sorted((g.size for g in listed), reverse=True)
        print(f"  gaps of 2+ questions: {sum(s >= 2 for s in sizes):,}; largest: {sizes[:5]}")
        print("  labels of the five largest: " + "; ".join(g.label for g in sorted(listed, key=lambda g: -g.size)[:5]))
        incremental = []
        for run in range(args.runs):
            batch = slice(args.questions + run * args.batch, args.questions + (run + 1) * args.batch)
            insert(database, texts[batch], start + dt.timedelta(days=run + 1), vectors[batch], model_key(embedder))
            result = gaps.refresh(TEAM, now=start + dt.timedelta(days=run + 1))
            incremental.append(result)
            print(f"incremental run {run + 1}: {result.new_questions} questions, {result.joined} joined a gap, "
                  f"{result.new_gaps} new gaps, {result.seconds:.2f} s")  # fmt: skip
        database.dispose()
    median = statistics.median(r.seconds for r in incremental)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak resident memory {peak:,.0f} MiB")
    print(f"\nincremental median {median:.2f} s per {args.batch} new questions; plain (cluster everything again) "
          f"{full.seconds:.1f} s: {full.seconds / median:.0f}x")  # fmt: skip
    write_result(
        "gaps",
        {
            "questions": args.questions,
            "first_run_seconds": round(full.seconds, 2),
            "first_run_embedded_now": full.embedded,
            "answering_embed_seconds": round(answering, 2),
            "gaps": full.new_gaps,
            "target_seconds": TARGET_SECONDS,
            "incremental_batch": args.batch,
            "incremental_seconds": [round(r.seconds, 3) for r in incremental],
            "incremental_median_seconds": round(median, 3),
            "joined": [r.joined for r in incremental],
            "speedup_vs_full": round(full.seconds / median, 1),
            "no_kept_embeddings_first_run_seconds": round(cold.seconds, 2) if cold else None,
            "no_kept_embeddings_embed_seconds": round(cold.embed_seconds, 2) if cold else None,
            "peak_resident_mib": round(peak),
            "list_median_ms": round(statistics.median(listing), 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
