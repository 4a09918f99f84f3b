"""Turn what a person typed (often Slack mrkdwn) into a question worth searching for.

Slack wraps mentions and links in angle brackets: `<@U123>`, `<#C123|general>`, `<https://x|label>`,
`<!here>`. The bot's own mention is noise; a channel name or a link label may be meaningful words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_USER = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#C[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(?:here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|[^>]*)?>|<![^>]*>")
_EMOJI_CODE = re.compile(r":[a-z0-9_+\-]+:")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}


@dataclass(frozen=True)
class Question:
    """A question ready to search for, and what was done to it."""

    original: str  # as received (may be huge)
    text: str  # cleaned, at most `max_chars`
    truncated: bool
    problem: str | None  # "empty" | "no_words": nothing to search for
    non_latin: bool  # mostly written in a script the (English) content does not use

    @property
    def searchable(self) -> bool:
        return self.problem is None


def clean_slack_text(text: str) -> str:
    """Slack mrkdwn to plain words: mentions dropped, channel names and link labels kept."""
    text = _USER.sub(" ", text)
    text = _SPECIAL.sub(" ", text)
    text = _CHANNEL.sub(lambda m: f" #{m.group(1)} " if m.group(1) else " ", text)
    text = _LINK.sub(lambda m: f" {m.group(2) or m.group(1)} ", text)
    text = _EMOJI_CODE.sub(" ", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def prepare(raw: str | None, max_chars: int = 2000) -> Question:
    """Clean a question; never raises, whatever arrives."""
    original = raw or ""
    text = clean_slack_text(original)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    truncated = len(text) > max_chars
    if truncated:
        cut = text[:max_chars]
        text = cut[: cut.rfind(" ")] if " " in cut[max_chars // 2 :] else cut
    letters = [ch for ch in text if ch.isalpha()]
    problem = None
    if not text:
        problem = "empty"
    elif not any(ch.isalnum() for ch in text):
        problem = "no_words"
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    non_latin = bool(letters) and latin / len(letters) < 0.5
    return Question(original=original, text=text, truncated=truncated, problem=problem, non_latin=non_latin)
