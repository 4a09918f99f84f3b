"""What L&D reads: usage, what works, where content is missing, how mentors respond.

`build_report()` gathers the figures for the last N days (today and the N - 1 days before it, UTC)
from the interaction log; `to_markdown`, `to_csv`, `to_json` and `chart_image` present them. Its content
gaps are the workspace's gaps (`assistant.insights.gaps`: questions declined, voted not helpful or handed to
a mentor, clustered by meaning, with an owner and a status) that had questions in the period, so that ten
ways of asking about parental leave count as one gap with ten asks. A question that could not be searched
(no index: a system error) is counted apart, never as a gap in the content.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from assistant.access.tenancy import DEFAULT_TEAM
from assistant.db.database import Database
from assistant.db.models import Interaction, MentorOffer, MentorRequest, utcnow

NOT_QUESTIONS = ("empty", "no_words")  # outcomes of messages with nothing to search: not counted as questions
log = logging.getLogger(__name__)

REPORT_GAPS = 10  # the busiest gaps of the period a report lists
CHART_FORMATS = ("png", "jpg", "jpeg", "svg", "pdf")
# A cell starting with one of these is run as a formula by spreadsheets (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

if TYPE_CHECKING:
    from assistant.insights.gap_views import GapSummary


@dataclass
class ContentUse:
    path: str
    title: str
    type: str
    shown: int
    top: int  # times it was the best source
    helpful: int
    not_helpful: int


@dataclass
class MentorFigures:
    mentor_id: str
    offered: int
    accepted: int
    declined: int
    timed_out: int
    resolved: int
    median_minutes_to_accept: float | None
    median_minutes_to_resolve: float | None


@dataclass
class Report:
    days: int
    start: dt.datetime
    end: dt.datetime
    questions: int = 0
    askers: int = 0
    answered: int = 0
    errors: int = 0  # questions not searched because of a system error (no index)
    votes: int = 0
    helpful: int = 0
    mentor_requests: int = 0
    by_surface: dict[str, int] = field(default_factory=dict)
    per_day: list[dict] = field(default_factory=list)  # {date, questions, answered, errors, helpful, votes}
    top_content: list[ContentUse] = field(default_factory=list)
    gaps: list[GapSummary] = field(default_factory=list)  # with questions in the period, the busiest first
    mentors: list[MentorFigures] = field(default_factory=list)
    stale_hits: list[dict] = field(default_factory=list)  # stale content people still reach
    median_latency_ms: float | None = None
    restricted_items: int = 0  # items for some user groups only, shown but not named (a report for everyone)

    @property
    def answered_rate(self) -> float | None:
        """Answered from content, of the questions that were searched (system errors left out)."""
        searched = self.questions - self.errors
        return self.answered / searched if searched else None

    @property
    def helpful_rate(self) -> float | None:
        return self.helpful / self.votes if self.votes else None


def build_report(
    database: Database,
    days: int = 7,
    embedder=None,
    now: dt.datetime | None = None,
    hidden=None,
    *,
    team_id: str = DEFAULT_TEAM,
) -> Report:
    """One workspace's report for `days` days: the day of `now` (UTC) and the `days` - 1 days before it.

    `hidden(path, recorded_audience)`: True for content items the report must not name (restricted ones,
    in a report non-admins read); they are counted in `restricted_items` instead. `embedder`: when given,
    the workspace's gaps are brought up to date first (`Gaps.refresh`: new questions clustered)."""
    end = now or utcnow()
    first_day = end.date() - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    report = Report(days=days, start=start, end=end)
    with database.session() as session:
        rows = session.scalars(
            select(Interaction)
            .where(Interaction.team_id == team_id, Interaction.created_at >= start, Interaction.created_at < end)
            .options(selectinload(Interaction.sources), selectinload(Interaction.votes))
            .order_by(Interaction.created_at)
        ).all()
        requests = session.scalars(
            select(MentorRequest).where(
                MentorRequest.team_id == team_id, MentorRequest.created_at >= start, MentorRequest.created_at < end
            )
        ).all()
        offers = session.scalars(
            select(MentorOffer).where(
                MentorOffer.team_id == team_id, MentorOffer.offered_at >= start, MentorOffer.offered_at < end
            )
        ).all()
        resolved = session.scalars(
            select(MentorRequest).where(
                MentorRequest.team_id == team_id, MentorRequest.resolved_at >= start, MentorRequest.resolved_at < end
            )
        ).all()
    rows = [r for r in rows if r.outcome not in NOT_QUESTIONS]
    report.questions = len(rows)
    report.askers = len({r.user_id for r in rows})
    report.answered = sum(r.answered for r in rows)
    report.errors = sum(r.outcome == "error" for r in rows)
    report.by_surface = dict(Counter(r.surface for r in rows))
    report.mentor_requests = len(requests)
    if rows:
        report.median_latency_ms = round(float(np.median([r.latency_ms for r in rows])), 1)

    days_map = {
        day: {"date": day.isoformat(), "questions": 0, "answered": 0, "errors": 0, "helpful": 0, "votes": 0}
        for day in (first_day + dt.timedelta(days=n) for n in range(days))
    }
    uses: dict[str, ContentUse] = {}
    stale: dict[str, dict] = {}
    restricted: set[str] = set()
    for r in rows:
        day = days_map[r.created_at.date()]
        day["questions"] += 1
        day["answered"] += int(r.answered)
        day["errors"] += int(r.outcome == "error")
        helpful_votes = sum(v.helpful for v in r.votes)
        unhelpful_votes = sum(not v.helpful for v in r.votes)
        day["helpful"] += helpful_votes
        day["votes"] += len(r.votes)
        report.votes += len(r.votes)
        report.helpful += helpful_votes
        if r.answered:
            for s in r.sources:
                if hidden is not None and hidden(s.path, s.audience):
                    restricted.add(s.path)
                    continue
                use = uses.setdefault(s.path, ContentUse(s.path, s.title, s.type, 0, 0, 0, 0))
                use.shown += 1
                if s.rank == 1:
                    use.top += 1
                    use.helpful += helpful_votes
                    use.not_helpful += unhelpful_votes
                if s.stale:
                    hit = stale.setdefault(s.path, {"path": s.path, "title": s.title, "hits": 0})
                    hit["hits"] += 1
    report.per_day = [days_map[d] for d in sorted(days_map)]
    report.restricted_items = len(restricted)
    report.top_content = sorted(uses.values(), key=lambda u: (-u.top, -u.shown, u.path))[:10]
    report.stale_hits = sorted(stale.values(), key=lambda h: -h["hits"])
    from assistant.insights.gaps import Gaps  # not at the top: assistant.insights reads this module's definitions

    if embedder is not None:
        from sqlalchemy.exc import IntegrityError

        try:
            Gaps(database, embedder).refresh(team_id)
        except IntegrityError:  # the worker placed the same questions at the same moment: its gaps are read
            log.info("content gaps refreshed by another process meanwhile")
    busy = [g for g in Gaps(database).list(team_id, "all", start=start, now=end) if g.recent]
    report.gaps = busy[:REPORT_GAPS]
    report.mentors = _mentor_figures(offers, resolved)
    return report


def _mentor_figures(offers, resolved) -> list[MentorFigures]:
    by_mentor: dict[str, list] = defaultdict(list)
    for offer in offers:
        by_mentor[offer.mentor_id].append(offer)
    resolve_minutes: dict[str, list[float]] = defaultdict(list)
    for request in resolved:
        if request.owner_id and request.accepted_at:
            resolve_minutes[request.owner_id].append((request.resolved_at - request.accepted_at).total_seconds() / 60)
    figures = []
    for mentor_id in sorted(set(by_mentor) | set(resolve_minutes)):
        mine = by_mentor.get(mentor_id, [])
        accept = [
            (o.responded_at - o.offered_at).total_seconds() / 60
            for o in mine
            if o.outcome == "accepted" and o.responded_at
        ]
        figures.append(
            MentorFigures(
                mentor_id=mentor_id,
                offered=len(mine),
                accepted=sum(o.outcome == "accepted" for o in mine),
                declined=sum(o.outcome == "declined" for o in mine),
                timed_out=sum(o.outcome == "timeout" for o in mine),
                resolved=len(resolve_minutes.get(mentor_id, [])),
                median_minutes_to_accept=median(accept),
                median_minutes_to_resolve=median(resolve_minutes.get(mentor_id, [])),
            )
        )
    return figures


def median(values: list[float]) -> float | None:
    """The median, rounded to a tenth; None for no values."""
    return round(float(np.median(values)), 1) if values else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def counted(n: int, thing: str, things: str | None = None) -> str:
    """`1 question`, `2 questions` (`things` when the plural is not `thing` + s)."""
    return f"{n} {thing if n == 1 else things or thing + 's'}"


def spreadsheet_cell(value):
    """A value as a spreadsheet may safely read it: text that would run as a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# -- presentation --------------------------------------------------------------------------------


def to_markdown(report: Report) -> str:
    """A report for a person: Markdown that also reads well as plain text."""
    lines = [
        f"# Moment report: {report.start:%-d %b} – {report.end:%-d %b %Y} ({report.days} days)",
        "",
        f"- Questions: **{report.questions}** from {counted(report.askers, 'person', 'people')}"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(report.by_surface.items()))})" if report.by_surface else ""),
        f"- Answered from content: **{_pct(report.answered_rate)}** "
        f"({report.answered} of {report.questions - report.errors} searched)",
        f"- Rated helpful: **{_pct(report.helpful_rate)}** ({report.helpful} of {counted(report.votes, 'vote')})",
        f"- Handed to mentors: **{report.mentor_requests}**",
    ]
    if report.errors:
        lines.append(f"- Not searched because of a system error (no index): **{report.errors}**")
    if report.median_latency_ms is not None:
        lines.append(f"- Median time to answer: {report.median_latency_ms:.0f} ms")
    lines += ["", "## Content gaps (not answered, not helpful, or handed to a mentor)", ""]
    if report.gaps:
        lines += ["| gap | asks | before | status | topic | asked as |", "|---:|---:|---:|---|---|---|"]
        for g in report.gaps:
            status = g.status + (f" ({g.owner_id})" if g.owner_id else "")
            lines.append(
                f"| {g.id} | {g.recent} | {g.previous} | {status} | {_cell(g.label)} | "
                f"{_cell('; '.join(g.examples)) or '–'} |"
            )
    else:
        lines.append("None in this period.")
    lines += ["", "## Top content", ""]
    if report.top_content:
        lines += ["| content | type | best answer | shown | helpful | not helpful |", "|---|---|---:|---:|---:|---:|"]
        for u in report.top_content:
            lines.append(
                f"| {_cell(u.title)} (`{u.path}`) | {u.type} | {u.top} | {u.shown} | {u.helpful} | {u.not_helpful} |"
            )
    else:
        lines.append("No answers in this period.")
    if report.restricted_items:
        lines.append(
            f"\n{counted(report.restricted_items, 'item')} for some user groups only also answered questions; "
            "they are not named here (see `/moment report`)."
        )
    lines += ["", "## Mentors", ""]
    if report.mentors:
        lines += [
            "| mentor | offered | accepted | declined | timed out | resolved | median min to accept | to resolve |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in report.mentors:
            lines.append(
                f"| {m.mentor_id} | {m.offered} | {m.accepted} | {m.declined} | {m.timed_out} | {m.resolved} | "
                f"{_num(m.median_minutes_to_accept)} | {_num(m.median_minutes_to_resolve)} |"
            )
    else:
        lines.append("No mentor hand-offs in this period.")
    lines += ["", "## Stale content people still reach", ""]
    if report.stale_hits:
        lines += [
            f"- {_cell(h['title'])} (`{h['path']}`): shown {counted(h['hits'], 'time')}" for h in report.stale_hits
        ]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    data = asdict(report)
    data["start"], data["end"] = report.start.isoformat(), report.end.isoformat()
    data["answered_rate"], data["helpful_rate"] = report.answered_rate, report.helpful_rate
    data["gaps"] = [g.to_dict() for g in report.gaps]
    return json.dumps(data, indent=2)


def to_csv(report: Report) -> str:
    """One table for spreadsheets: a row per day, then a row per content gap, with the same columns.

    `questions` counts the day's questions, or a gap's questions in the period; `answered`, `not_answered`,
    `errors` and the votes are the day's; `question` (its label) and `examples` are a gap's.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "date", "question", "questions", "answered", "not_answered", "errors",
                     "helpful_votes", "not_helpful_votes", "examples"])  # fmt: skip
    for d in report.per_day:
        not_answered = d["questions"] - d["answered"] - d["errors"]
        writer.writerow(["day", d["date"], "", d["questions"], d["answered"], not_answered, d["errors"],
                         d["helpful"], d["votes"] - d["helpful"], ""])  # fmt: skip
    for g in report.gaps:
        writer.writerow(map(spreadsheet_cell, ["gap", "", g.label, g.recent, "", "", "", "", "",
                                               " | ".join(g.examples)]))  # fmt: skip
    return out.getvalue()


def chart_figure(report: Report):
    """The chart as a matplotlib figure: questions per day (bars); answered rate and helpful rate per day
    (lines), each helpful point labelled with its number of votes; the legend below the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    days = [dt.date.fromisoformat(d["date"]) for d in report.per_day]
    searched = [d["questions"] - d["errors"] for d in report.per_day]
    answered = [d["answered"] / n if n else np.nan for d, n in zip(report.per_day, searched, strict=True)]
    helpful = [d["helpful"] / d["votes"] if d["votes"] else np.nan for d in report.per_day]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120, layout="constrained")
    ax.bar(days, [d["questions"] for d in report.per_day], color="#a9c8ec", label="questions")
    ax.set_ylabel("questions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top"]].set_visible(False)
    rates = ax.twinx()
    rates.plot(days, answered, color="#1f4e8c", marker="s", label="answered rate")
    rates.plot(days, helpful, color="#2e7d32", marker="o", label="helpful rate")
    for day, rate, d in zip(days, helpful, report.per_day, strict=True):
        if d["votes"]:  # a rate on one or two votes swings: say how many
            rates.annotate(counted(d["votes"], "vote"), (day, rate), xytext=(6, 5), textcoords="offset points",
                           fontsize=8, color="#2e7d32")  # fmt: skip
    rates.set_ylim(0, 1.1)
    rates.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates.set_ylabel("rate")
    rates.spines[["top"]].set_visible(False)
    ax.set_title(f"Moment per day, {report.start:%-d %b} – {report.end:%-d %b %Y}")
    fig.autofmt_xdate()
    handles = ax.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return fig


def chart_image(report: Report, fmt: str = "png") -> bytes:
    """The chart as an image file's bytes, in one of `CHART_FORMATS`."""
    import matplotlib.pyplot as plt

    if fmt not in CHART_FORMATS:
        raise ValueError(f"charts are written as {', '.join(CHART_FORMATS)}, not {fmt}")
    fig = chart_figure(report)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    plt.close(fig)
    return buffer.getvalue()


def chart_png(report: Report) -> bytes:
    """The chart as a PNG (the weekly digest's)."""
    return chart_image(report, "png")


def export_csv(database: Database, days: int | None = None, team_id: str | None = None) -> str:
    """Every interaction (optionally only the last `days`, only one workspace's), one row each, for
    spreadsheets (formula-like cells neutralised: `spreadsheet_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "created_at", "user_id", "team_id", "channel_id", "surface", "question", "answered", "outcome",
         "confidence", "latency_ms", "index_version", "top_source", "helpful_votes", "not_helpful_votes"]
    )  # fmt: skip
    query = select(Interaction).options(selectinload(Interaction.sources), selectinload(Interaction.votes))
    if days:
        query = query.where(Interaction.created_at >= utcnow() - dt.timedelta(days=days))
    if team_id:
        query = query.where(Interaction.team_id == team_id)
    with database.session() as session:
        for r in session.scalars(query.order_by(Interaction.id)):
            writer.writerow(map(spreadsheet_cell,
                [r.id, r.created_at.isoformat(), r.user_id, r.team_id or "", r.channel_id or "", r.surface, r.question,
                 int(r.answered), r.outcome, round(r.confidence, 4), round(r.latency_ms, 1), r.index_version or "",
                 r.sources[0].path if r.sources else "", sum(v.helpful for v in r.votes),
                 sum(not v.helpful for v in r.votes)]
            ))  # fmt: skip
    return out.getvalue()


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "/").split())[:160]


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"
