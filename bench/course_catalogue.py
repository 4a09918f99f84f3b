"""Importing a course catalogue: Moment's batched upsert against the plain approach (one ORM object added per
row, looked up by activity id first), on the same rows and the same database kind.

    python bench/course_catalogue.py [--rows 10000] [--runs 3] [--database-url URL]

Prints the median seconds of each (a fresh SQLite file per run, or a fresh PostgreSQL schema with
--database-url), their ratio, and a re-import of the same rows (nothing changed) by Moment's path.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import common  # noqa: F401  (puts the project on sys.path)
from sqlalchemy import create_engine, select, text

from assistant.db.database import Database
from assistant.db.models import Course, utcnow
from assistant.learning.catalogue import parse_csv, store_entries

HEADER = "title,url,description,topics,duration,activity_id\n"


def rows(n: int) -> str:
    return HEADER + "".join(
        f"Course {i},https://lms.example/c/{i},About topic {i % 97},topic {i % 97};skills,{i % 120 + 5},\n"
        for i in range(n)
    )


def plain(database: Database, entries) -> None:
    """One row at a time: look the course up, add it."""
    with database.session() as session:
        for entry in entries:
            found = session.scalar(select(Course).where(Course.team_id == "T", Course.activity_id == entry.activity))
            if found is None:
                now = utcnow()
                session.add(
                    Course(
                        team_id="T",
                        activity_id=entry.activity,
                        url=entry.url,
                        title=entry.title,
                        description=entry.description,
                        topics=list(entry.topics),
                        duration_minutes=entry.duration_minutes,
                        origin="file",
                        text_hash=entry.text_hash,
                        imported_at=now,
                        updated_at=now,
                    )
                )
                session.flush()


def fresh(base_url: str | None, tmp: Path) -> tuple[Database, callable]:
    if base_url is None:
        database = Database(f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}")
        database.upgrade()
        return database, database.dispose
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = Database(f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}")
    database.upgrade()

    def drop():
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return database, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (a schema per run); default SQLite files")
    args = parser.parse_args()
    entries, errors = parse_csv(rows(args.rows))
    assert not errors
    timings: dict[str, list[float]] = {"moment": [], "plain": [], "moment re-import": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for name in ("moment", "plain"):
                database, done = fresh(args.database_url, Path(tmp))
                try:
                    started = time.perf_counter()
                    if name == "moment":
                        store_entries(database, "T", entries, "file")
                    else:
                        plain(database, entries)
                    timings[name].append(time.perf_counter() - started)
                    if name == "moment":
                        started = time.perf_counter()
                        store_entries(database, "T", entries, "file")
                        timings["moment re-import"].append(time.perf_counter() - started)
                finally:
                    done()
    kind = "PostgreSQL" if args.database_url else "SQLite"
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"{args.rows:,} catalogue rows, {kind}, median of {args.runs} runs:")
    for name, value in medians.items():
        print(f"  {name:<18} {value:7.2f} s")
    print(f"  plain / moment     {medians['plain'] / medians['moment']:7.1f} x")


if __name__ == "__main__":
    main()
