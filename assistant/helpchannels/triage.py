"""Is a message in a help channel a question Moment should take? Rules, no language model.

People in a help channel also say thanks, chat, answer each other and post announcements. Moment takes a
message only when it reads as a request for help: a question ("how do I claim mileage?", "anyone know
the wifi password") or a problem statement ("vpn token wont work keeps saying wrong code"), of a
sensible length, not addressed to someone else, and not social chit-chat. Whatever it takes still has to
clear the channel's confidence bar before anything is posted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answering.questions import clean_slack_text

MIN_WORDS = 3
MAX_CHARS = 700  # longer posts are announcements, write-ups or discussions, not a quick question

_ADDRESSED = re.compile(r"^\s*(?:<@[UW][A-Z0-9]+(?:\|[^>]*)?>|@\w+)")  # "@sam can you …" is for Sam
_GREETING = re.compile(
    r"^(hi|hey|hello|hiya|morning|good (morning|afternoon|evening|night)|thanks?|thank you|thx|ty|cheers|"
    r"lol|haha|ok(ay)?|cool|nice|great|awesome|congrats|congratulations|welcome|bye|see (you|ya)|\+1)\b",
    re.IGNORECASE,
)
_SOCIAL = re.compile(
    r"\b(lunch|coffee|cake|birthday|drinks|pub|happy hour|weekend plans|leaving do|welcome to the team|"
    r"congrat\w*|well done|good luck|have a (good|great|nice))\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^(how|what|whats|what's|where|wheres|where's|when|who|whom|whose|which|why|can|could|would|should|"
    r"does|do|did|is|are|was|were|will|has|have|any ?one|anybody|somebody|someone|is there|are there)\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(how (do|can|should) (i|we|you)|how to|need to|trying to|looking for|where (do|can) i|"
    r"any ?one know|does any ?one|can some ?one|help (me|with)|need help)\b",
    re.IGNORECASE,
)
_PROBLEM = re.compile(
    r"\b(won'?t|wont|can'?t|cant|cannot|couldn'?t|doesn'?t|does not|isn'?t|didn'?t|not working|"
    r"stopped working|keeps? (saying|failing|asking|crashing|showing|rejecting)|fail(s|ed|ing)?|errors?|"
    r"broken|stuck|locked( out)?|unable|denied|rejected|wrong (code|password|pin)|expired|"
    r"crash(es|ed|ing)?|blank|lost|missing|issue|problem|trouble)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Triage:
    take: bool
    reason: str  # question | problem | request | too_short | too_long | addressed | chit_chat | statement


def triage(raw: str | None) -> Triage:
    """Whether to take a top-level message in a help channel (Slack mrkdwn as received)."""
    raw = raw or ""
    if _ADDRESSED.match(raw):
        return Triage(False, "addressed")
    text = " ".join(clean_slack_text(raw).split())
    words = re.findall(r"[\w']+", text)
    if len(words) < MIN_WORDS:
        return Triage(False, "too_short")
    if len(text) > MAX_CHARS:
        return Triage(False, "too_long")
    problem = bool(_PROBLEM.search(text))
    if not problem and (_SOCIAL.search(text) or (_GREETING.match(text) and len(words) < 8)):
        return Triage(False, "chit_chat")
    if "?" in text or _QUESTION_START.match(text):
        return Triage(True, "question")
    if problem:
        return Triage(True, "problem")
    if _REQUEST.search(text):
        return Triage(True, "request")
    return Triage(False, "statement")
