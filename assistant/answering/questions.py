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
_WORD = re.compile(r"[^\W\d_]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that are not English words: two or more different ones of one language, and more of
# them than of English's, mark a question written in that language (the content is in English).
_ENGLISH = _words("a an the is are was how what where when why who do does i my me to for of in on at with and or "
                  "can it you we our this that")  # fmt: skip
_OTHER_LANGUAGES = (
    _words("ich wie wo wann warum wer der das und ist nicht mein meine meinen kann ein eine einen für mit auf zu "
           "den dem bei wir muss habe kein keine auch oder noch mich mir bitte viele wieviel"),  # German
    _words("je comment est le la les une des du pour avec mon ma mes et que qui pas ne sur dans où quand pourquoi "
           "nous vous combien"),  # French
    _words("cómo como el la los las una del para con mi mis que qué y es por dónde cuándo cuántos cuántas "
           "puedo"),  # Spanish
    _words("hoe wat waar wanneer waarom ik mijn het een voor met en niet kan bij"),  # Dutch
)  # fmt: skip


@dataclass(frozen=True)
class Question:
    """A question ready to search for, and what was done to it."""

    original: str  # as received (may be huge)
    text: str  # cleaned, at most `max_chars`
    truncated: bool
    problem: str | None  # "empty" | "no_words": nothing to search for
    non_latin: bool  # mostly written in a script the (English) content does not use
    other_language: bool = False  # written in another language (non-Latin script, or German, French, ...)

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


def prepare(raw: str | None, max_chars: int = 2000, *, slack_markup: bool = True) -> Question:
    """Clean a question; never raises, whatever arrives. With `slack_markup` off (typed in a terminal)
    the text is searched as typed: `<@U123>`, `&amp;` or `:word:` are not Slack's markup there."""
    original = raw or ""
    text = clean_slack_text(original) if slack_markup else original
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
    return Question(
        original=original,
        text=text,
        truncated=truncated,
        problem=problem,
        non_latin=non_latin,
        other_language=non_latin or _in_another_language(text),
    )


def _in_another_language(text: str) -> bool:
    words = set(_WORD.findall(text.lower()))
    english = sum(w in _ENGLISH for w in words)
    other = max(sum(w in language for w in words) for language in _OTHER_LANGUAGES)
    return other >= 2 and other > english
