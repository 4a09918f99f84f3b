"""Help channels: channels where Moment answers people's questions without being asked.

Admins choose the channels and, per channel, the content scope, whether posts from bots and forms count,
whether an unconfident question gets a private mentor offer, and how confident an answer must be. Each
message that looks like a question is queued (one row per message: a redelivered event or a second
process cannot queue it twice), and one process at a time answers a channel's queue, oldest first (each
message once it has waited `SETTLE`, so that one posted before it but delivered after it still goes first), at
the pace Slack allows (a lease taken with a conditional UPDATE, so it survives a crashed process).

This module knows nothing of Slack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from assistant.db.database import Database
from assistant.db.models import HelpChannel, HelpQueueItem, utcnow

CONTENT_TYPES = ("job-aid", "procedure", "reference", "video")
MAX_QUEUE_AGE = dt.timedelta(minutes=10)  # older than this when its turn comes: the moment has passed
# A message is answered once it has been queued this long: Slack does not promise to deliver events in the
# order they were posted, nor do listener threads queue them in the order they arrive, so a question posted
# just before it may be queued just after it; waiting lets the earlier one go first (by its Slack timestamp).
SETTLE = dt.timedelta(seconds=0.5)


class HelpChannelError(Exception):
    """A setting that cannot be used; the message is for the admin."""


@dataclass
class ChannelScope:
    """What an admin chose for a channel (`None`: leave as it is, or the default for a new channel)."""

    types: list[str] | None = None
    tags: list[str] | None = None
    folders: list[str] | None = None
    answer_bots: bool | None = None
    offer_mentor: bool | None = None
    min_confidence: float | None = None
    unknown: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.unknown:
            raise HelpChannelError(f"I don't know these settings: {', '.join(self.unknown)}.")
        bad = [t for t in self.types or [] if t not in CONTENT_TYPES]
        if bad:
            raise HelpChannelError(
                f"Unknown content type {', '.join(bad)}: use {', '.join(CONTENT_TYPES)}."  # names typed by an admin
            )
        if self.min_confidence is not None and not 0.0 < self.min_confidence <= 1.0:
            raise HelpChannelError("The confidence bar is a number above 0 and at most 1, e.g. 0.85.")


class HelpChannels:
    """One workspace's help channels and their answer queues."""

    def __init__(self, database: Database, default_min_confidence: float, team_id: str) -> None:
        self.database = database
        self.default_min_confidence = default_min_confidence
        self.team_id = team_id

    # -- configuration -----------------------------------------------------------------------------

    def configure(self, channel_id: str, name: str | None, scope: ChannelScope, by: str) -> tuple[HelpChannel, bool]:
        """Add a channel or change its settings; returns it and whether it is new."""
        scope.check()
        with self.database.session() as session:
            channel = session.get(HelpChannel, (self.team_id, channel_id))
            created = channel is None
            if created:
                channel = HelpChannel(
                    team_id=self.team_id,
                    channel_id=channel_id,
                    types=[],
                    tags=[],
                    folders=[],
                    answer_bots=False,
                    offer_mentor=True,
                )
                session.add(channel)
            channel.name = name or channel.name
            channel.added_by = by if created else channel.added_by
            for attr in ("types", "tags", "folders", "answer_bots", "offer_mentor", "min_confidence"):
                value = getattr(scope, attr)
                if value is not None:
                    setattr(channel, attr, value)
            session.flush()
            return channel, created

    def remove(self, channel_id: str) -> bool:
        with self.database.session() as session:
            channel = session.get(HelpChannel, (self.team_id, channel_id))
            if channel is None:
                return False
            session.delete(channel)
            session.execute(
                update(HelpQueueItem)
                .where(*self._queue(channel_id), HelpQueueItem.status == "queued")
                .values(status="dropped", done_at=utcnow())
            )
            return True

    def get(self, channel_id: str) -> HelpChannel | None:
        with self.database.session() as session:
            return session.get(HelpChannel, (self.team_id, channel_id))

    def all(self) -> list[HelpChannel]:
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(HelpChannel)
                    .where(HelpChannel.team_id == self.team_id)
                    .order_by(HelpChannel.name, HelpChannel.channel_id)
                ).all()
            )

    def _queue(self, channel_id: str) -> tuple:
        return HelpQueueItem.team_id == self.team_id, HelpQueueItem.channel_id == channel_id

    def _channel(self, channel_id: str) -> tuple:
        return HelpChannel.team_id == self.team_id, HelpChannel.channel_id == channel_id

    def min_confidence(self, channel: HelpChannel) -> float:
        return channel.min_confidence if channel.min_confidence is not None else self.default_min_confidence

    # -- the queue -------------------------------------------------------------------------------

    def enqueue(
        self, channel_id: str, message_ts: str, user_id: str, text: str, received_at: dt.datetime | None = None
    ) -> bool:
        """Queue a message (received at `received_at`: a message spooled during an outage keeps its time);
        False when it is already queued (a redelivery, or another process)."""
        try:
            with self.database.session() as session:
                session.add(
                    HelpQueueItem(
                        channel_id=channel_id,
                        message_ts=message_ts,
                        user_id=user_id,
                        team_id=self.team_id,
                        text=text,
                        created_at=received_at or utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def claim(self, channel_id: str, holder: str, seconds: float, now: dt.datetime | None = None) -> bool:
        """Take (or extend) the right to answer the channel's queue for `seconds`."""
        now = now or utcnow()
        with self.database.session() as session:
            won = session.execute(
                update(HelpChannel)
                .where(
                    *self._channel(channel_id),
                    or_(
                        HelpChannel.drainer.is_(None),
                        HelpChannel.drainer == holder,
                        HelpChannel.drain_until < now,
                    ),
                )
                .values(drainer=holder, drain_until=now + dt.timedelta(seconds=seconds))
            ).rowcount
        return bool(won)

    def release(self, channel_id: str, holder: str) -> None:
        with self.database.session() as session:
            session.execute(
                update(HelpChannel)
                .where(*self._channel(channel_id), HelpChannel.drainer == holder)
                .values(drainer=None, drain_until=None)
            )

    def next_queued(self, channel_id: str) -> HelpQueueItem | None:
        """The oldest message still waiting in the channel (by its Slack timestamp)."""
        with self.database.session() as session:
            return session.scalars(
                select(HelpQueueItem)
                .where(*self._queue(channel_id), HelpQueueItem.status == "queued")
                .order_by(HelpQueueItem.message_ts, HelpQueueItem.id)
                .limit(1)
            ).first()

    def has_queued(self, channel_id: str) -> bool:
        return self.next_queued(channel_id) is not None

    def finish(self, item_id: int, status: str, interaction_id: int | None = None) -> None:
        with self.database.session() as session:
            session.execute(
                update(HelpQueueItem)
                .where(HelpQueueItem.id == item_id)
                .values(status=status, done_at=utcnow(), interaction_id=interaction_id)
            )

    def waiting_channels(self, now: dt.datetime | None = None) -> list[str]:
        """The workspace's channels with queued messages and nobody answering them (a process stopped
        mid-queue)."""
        return [channel for team, channel in waiting_channels(self.database, now) if team == self.team_id]


class HelpDesk:
    """Every workspace's help channels: one workspace's with its queues (`of`), and the channels waiting for an
    answer in any workspace (`waiting`)."""

    def __init__(self, database: Database, default_min_confidence: float, team: Callable[[str | None], str]) -> None:
        self.database = database
        self.default_min_confidence = default_min_confidence
        self._team = team  # the workspace a team id (None: the default one) means: `Workspaces.team`

    def of(self, team_id: str | None = None) -> HelpChannels:
        """The workspace's help channels and their answer queues."""
        return HelpChannels(self.database, self.default_min_confidence, self._team(team_id))

    def waiting(self) -> list[tuple[str, str]]:
        """(team id, channel id) of every help channel with queued messages and nobody answering them."""
        return waiting_channels(self.database)


def waiting_channels(database: Database, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """(team id, channel id) of every workspace's help channel with queued messages and nobody answering."""
    now = now or utcnow()
    with database.session() as session:
        return [
            (row.team_id, row.channel_id)
            for row in session.execute(
                select(HelpQueueItem.team_id, HelpQueueItem.channel_id)
                .join(
                    HelpChannel,
                    (HelpChannel.team_id == HelpQueueItem.team_id)
                    & (HelpChannel.channel_id == HelpQueueItem.channel_id),
                )
                .where(
                    HelpQueueItem.status == "queued",
                    or_(HelpChannel.drainer.is_(None), HelpChannel.drain_until < now),
                )
                .distinct()
            ).all()
        ]


def settling(item: HelpQueueItem, now: dt.datetime | None = None) -> float:
    """Seconds until `item` has been queued for `SETTLE` (0: its turn may come); never more than `SETTLE`,
    whatever the clock of the process that queued it says."""
    left = (item.created_at + SETTLE - (now or utcnow())).total_seconds()
    return min(SETTLE.total_seconds(), max(0.0, left))


def too_old(item: HelpQueueItem, now: dt.datetime | None = None) -> bool:
    return (now or utcnow()) - item.created_at > MAX_QUEUE_AGE
