"""Answers as plain text, for the terminal."""

from __future__ import annotations

import textwrap

from assistant.answering.answers import Answer, Source
from assistant.answering.outline import outline_label
from assistant.answering.verified import verified_label


def _when(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def _source_lines(source: Source, with_snippet: bool) -> list[str]:
    where = " › ".join(source.heading_path)
    if source.start_seconds is not None:
        where = f"at {_when(source.start_seconds)}"
    elif source.page is not None and not where:
        where = f"page {source.page}"
    head = f"{source.type_label}: {source.title}" + (f" › {where}" if where else "")
    lines = [head]
    if with_snippet and source.snippet:
        lines += [textwrap.indent(textwrap.fill(part, 96), "    ") for part in source.snippet.split("\n")]
    facts = [source.url or source.path]
    if source.owner:
        facts.append(f"owner {source.owner}")
    if source.reviewed:
        facts.append(f"reviewed {source.reviewed.isoformat()}")
    if source.stale:
        facts.append(f"PAST ITS REVIEW DATE ({source.review_due.isoformat()})")
    lines.append("    " + " · ".join(facts))
    return lines


def render_answer(answer: Answer) -> str:
    """What `moment ask` prints."""
    out: list[str] = []
    out.extend(f"Note: {n}" for n in answer.notices)
    if answer.outcome in ("empty", "no_words"):
        out.append('Ask a question in words, for example: moment ask "how do I reset my VPN token"')
        return "\n".join(out)
    if answer.answered and answer.generated:
        generated = answer.generated
        own = next((s for s in answer.sources if s.path == generated.path), None)
        more = [s for s in answer.sources if s is not own]
        where = " › ".join([generated.title, *generated.heading_path])
        out.append(f"Generated answer (confidence {answer.confidence:.2f}; from {where}; check the quoted passage):")
        out.append(textwrap.indent(textwrap.fill(generated.text, 96), "  "))
        out.extend(textwrap.indent(textwrap.fill(f"“{q}”", 94), "    ") for q in generated.quotes)
        out.append(f"    {generated.url or generated.path} · model {generated.model}")
    elif answer.answered:
        best, *more = answer.sources
        if answer.verified:
            out.append(f"{verified_label(answer.verified)}:")
        else:
            out.append(f"Answer (confidence {answer.confidence:.2f}):")
        out.extend("  " + line for line in _source_lines(best, with_snippet=True))
        if answer.outline:
            out.append("More on this page:")
            out.extend(f"  {outline_label(entry)}  {entry.url or best.path}" for entry in answer.outline)
    if answer.answered:
        if more:
            out.append("Also see:")
            for source in more:
                out.extend("  " + line for line in _source_lines(source, with_snippet=False))
    else:
        out.append(f"I don't have a vetted answer for that yet (confidence {answer.confidence:.2f}).")
        if answer.sources:
            out.append("Possibly related:")
            for source in answer.sources:
                out.extend("  " + line for line in _source_lines(source, with_snippet=False))
        out.append('A peer mentor can help: in Slack, choose "Ask a mentor".')
    if answer.course:
        from assistant.learning.suggestions import suggestion_sentence

        out.append("")
        out.append(suggestion_sentence(answer.course) + f"\n  {answer.course['url']}")
    return "\n".join(out)
