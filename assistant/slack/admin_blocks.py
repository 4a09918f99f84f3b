"""Block Kit for admins: status, reports, the mentor list, re-index summaries, help."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from assistant.insights import GapDetail, GapSummary
from assistant.insights.gaps import SLACK_USER_ID
from assistant.mentoring.mentors import MentorStats
from assistant.operations.operations import RunView, Status
from assistant.records.reports import Report, _pct, counted
from assistant.slack.formatting import SECTION_TEXT_LIMIT, escape, truncate

HELP = [
    ("/ask <question>", "ask Moment privately (anyone)"),
    ("/moment status", "index version and age, content by type, last re-index runs, stale content, mentors"),
    ("/moment reindex", "re-index the content folder now; posts a summary when done"),
    ("/moment report [days]", "questions, answered and helpful rates, top content, content gaps, mentors (default 7)"),
    ("/moment gaps", "content gaps: questions not answered well, grouped by topic, with owner and status"),
    (
        "/moment gaps show ID · assign ID @user · close ID [why] · reopen ID",
        "a gap's questions and history; give it to a content owner (told by DM), close it, open it again",
    ),
    ("/moment mentors", "mentors with their load and response times"),
    ("/moment mentor add @user topic, topic", "add a mentor (or set their topics); they need vetting"),
    ("/moment mentor vet @user", "vet a mentor: they start receiving questions"),
    ("/moment mentor remove @user", "remove a mentor"),
    ("/moment drafts", "job-aid drafts written by mentors, to approve or reject"),
    (
        "/moment channel add #channel [type: …] [tag: …] [folder: …] [bots: off] [mentor: on] [threshold: 0.85]",
        "answer questions in a help channel, when sure, in their thread",
    ),
    ("/moment channel list", "the help channels and their settings"),
    ("/moment channel remove #channel", "stop answering unasked questions in a channel"),
    ("/moment admin add @user · remove @user · list", "this workspace's Moment admins"),
    ("/moment generated on · off", "generated answers in this workspace, where the deployer has an LLM (on)"),
    ("/moment source list · show NAME · sync NAME · remove NAME", "content sources and their last sync"),
    ("/moment source add web NAME URL [max_pages: 500] [schedule: 60]", "sync a site (or a folder) into the content"),
    ("/moment help", "this list"),
]


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, SECTION_TEXT_LIMIT))


def _age(delta: dt.timedelta | None) -> str:
    if delta is None:
        return "unknown"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


def help_blocks() -> list[Block]:
    lines = "\n".join(f"`{cmd}`  {escape(what)}" for cmd, what in HELP)
    return [SectionBlock(text=_md(f"*Moment commands*\n{lines}"))]


def refusal_text(command: str) -> str:
    return (
        f"Sorry, `{escape(command)}` is for Moment admins. If you need it, ask a Moment admin to add you "
        "(`/moment admin add @you`). (`/ask` and `/moment help` work for everyone.)"
    )


def run_line(run: RunView) -> str:
    when = f"{run.requested_at:%-d %b %H:%M} UTC"
    who = f" by <@{run.requested_by}>" if run.requested_by and run.requested_by[0] in "UW" else ""
    if run.status in ("queued", "running"):
        return f"• {when}{who}: {run.status}"
    if run.status == "failed":
        return f"• {when}{who}: :x: failed: {escape(truncate(run.error or '', 200))}"
    r = run.report or {}
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
    failed = len(r.get("failed", []))
    mark = ":warning:" if failed else ":white_check_mark:"
    return (
        f"• {when}{who}: {mark} {len(r.get('added', []))} added, {len(r.get('changed', []))} changed, "
        f"{len(r.get('removed', []))} removed, {failed} failed, {took:.1f} s"
    )


def reindex_summary_blocks(run: RunView) -> list[Block]:
    """Posted when a re-index run ends."""
    if run.status == "failed":
        return [SectionBlock(text=_md(f":x: Re-index failed: {escape(truncate(run.error or 'unknown error', 1500))}"))]
    r = run.report or {}
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
    head = (
        f":white_check_mark: *Re-index done* in {took:.1f} s: {len(r.get('added', []))} added, "
        f"{len(r.get('changed', []))} changed, {len(r.get('removed', []))} removed, "
        f"{len(r.get('unchanged', []))} unchanged; {r.get('documents', 0)} documents, {r.get('chunks', 0)} chunks."
    )
    if not r.get("published"):
        head += " Nothing changed, so the serving version stays."
    elif r.get("version"):
        head += f" Now serving version `{r['version']}`."
    blocks: list[Block] = [SectionBlock(text=_md(head))]
    failed = r.get("failed", [])
    if failed:
        lines = "\n".join(f"• `{escape(f['path'])}`: {escape(f['reason'])}" for f in failed[:15])
        more = f"\n…and {len(failed) - 15} more" if len(failed) > 15 else ""
        blocks.append(SectionBlock(text=_md(f":warning: *{len(failed)} could not be indexed*\n{lines}{more}")))
    return blocks


def status_blocks(status: Status) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Moment status"))]
    if status.index_problem:
        blocks.append(SectionBlock(text=_md(f":x: *Index:* {escape(status.index_problem)}")))
    else:
        types = ", ".join(f"{t} {c['documents']} ({c['chunks']} chunks)" for t, c in sorted(status.by_type.items()))
        blocks.append(
            SectionBlock(
                text=_md(
                    f"*Index* `{status.index_version}`, built {_age(status.index_age)} ago: "
                    f"{status.documents} documents, {status.chunks} chunks\n{escape(types)}"
                )
            )
        )
    if status.reader_problem:
        blocks.append(
            SectionBlock(text=_md(f":warning: *Reader* {escape(status.reader)}: {escape(status.reader_problem)}"))
        )
    elif status.reader:
        blocks.append(ContextBlock(elements=[_md(f"Reader {escape(status.reader)}")]))
    if status.runs:
        blocks.append(SectionBlock(text=_md("*Last re-index runs*\n" + "\n".join(run_line(r) for r in status.runs))))
    stale = f"*Stale content:* {len(status.stale)} items past their review date"
    if status.stale:
        stale += "\n" + "\n".join(
            f"• {escape(title)} (`{escape(path)}`), due {due:%-d %b %Y}" for path, title, due in status.stale[:8]
        )
    blocks.append(SectionBlock(text=_md(stale)))
    queue = ", ".join(f"{n} {state}" for state, n in sorted(status.open_requests.items())) or "none"
    blocks.append(
        SectionBlock(
            text=_md(
                f"*Mentors:* {status.mentors_available} of {status.mentors_total} vetted mentors available now\n"
                f"*Open mentor requests:* {queue}"
            )
        )
    )
    if status.groups is not None:
        g = status.groups
        line = f"*Audiences:* {status.restricted_items} items for some user groups only; "
        if g.fresh:
            line += f"{g.groups} user groups read from Slack {_age(dt.datetime.now(dt.UTC) - g.synced_at)} ago"
        else:
            when = f"last read {_age(dt.datetime.now(dt.UTC) - g.synced_at)} ago" if g.synced_at else "never read"
            line = ":warning: " + line + f"user groups {when}, so those items are withheld from everyone"
            line += f" ({escape(g.error)})" if g.error else ""
        if g.unknown_names:
            line += "\n:warning: No user group is called " + ", ".join(f"`{escape(n)}`" for n in g.unknown_names)
            line += ": nobody sees the items for it alone."
        blocks.append(SectionBlock(text=_md(line)))
    if status.sources:
        blocks.append(SectionBlock(text=_md(source_lines(status.sources))))
    if status.xapi:
        x = status.xapi
        blocks.append(
            ContextBlock(
                elements=[_md(f"xAPI outbox: {x['queued']} queued, {x['sent']} sent, {x['rejected']} rejected")]
            )
        )
    return blocks


def source_lines(sources) -> str:
    """Each content source's last sync, items, changes, failures and next run (`/moment status`)."""
    lines = ["*Content sources*"]
    for s in sources:
        c = s.last_changes or {}
        when = f"{s.last_finished_at:%-d %b %H:%M} UTC" if s.last_finished_at else "never"
        line = f"• *{escape(s.name)}* ({s.kind}): {s.items} items; last sync {when}"
        if s.last_finished_at:
            line += f" {s.last_status}, +{c.get('added', 0)} ~{c.get('changed', 0)} -{c.get('deleted', 0)}"
            line += f", {len(s.last_failures or [])} failed"
        if s.running:
            line += "; syncing now"
        if s.last_status == "failed":
            line += f"\n   :warning: {escape(s.last_error or 'failed')}"
        line += f"; next {s.next_run_at:%-d %b %H:%M} UTC" if s.next_run_at else "; on request"
        lines.append(line)
    return "\n".join(lines)


def gaps_text(gaps: Sequence[GapSummary], shown: int = 10) -> str:
    """`/moment gaps`: the open and assigned gaps, the busiest this week first (labels and examples escaped)."""
    if not gaps:
        return "No open content gaps: every question not answered well is in a closed gap, or there were none."
    lines = [f"*Content gaps* ({len(gaps)} open or assigned; this week's busiest first):"]
    for g in gaps[:shown]:
        owner = f" → <@{g.owner_id}>" if g.owner_id else ""
        answered = f", {g.now_answered}" if g.now_answered else ""
        example = f"\n    e.g. “{escape(truncate(g.examples[0], 150))}”" if g.examples else ""
        lines.append(
            f"• *{g.id}* {escape(truncate(g.label, 120))} [{g.status}{owner}]: {g.size} asked, "
            f"{g.recent} this week ({g.trend}){answered}{example}"
        )
    if len(gaps) > shown:
        lines.append(f"…and {len(gaps) - shown} more: `moment gaps` in the shell lists them all.")
    return truncate("\n".join(lines), SECTION_TEXT_LIMIT)


def gap_text(detail: GapDetail, shown: int = 15) -> str:
    """`/moment gaps show ID`: a gap's latest questions and its history (user text escaped)."""
    g = detail.gap
    owner = f" → <@{g.owner_id}>" if g.owner_id else ""
    answered = f"; {g.now_answered}" if g.now_answered else ""
    lines = [f"*Gap {g.id}: {escape(truncate(g.label, 120))}* [{g.status}{owner}], {g.size} asked{answered}"]
    lines += [
        f"• {escape(truncate(q.question or '', 200))} ({q.reason.replace('_', ' ')})" for q in detail.questions[:shown]
    ]
    if len(detail.questions) > shown:
        lines.append(f"…and {len(detail.questions) - shown} more.")
    for e in detail.history[-5:]:
        who = f"<@{e.actor}>" if SLACK_USER_ID.match(e.actor) else escape(e.actor)
        lines.append(f"{e.at:%-d %b %H:%M} {who} {e.action}" + (f": {escape(e.detail)}" if e.detail else ""))
    return truncate("\n".join(lines), SECTION_TEXT_LIMIT)


def report_blocks(report: Report) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Moment: the last {report.days} days")),
        SectionBlock(
            text=_md(
                f"*{report.questions}* {'question' if report.questions == 1 else 'questions'} "
                f"from {counted(report.askers, 'person', 'people')} · answered from content "
                f"*{_pct(report.answered_rate)}* · rated helpful *{_pct(report.helpful_rate)}* "
                f"({counted(report.votes, 'vote')}) · {report.mentor_requests} handed to mentors"
                + (f" · {report.errors} not searched (system error: no index)" if report.errors else "")
            )
        ),
        DividerBlock(),
    ]
    if report.gaps:
        lines = []
        for g in report.gaps[:8]:
            also = f" (e.g. {escape(truncate('; '.join(g.examples), 150))})" if g.examples else ""
            owner = f", {g.status} to <@{g.owner_id}>" if g.owner_id and g.status == "assigned" else ""
            lines.append(f"• *{g.recent}×* {escape(truncate(g.label, 120))} (gap {g.id}{owner}){also}")
        blocks.append(
            SectionBlock(
                text=_md(
                    "*Content gaps*: asked, but not answered, not helpful or handed to a mentor\n" + "\n".join(lines)
                )
            )
        )
    else:
        blocks.append(SectionBlock(text=_md("*Content gaps:* none this period.")))
    if report.top_content:
        lines = [
            f"• {escape(u.title)}: best answer {u.top}×, :+1: {u.helpful} :-1: {u.not_helpful}"
            for u in report.top_content[:6]
        ]
        blocks.append(SectionBlock(text=_md("*Top content*\n" + "\n".join(lines))))
    if report.mentors:
        lines = [
            f"• <@{m.mentor_id}>: {m.accepted}/{m.offered} accepted, {m.declined} declined, {m.timed_out} timed out; "
            f"median {_mins(m.median_minutes_to_accept)} to accept, {_mins(m.median_minutes_to_resolve)} to resolve"
            for m in report.mentors[:8]
        ]
        blocks.append(SectionBlock(text=_md("*Mentors*\n" + "\n".join(lines))))
    if report.stale_hits:
        lines = [f"• {escape(h['title'])}: shown {h['hits']}×" for h in report.stale_hits[:6]]
        blocks.append(SectionBlock(text=_md("*Stale content people still reach*\n" + "\n".join(lines))))
    return blocks


def mentors_blocks(stats: Sequence[MentorStats]) -> list[Block]:
    if not stats:
        return [SectionBlock(text=_md("No mentors yet. Add one with `/moment mentor add @user topic, topic`."))]
    lines = []
    for s in stats:
        m = s.mentor
        state = (
            "paused"
            if m.paused
            else ("not vetted" if not m.vetted else ("available" if s.available_now else "off hours"))
        )
        lines.append(
            f"• <@{m.slack_id}> ({escape(', '.join(m.topics[:4]))}): {state}, load {s.load}/{m.capacity}; "
            f"{s.accepted}/{s.offered} accepted, {s.declined} declined, {s.timed_out} timed out; "
            f"median {_mins(s.median_accept_minutes)} to accept"
        )
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=f"Mentors ({len(stats)})"))]
    for start in range(0, len(lines), 12):
        blocks.append(SectionBlock(text=_md("\n".join(lines[start : start + 12]))))
    return blocks[:50]


def _mins(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} min"


def scope_text(channel, min_confidence: float) -> str:
    """One line: a help channel's settings (admin-typed names escaped)."""
    parts = []
    for label, values in (("types", channel.types), ("tags", channel.tags), ("folders", channel.folders)):
        if values:
            parts.append(f"{label} {escape(', '.join(values))}")
    scope = "; ".join(parts) or "all content"
    bots = "bots and forms answered" if channel.answer_bots else "bots and forms ignored"
    mentor = "private mentor offer when unsure" if channel.offer_mentor else "silent when unsure"
    return f"{scope} · {bots} · {mentor} · answers when confidence ≥ {min_confidence:.2f}"


def help_channels_text(channels, default_min_confidence: float) -> str:
    if not channels:
        return "No help channels yet. Add one with `/moment channel add #channel`."
    lines = ["*Help channels*"]
    for channel in channels[:50]:
        bar = channel.min_confidence if channel.min_confidence is not None else default_min_confidence
        lines.append(f"• <#{channel.channel_id}>: {scope_text(channel, bar)}")
    return "\n".join(lines)
