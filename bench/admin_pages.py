"""How fast the admin pages render over a large interaction log: N interactions (default 1,000,000) in a
PostgreSQL schema of their own, then every page of /admin rendered through the real Flask app (templates and
queries; a signed-in admin's session), repeated, with the median and p95 of each.

Data, written with COPY: interactions over the last 365 days in time order, as recorded (70% answered, 1% system
errors) by 5,000 people, three sources each among 200 content items (3 source rows per interaction), a vote
on 15% of the answers (a third not helpful), a hand-off for 3% of the questions (an offer each, most accepted), and 10%
of it in a second workspace the pages must leave out. Then the daily roll-ups are built, as the worker's
`insight-rollups` job builds them (timed: the first, then one with nothing changed), and the pages read them;
`--live` measures the pages without them (every figure counted from the rows, as before roll-ups existed).
The plain approach for comparison: what `moment report` does first, loading the period's interactions (with
their sources and votes) as rows.

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/admin_pages.py
    [--rows 1000000] [--repeats 20] [--keep SCHEMA] [--live]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, fmt, summary, write_result

sys.path.insert(0, str(ROOT))

TEAM, OTHER = "T0BENCH001", "T0BENCHOTH"
ITEMS = [(f"area{n % 12}/item-{n:03d}.md", f"Job aid {n}") for n in range(200)]
PAGES = [
    ("overview, 28 days", "/?days=28"),
    ("overview, 365 days", "/?days=365"),
    ("content, 28 days (worst first)", "/content?days=28"),
    ("content, 365 days", "/content?days=365"),
    ("questions, first page", "/questions?days=28"),
    ("questions, not helpful", "/questions?days=28&show=not_helpful"),
    ("questions, 365 days, handed off", "/questions?days=365&show=handed_off"),
    ("mentors, 28 days", "/mentors?days=28"),
    ("mentors, 365 days", "/mentors?days=365"),
]


def generate(url: str, rows: int, seed: int = 7) -> float:
    """Write the data with COPY; the seconds it took."""
    import psycopg

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    votes, requests = [], []
    with psycopg.connect(conninfo) as conn:
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY interactions (id, created_at, user_id, team_id, surface, question, question_chars, answered, "
                "outcome, confidence, latency_ms) FROM STDIN"
            ) as copy,
        ):
            # In id order, as they are recorded (the table is then in time order on disk, as in production).
            seconds = sorted((rng.random() * 365 * 86400 for _ in range(rows)), reverse=True)
            for i in range(1, rows + 1):
                at = now - dt.timedelta(seconds=seconds[i - 1])
                team = OTHER if rng.random() < 0.1 else TEAM
                roll = rng.random()
                answered = roll < 0.7
                outcome = "answered" if answered else "error" if roll > 0.99 else "declined"
                question = f"How do I do task {rng.randrange(5000)} with tool {rng.randrange(50)}?"
                copy.write_row((i, at, f"U{rng.randrange(5000):08d}", team, "dm", question, len(question), answered,
                                outcome, rng.random(), 100.0))  # fmt: skip
                if answered and rng.random() < 0.15:
                    votes.append((i, team, f"U{rng.randrange(5000):08d}", rng.random() > 0.33, at))
                if rng.random() < 0.03:
                    requests.append((i, team, at))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY interaction_sources (interaction_id, rank, path, title, type, score, stale) FROM STDIN"
            ) as copy,
        ):
            for i in range(1, rows + 1):
                for rank, (path, title) in enumerate(rng.sample(ITEMS, 3), start=1):
                    copy.write_row((i, rank, path, title, "job-aid", 0.9 - rank / 10, False))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY votes (interaction_id, team_id, user_id, helpful, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for interaction_id, team, user, helpful, at in votes:
                copy.write_row((interaction_id, team, user, helpful, at, at))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY mentor_requests (id, created_at, interaction_id, asker_id, team_id, question, status, attempts, "
                "owner_id, accepted_at, resolved_at) FROM STDIN"
            ) as copy,
        ):
            for n, (interaction_id, team, at) in enumerate(requests, start=1):
                mentor = f"U0MENTOR{rng.randrange(40):02d}"
                accepted = at + dt.timedelta(minutes=rng.randrange(1, 240))
                copy.write_row((n, at, interaction_id, "U0ASKER", team, "a question", "resolved", 1, mentor, accepted,
                                accepted + dt.timedelta(hours=rng.randrange(1, 48))))  # fmt: skip
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY mentor_offers (team_id, request_id, mentor_id, offered_at, expires_at, outcome, responded_at, "
                "reason, score) FROM STDIN"
            ) as copy,
        ):
            for n, (_, team, at) in enumerate(requests, start=1):
                copy.write_row((team, n, f"U0MENTOR{rng.randrange(40):02d}", at, at + dt.timedelta(minutes=30),
                                "accepted", at + dt.timedelta(minutes=rng.randrange(1, 30)), "", 0.5))  # fmt: skip
        with conn.cursor() as cur:
            for table in ("interactions", "mentor_requests"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load (index-only scans need it)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="interactions to generate")
    parser.add_argument("--repeats", type=int, default=20, help="renders of each page")
    parser.add_argument("--keep", help="reuse (and keep) this schema: generated when it is empty")
    parser.add_argument("--live", action="store_true", help="without the daily roll-ups (every figure from the rows)")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        sys.exit("set TEST_DATABASE_URL to a PostgreSQL database (a schema of its own is made in it)")

    from sqlalchemy import create_engine, text

    from assistant.db.database import Database

    schema = args.keep or f"bench_admin_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        database = Database(url)
        database.upgrade()
        with database.engine.connect() as conn:
            existing = conn.execute(text("SELECT count(*) FROM interactions")).scalar()
        if existing == 0:
            print(f"generating {args.rows:,} interactions in schema {schema} ...", flush=True)
            print(f"  written in {generate(url, args.rows):.0f} s", flush=True)
        with database.engine.connect() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                      for t in ("interactions", "interaction_sources", "votes", "mentor_requests")}  # fmt: skip
        print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
        rollups = build_rollups(database, args.live)
        database.dispose()
        figures = measure(url, args.repeats)
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    result = {"rows": counts, "repeats": args.repeats, "rollups": rollups, "pages": figures}
    write_result("admin_pages_live" if args.live else "admin_pages", result)


def build_rollups(database, live: bool) -> dict:
    """The daily roll-ups of both workspaces from scratch (seconds), then again with nothing changed (ms);
    with `live`, none (the pages count every figure from the rows)."""
    from sqlalchemy import delete, text

    from assistant.db.rollup_models import DailyContent, DailyQuestions, RollupState
    from assistant.insights.rollups import roll_up

    with database.session() as session:
        for table in (RollupState, DailyQuestions, DailyContent):
            session.execute(delete(table))
    if live:
        print("pages counted live (no roll-ups)", flush=True)
        return {}
    started = time.perf_counter()
    days = sum(r.days for r in roll_up(database, [TEAM, OTHER]))
    first = time.perf_counter() - started
    again = []
    for _ in range(5):
        started = time.perf_counter()
        roll_up(database, [TEAM, OTHER])
        again.append((time.perf_counter() - started) * 1000)
    steady = summary(again)
    with database.engine.connect() as conn:  # what autovacuum does after the first roll-up's bulk insert
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE daily_content, daily_questions")
        )
    print(f"roll-ups: {days} days of 2 workspaces built in {first:.1f} s; again with nothing changed: median "
          f"{fmt(steady['median'])} ms", flush=True)  # fmt: skip
    return {"days": days, "first_seconds": round(first, 2), "unchanged_ms": steady}


def measure(url: str, repeats: int) -> dict:
    import logging

    from assistant.db.database import Database
    from assistant.db.models import Interaction
    from assistant.insights import Period
    from assistant.service import MomentService
    from assistant.settings import load_settings
    from assistant.web import create_web_app

    logging.getLogger("assistant.insights.pages").setLevel(logging.ERROR)  # no index here: the catalogue is empty
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-admin-{uuid.uuid4().hex[:6]}"
    settings = load_settings(
        home=home, database_url_override=url, index_sync_seconds=0, web_secret="bench-secret-key",
        slack_client_id="1.2", slack_client_secret="s", admins=["U0BENCHADM"], default_team_id=TEAM,
    )  # fmt: skip
    service = MomentService.from_settings(settings)
    app = create_web_app(settings, service)
    client = app.test_client()
    base = "http://127.0.0.1/admin"  # the app's mount point (the session cookie's path)
    with client.session_transaction(base_url=base) as session:
        session.update(user="U0BENCHADM", team=TEAM, name="Bench", csrf="x")
    results = {}
    print(f"\n{'page':36} {'median':>9} {'p95':>9}   (ms, {repeats} renders after one warm-up)")
    for name, path in PAGES:
        response = client.get(path, base_url=base)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(path, base_url=base)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results[name] = summary(times)
        print(f"{name:36} {fmt(results[name]['median']):>9} {fmt(results[name]['p95']):>9}", flush=True)

    # The plain approach: the period's interactions loaded as rows with their sources and votes (as
    # `build_report` starts), for the overview's 28 days.
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    database = Database(url)
    period = Period.last(28)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with database.session() as session:
            rows = session.scalars(
                select(Interaction)
                .where(Interaction.team_id == TEAM, period.holds())
                .options(selectinload(Interaction.sources), selectinload(Interaction.votes))
            ).all()
        times.append((time.perf_counter() - started) * 1000)
    database.dispose()
    plain = summary(times)
    overview = results["overview, 28 days"]["median"]
    print(f"\nplain: loading the 28 days' {len(rows):,} interactions as rows: median {fmt(plain['median'])} ms; "
          f"the overview page in SQL: {fmt(overview)} ms ({plain['median'] / overview:.0f}x)")  # fmt: skip
    results["plain: 28 days of rows loaded"] = plain
    service.close()
    return results


if __name__ == "__main__":
    main()
