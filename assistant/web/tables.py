"""Each page's table as CSV (cells a spreadsheet would run as formulas neutralised: `spreadsheet_cell`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from assistant.records.reports import spreadsheet_cell


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """The header and the rows as CSV text, a line at a time (a long table is streamed, not built whole)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([spreadsheet_cell("" if v is None else v) for v in row])
        yield buffer.getvalue()


def overview_rows(overview) -> tuple[list[str], list[list]]:
    figures = [
        ("questions", "questions"),
        ("answered_rate", "answered rate"),
        ("helpful_rate", "helpful rate"),
        ("handoffs", "hand-offs to mentors"),
        ("median_minutes_to_mentor", "median minutes to a mentor"),
        ("askers", "active askers"),
    ]
    rows = [[label, getattr(overview.current, name), getattr(overview.previous, name)] for name, label in figures]
    rows += [[f"week of {w['week']}", w["questions"], ""] for w in overview.weeks]
    return ["figure", "this period", "previous period"], rows


def content_rows(items) -> tuple[list[str], list[list]]:
    header = ["path", "title", "type", "shown", "shown first", "helpful", "not helpful", "hand-offs",
              "last reviewed", "stale", "in the index"]  # fmt: skip
    rows = (
        [i.path, i.title, i.type, i.shown, i.top, i.helpful, i.not_helpful, i.handoffs,
         i.reviewed.isoformat() if i.reviewed else "", int(i.stale), int(i.indexed)]
        for i in items
    )  # fmt: skip
    return header, rows


def question_rows(rows) -> tuple[list[str], list[list]]:
    header = ["id", "asked at", "asker", "question", "outcome", "answered", "confidence", "top source",
              "helpful votes", "not helpful votes", "handed off"]  # fmt: skip
    body = (
        [r.id, r.asked_at.isoformat(), r.asker, r.question if r.question is not None else "(hidden)", r.outcome,
         int(r.answered), round(r.confidence, 3), r.top_path or "", r.helpful, r.not_helpful, int(r.handed_off)]
        for r in rows
    )  # fmt: skip
    return header, body


def mentor_rows(rows) -> tuple[list[str], list[list]]:
    header = ["mentor", "name", "offered", "accepted", "declined", "timed out", "resolved",
              "median minutes to respond", "active"]  # fmt: skip
    body = (
        [m.mentor_id, m.name or "", m.offered, m.accepted, m.declined, m.timed_out, m.resolved,
         m.median_minutes_to_respond, int(m.active)]
        for m in rows
    )  # fmt: skip
    return header, body


def course_rows(courses, figures) -> tuple[list[str], list[list]]:
    """Every course of the catalogue with its suggestions of the period (`figures`: course id -> `CourseStats`)."""
    header = ["title", "url", "activity id", "topics", "duration minutes", "audience", "from", "matched", "suggested",
              "clicked", "not now", "completed"]  # fmt: skip
    rows = []
    for c in courses:
        f = figures.get(c.id)
        counts = [f.suggested, f.clicked, f.dismissed, f.completed] if f else [0, 0, 0, 0]
        rows.append([c.title, c.url, c.activity_id, "; ".join(c.topics), c.duration_minutes, "; ".join(c.audience),
                     c.origin, int(c.embedded), *counts])  # fmt: skip
    return header, rows


def gap_rows(gaps) -> tuple[list[str], list[list]]:
    """The gaps list (`GapSummary`s); examples joined by " | " (none where question text is hidden)."""
    header = ["id", "label", "status", "owner", "size", "in the period", "in the period before", "trend",
              "not answered", "not helpful", "handed off", "now answered", "re-asked", "examples", "created",
              "updated"]  # fmt: skip
    body = (
        [g.id, g.label, g.status, g.owner_id or "", g.size, g.recent, g.previous, g.trend,
         g.reasons.get("not_answered", 0), g.reasons.get("not_helpful", 0), g.reasons.get("handed_off", 0),
         g.answered_now, g.checked, " | ".join(g.examples), g.created_at.isoformat(), g.updated_at.isoformat()]
        for g in gaps
    )  # fmt: skip
    return header, body
