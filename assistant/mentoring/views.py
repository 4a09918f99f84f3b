"""What the core hands the edges: small frozen snapshots, not database rows.

The mentor hand-off's requests and offers are here; mentors (`assistant.mentoring.mentors.MentorView`),
drafts (`assistant.mentoring.drafts.DraftView`) and re-index runs (`assistant.operations.operations.RunView`)
sit beside the code that makes them, and all are made by `snapshot`. The hand-off takes its views in the
transaction that changed the request, so they say what was true when it committed. Whoever receives one needs
no database to read it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RequestView:
    """A mentor request."""

    id: int
    team_id: str
    asker_id: str
    question: str
    status: str  # searching | offered | accepted | resolved | cancelled | escalated
    owner_id: str | None = None  # the mentor who took it
    owner_name: str | None = None  # their name as a mentor (their user id when they are not one)
    channel_id: str | None = None  # where it was asked, and the thread
    thread_ts: str | None = None
    thread_note_ts: str | None = None  # the "… is helping" note in that thread
    interaction_id: int | None = None  # the answer Moment gave
    conversation_id: str | None = None  # the asker's and the mentor's conversation
    resolution: str | None = None
    tried: tuple[str, ...] = ()  # the mentors it was offered to, in order
    # What Moment showed the asker, as far as the asker and one mentor (the one offered it, or the owner) may
    # both see it, without passages when Moment did not answer; empty in a view not made for a mentor.
    shown: tuple[dict, ...] = ()


@dataclass(frozen=True)
class OfferView:
    """One offer of a request to one mentor, and where it was posted."""

    id: int
    mentor_id: str
    reason: str  # why this mentor, in one line
    channel_id: str | None = None
    message_ts: str | None = None
    offered_at: dt.datetime | None = None  # when it was made (a re-sent offer is looked up from then on)


def snapshot(view, row, **derived):
    """A `view` (a frozen dataclass) of a database `row`: each field the row's attribute of that name,
    unless `derived` gives it."""
    return view(**{f.name: derived[f.name] if f.name in derived else getattr(row, f.name) for f in fields(view)})
