"""Mentoring: vetted peer mentors, the hand-off of a question to one of them, and their answers as drafts.

`mentors` is the registry and the matching (who fits a question best, who has room); `handoff` offers a
question to one mentor at a time until someone accepts, through a `Notifier` the edge provides; `drafts`
turns a mentor's answer into content an admin approves; `views` are the plain snapshots the edges render;
`notices` name people by slot so each edge renders them its own way; `routing` is the use case the edges
call (a workspace's hand-off, seeding mentors.yml, who took a question). Knows nothing of Slack.

Public surface: `MentorRegistry`, `MentorView`, `MentorStats`, `MentorError`, `Handoff`, `HandoffSettings`,
`HandoffError`, `Notifier`, `Drafts`, `DraftView`, `RequestView`, `OfferView`, `snapshot`, `Notice`.
"""

from assistant.mentoring.drafts import Drafts, DraftView
from assistant.mentoring.handoff import Handoff, HandoffError, HandoffSettings, Notifier
from assistant.mentoring.mentors import MentorError, MentorRegistry, MentorStats, MentorView
from assistant.mentoring.notices import Notice
from assistant.mentoring.views import OfferView, RequestView, snapshot

__all__ = [
    "DraftView",
    "Drafts",
    "Handoff",
    "HandoffError",
    "HandoffSettings",
    "MentorError",
    "MentorRegistry",
    "MentorStats",
    "MentorView",
    "Notice",
    "Notifier",
    "OfferView",
    "RequestView",
    "snapshot",
]
