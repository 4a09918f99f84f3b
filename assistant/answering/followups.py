"""Follow-ups in a thread: "what about out of hours?" after "who do I call when my token is locked?".

A follow-up that leans on the thread ("what about…", "and…", "it", "that", or just a few words) is
searched together with the thread's earlier question; a follow-up that stands on its own is searched
as it is, so a new subject in an old thread is not dragged back to the old one.
"""

from __future__ import annotations

import re

from assistant.answering.questions import clean_slack_text

SHORT_WORDS = 6  # a follow-up this short needs its thread to mean anything
_CONTINUES = re.compile(
    r"^(what|how) about\b|^and\b|^also\b|^or\b|^but\b|^what if\b|^same\b|^then\b|^so\b|^ok(ay)?,? (and|so|what|how)\b",
    re.IGNORECASE,
)
_LEANS = re.compile(r"\b(it|that|this|those|these|them|there|one|same|instead|too|either)\b", re.IGNORECASE)


def needs_context(question: str) -> bool:
    """Whether a follow-up leans on what was asked before it."""
    words = re.findall(r"[\w']+", question)
    if not words:
        return False
    if len(words) <= SHORT_WORDS or _CONTINUES.search(question.strip()):
        return True
    return len(words) <= 12 and bool(_LEANS.search(question))


def with_context(question: str, previous: str | None) -> str:
    """The text to search for (as typed, Slack markup and all): the follow-up, preceded by the earlier
    question when it leans on it."""
    question = (question or "").strip()
    plain = " ".join(clean_slack_text(question).split())
    if not previous or " ".join(clean_slack_text(previous).split()) in ("", plain) or not needs_context(plain):
        return question
    return f"{previous.strip()}\n{question}"
