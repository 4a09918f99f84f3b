"""Questions as people type them in Slack, made from the handbooks' well-formed ones.

The reader's training questions are the handbooks' FAQ headings: 57% start "How do I", all are
capitalised and end in "?". People in the middle of their work type "reset vpn token", "whats the
mileage rate" or "laptop broke on site". `casual` rewrites a training question into one of those
styles, so that the reader meets them in training (`TrainConfig.casual`); the validation groups keep
the authors' questions.

    casual("How do I reset my VPN token?", random.Random(1))  ->  e.g. "reset my vpn token"
"""

from __future__ import annotations

import random
import re

_PRONOUN = r"(?:i|we|you|they|one)"
# A question's opening words that people leave out (matched after `plain`: lower case, no apostrophes).
_LEAD = re.compile(
    rf"^(?:how (?:do|can|should|would|will|could|may|shall) {_PRONOUN}|how to|how (?:does|do|is|are)"
    rf"|what (?:is|are|does|do|should|will|can|happens)(?: {_PRONOUN})?(?: if)?|what if|whats"
    rf"|where (?:do|can|should|is|are|will) ?{_PRONOUN}?|when (?:do|should|can|is|are|will) ?{_PRONOUN}?"
    rf"|who (?:do|can|should|is|are|will) ?{_PRONOUN}?|why (?:do|does|is|are|cant) ?{_PRONOUN}?"
    rf"|(?:can|could|do|should|will|may|must) {_PRONOUN}|does|is there|are there|is it|if {_PRONOUN})\b\s*"
)
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")
_HOW_I = re.compile(rf"^how (?:do|can|should) {_PRONOUN}\s+")

STYLES = ("plain", "keywords", "need")


def plain(question: str) -> str:
    """Lower case, no apostrophes, no closing question mark or full stop: "whats the rate"."""
    text = question.replace("\u2019", "'").replace("'", "").lower()
    return re.sub(r"[?.!\s]+$", "", " ".join(text.split()))


def keywords(question: str) -> str:
    """The question without its opening words: "How do I reset my VPN token?" -> "reset my vpn token"."""
    text = plain(question)
    rest = _ARTICLE.sub("", _LEAD.sub("", text, count=1))
    return rest if len(rest.split()) >= 2 else text


def need(question: str, rng: random.Random) -> str:
    """A "how do I" question as a need ("need to reset my vpn token"), others as keywords."""
    text = plain(question)
    match = _HOW_I.match(text)
    if not match:
        return keywords(question)
    rest = text[match.end() :]
    return rng.choice(("need to {}", "trying to {}", "i want to {}", "{} how", "cant {}")).format(rest)


def casual(question: str, rng: random.Random) -> str:
    """`question` in one of `STYLES`, chosen by `rng`."""
    style = rng.choice(STYLES)
    if style == "plain":
        return plain(question)
    if style == "keywords":
        return keywords(question)
    return need(question, rng)
