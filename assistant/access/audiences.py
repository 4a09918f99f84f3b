"""Who may see what: content audiences and the Slack user groups people are in.

An item of content may declare `audience: [managers, people-ops]` (user group handles or ids; see
`indexer.sources.parse_audience`). Only members of one of those groups may see it, anywhere: as an answer,
in *Also see*, in their App Home history, in what a mentor is shown, in reports read by non-admins.

The core sees a person's groups as plain data, a `Viewer`. Memberships are cached in the database
(`GroupDirectory`: tables `usergroups`, `usergroup_members`, `usergroup_syncs`), so every process reads the
same cache; the Slack layer fills it (`assistant/slack/usergroups.py`: `usergroups.list` and
`usergroups.users.list`, on a schedule in the worker, on `subteam_*` events, and when a question finds the
cache stale). The rule is to fail closed: when memberships are unknown (never read, or older than
`MOMENT_AUDIENCE_MAX_AGE_MINUTES` because Slack could not be asked), restricted items are withheld.

    directory = GroupDirectory(database, max_age=dt.timedelta(hours=1))
    viewer = directory.viewer("U123", team_id="T1")
    viewer.may_see(("managers",))     # True only for a member of @managers, with a fresh cache
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import TTLCache
from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import UserGroup, UserGroupMember, UserGroupSync, utcnow
from indexer.documents import group_name

log = logging.getLogger(__name__)

# How long a process keeps a person's groups before reading them from the database again. A change written
# by this process (a subteam_* event it handled, a refresh) is seen at once; one written by another process
# (the worker, another web worker) reaches this one at most this late.
VIEWER_CACHE_SECONDS = 5.0
MAX_CACHED_VIEWERS = 10_000

# What the asker reads when restricted items were left out because their groups could not be checked.
WITHHELD_NOTICE = (
    "Some content is only for certain Slack user groups, and I couldn't check yours just now, "
    "so I left it out of this answer."
)


@dataclass(frozen=True)
class Viewer:
    """Whoever will see an answer, as far as audiences go: the user groups they are in (ids and handles).

    `known` is False when their groups could not be learnt: they then see only items for everyone."""

    user_id: str | None
    groups: frozenset[str] = frozenset()
    known: bool = True
    why_unknown: str | None = None

    @classmethod
    def public(cls) -> Viewer:
        """Anyone at all (an answer posted in a channel): only items with no audience."""
        return cls(None)

    @classmethod
    def unknown(cls, user_id: str | None, why: str) -> Viewer:
        return cls(user_id, frozenset(), False, why)

    def may_see(self, audience: Sequence[str] | None) -> bool:
        """True when an item with this audience may be shown (no audience: everyone; a person named by their
        user id sees it whatever their groups)."""
        if not audience or (self.user_id is not None and self.user_id in audience):
            return True
        return self.known and not self.groups.isdisjoint(audience)


def visible_to_all(audience: Sequence[str] | None, viewers: Iterable[Viewer]) -> bool:
    """True when every one of `viewers` may see an item with this audience."""
    return all(v.may_see(audience) for v in viewers)


def inherited_audience(audiences: Iterable[Sequence[str] | None]) -> list[str]:
    """The audience of something written from items with these audiences (a mentor's answer to a question
    answered from them), best ranked first: none when every item is for everyone; else the groups every
    restricted item shares, or, when they share none, the best ranked restricted item's (an audience can
    only say "any of these groups"; the draft review shows it, for the admin to change)."""
    restricted = [tuple(a) for a in audiences if a]
    if not restricted:
        return []
    common = set(restricted[0]).intersection(*restricted[1:])
    return [g for g in restricted[0] if g in common] or list(restricted[0])


@dataclass(frozen=True)
class UserGroupInfo:
    """A Slack user group as read from Slack; `members` is None when they were not read."""

    group_id: str
    handle: str
    name: str = ""
    members: frozenset[str] | None = None

    @property
    def names(self) -> frozenset[str]:
        """How content may name it: its id and its handle (normalised like content's `audience`)."""
        return frozenset(n for n in (self.group_id, group_name(self.handle or "")) if n)


@dataclass
class SyncStatus:
    """How fresh the group cache is (`/moment status`)."""

    synced_at: dt.datetime | None
    attempted_at: dt.datetime | None
    error: str | None
    groups: int
    fresh: bool
    unknown_names: list[str] = field(default_factory=list)  # audiences naming no group Slack knows


class GroupSource(Protocol):
    """Where memberships come from (the Slack layer's `SlackUserGroups`)."""

    def refresh(self, team_id: str | None = None) -> bool:
        """Read every group again into the directory; False (and the cache untouched) when Slack could not
        be asked."""


def _viewer_query(latest: bool):
    """The sync row of a workspace (`:team_id`, or `latest`: the one read most recently) with the groups
    `:user_id` is in there (none: one row of NULLs)."""
    sync, member, group = UserGroupSync.__table__, UserGroupMember.__table__, UserGroup.__table__
    if latest:
        newest = select(sync.c.team_id).order_by(sync.c.synced_at.desc().nulls_last()).limit(1)
        which = sync.c.team_id == newest.scalar_subquery()
    else:
        which = sync.c.team_id == bindparam("team_id")
    joined = sync.outerjoin(
        member, (member.c.team_id == sync.c.team_id) & (member.c.user_id == bindparam("user_id"))
    ).outerjoin(group, (group.c.team_id == member.c.team_id) & (group.c.group_id == member.c.group_id))
    return select(sync.c.synced_at, sync.c.error, group.c.group_id, group.c.handle).select_from(joined).where(which)


_VIEWER_QUERIES = {False: _viewer_query(False), True: _viewer_query(True)}


class GroupDirectory:
    """The user-group cache in the database, shared by every process."""

    def __init__(
        self,
        database: Database,
        max_age: dt.timedelta = dt.timedelta(hours=1),
        cache_seconds: float = VIEWER_CACHE_SECONDS,
    ) -> None:
        self.database = database
        self.max_age = max_age
        self.cache_seconds = cache_seconds
        # (team, user) -> (their viewer, the cache's synced_at then), each kept `cache_seconds`
        self._cache: TTLCache[tuple[str | None, str], tuple[Viewer, dt.datetime | None]] = TTLCache(
            maxsize=MAX_CACHED_VIEWERS, ttl=cache_seconds or 1.0, timer=time.monotonic
        )
        self._cache_lock = threading.Lock()
        self._generation = 0  # counts writes through this directory: a read that spans one is not kept

    # -- reading -------------------------------------------------------------------------------

    def viewer(self, user_id: str, team_id: str | None = None, *, now: dt.datetime | None = None) -> Viewer:
        """`user_id`'s groups, or an unknown viewer when the cache is missing or stale (fail closed).
        `team_id` None: the workspace most recently read (a single-workspace install).

        Kept in this process for `cache_seconds` (one read from the database per person and workspace in
        that time, not one per question); a write through this directory (an event this process handled, a
        refresh it made) forgets them at once, and one made by another process is seen here at most
        `cache_seconds` later."""
        key = (team_id, user_id)
        if now is None and self.cache_seconds > 0:
            with self._cache_lock:
                cached = self._cache.get(key)
            if cached is not None:
                viewer, synced_at = cached
                if not viewer.known or utcnow() - synced_at <= self.max_age:
                    return viewer
        generation = self._generation
        viewer, synced_at = self._read_viewer(user_id, team_id, now or utcnow())
        if now is None and self.cache_seconds > 0:
            with self._cache_lock:
                if generation == self._generation:  # nothing was written meanwhile: what was read still holds
                    self._cache[key] = (viewer, synced_at)
        return viewer

    def forget_viewers(self) -> None:
        """Read everyone's groups from the database again at their next question (something changed)."""
        with self._cache_lock:
            self._generation += 1
            self._cache.clear()

    def _read_viewer(self, user_id: str, team_id: str | None, now: dt.datetime) -> tuple[Viewer, dt.datetime | None]:
        """One query (built once, `_VIEWER_QUERIES`): the workspace's sync row and the person's groups."""
        query = _VIEWER_QUERIES[team_id is None]
        try:
            rows = self.database.read(query, {"user_id": user_id, "team_id": team_id})
        except DatabaseUnavailableError as exc:
            return Viewer.unknown(user_id, str(exc)), None
        synced_at, error = (rows[0][0], rows[0][1]) if rows else (None, None)
        if synced_at is None:
            why = "the user groups have not been read from Slack yet"
            if error:
                why += f" ({error})"
            return Viewer.unknown(user_id, why), None
        if now - synced_at > self.max_age:
            return Viewer.unknown(
                user_id,
                f"the user groups were last read from Slack at {synced_at:%Y-%m-%d %H:%M} UTC"
                + (f" ({error})" if error else ""),
            ), synced_at
        names = [UserGroupInfo(g, h).names for _, _, g, h in rows if g is not None]
        return Viewer(user_id, frozenset().union(*names) if names else frozenset()), synced_at

    def status(self, team_id: str | None = None, named: Iterable[str] = (), *, now=None) -> SyncStatus:
        """The cache's freshness, and which of the audience names in `named` no group has."""
        now = now or utcnow()
        with self.database.session() as session:
            sync = self._sync(session, team_id)
            groups = []
            if sync is not None:
                groups = session.execute(
                    select(UserGroup.group_id, UserGroup.handle).where(UserGroup.team_id == sync.team_id)
                ).all()
        known = frozenset().union(*(UserGroupInfo(g, h).names for g, h in groups)) if groups else frozenset()
        synced = sync.synced_at if sync else None
        return SyncStatus(
            synced_at=synced,
            attempted_at=sync.attempted_at if sync else None,
            error=sync.error if sync else None,
            groups=len(groups),
            fresh=synced is not None and now - synced <= self.max_age,
            unknown_names=sorted(set(named) - known) if synced else [],
        )

    def group(self, team_id: str, group_id: str) -> UserGroupInfo | None:
        """A cached group (without its members), or None."""
        with self.database.session() as session:
            row = session.get(UserGroup, (team_id, group_id))
            return UserGroupInfo(row.group_id, row.handle, row.name) if row else None

    def is_fresh(self, team_id: str | None = None, *, now: dt.datetime | None = None) -> bool:
        return self.status(team_id, now=now).fresh

    @staticmethod
    def _sync(session, team_id: str | None) -> UserGroupSync | None:
        query = select(UserGroupSync)
        if team_id is not None:
            query = query.where(UserGroupSync.team_id == team_id)
        return session.scalars(query.order_by(UserGroupSync.synced_at.desc().nulls_last()).limit(1)).first()

    # -- writing (the Slack layer) ----------------------------------------------------------------

    def replace(self, team_id: str, groups: Sequence[UserGroupInfo], *, now: dt.datetime | None = None) -> None:
        """Everything read from Slack for a workspace: replaces its cached groups and members at once."""
        now = now or utcnow()

        def write(session) -> None:
            session.execute(delete(UserGroupMember).where(UserGroupMember.team_id == team_id))
            session.execute(delete(UserGroup).where(UserGroup.team_id == team_id))
            session.flush()
            for group in groups:
                session.add(UserGroup(team_id=team_id, group_id=group.group_id, handle=group.handle, name=group.name))
                for user in sorted(group.members or ()):
                    session.add(UserGroupMember(team_id=team_id, group_id=group.group_id, user_id=user))
            self._mark(session, team_id, now, None, synced=True)

        self._write(write)

    def update_group(self, team_id: str, group: UserGroupInfo) -> None:
        """One group changed (renamed, or its members): its row, and its members when they were read."""

        def write(session) -> None:
            row = session.get(UserGroup, (team_id, group.group_id))
            if row is None:
                session.add(UserGroup(team_id=team_id, group_id=group.group_id, handle=group.handle, name=group.name))
            else:
                row.handle, row.name = group.handle or row.handle, group.name or row.name
            if group.members is not None:
                session.execute(
                    delete(UserGroupMember).where(
                        UserGroupMember.team_id == team_id, UserGroupMember.group_id == group.group_id
                    )
                )
                session.flush()
                for user in sorted(group.members):
                    session.add(UserGroupMember(team_id=team_id, group_id=group.group_id, user_id=user))

        self._write(write)

    def change_members(self, team_id: str, group_id: str, added: Iterable[str], removed: Iterable[str]) -> None:
        """Apply a membership change Slack announced (when the group could not be read again)."""

        def write(session) -> None:
            if session.get(UserGroup, (team_id, group_id)) is None:
                return  # a group we never read: the next full read brings it
            gone = set(removed)
            if gone:
                session.execute(
                    delete(UserGroupMember).where(
                        UserGroupMember.team_id == team_id,
                        UserGroupMember.group_id == group_id,
                        UserGroupMember.user_id.in_(gone),
                    )
                )
            for user in sorted(set(added) - gone):
                if session.get(UserGroupMember, (team_id, group_id, user)) is None:
                    session.add(UserGroupMember(team_id=team_id, group_id=group_id, user_id=user))

        self._write(write)

    def remove_group(self, team_id: str, group_id: str) -> None:
        """A group deleted or disabled in Slack: nobody is in it any more."""

        def write(session) -> None:
            session.execute(
                delete(UserGroupMember).where(UserGroupMember.team_id == team_id, UserGroupMember.group_id == group_id)
            )
            session.execute(delete(UserGroup).where(UserGroup.team_id == team_id, UserGroup.group_id == group_id))

        self._write(write)

    def failed(self, team_id: str, error: str, *, now: dt.datetime | None = None) -> None:
        """Slack could not be asked: the cache stays as it was, and ages."""
        self._write(lambda session: self._mark(session, team_id, now or utcnow(), error[:500], synced=False))

    @staticmethod
    def _mark(session, team_id: str, now: dt.datetime, error: str | None, *, synced: bool) -> None:
        row = session.get(UserGroupSync, team_id)
        if row is None:
            row = UserGroupSync(team_id=team_id)
            session.add(row)
        row.attempted_at = now
        row.error = error
        if synced:
            row.synced_at = now

    def _write(self, write) -> None:
        # Two processes writing the same workspace at once (an event and the worker's refresh): one wins the
        # primary keys, the other tries again on top of it.
        self.forget_viewers()
        try:
            for attempt in range(3):
                try:
                    with self.database.session() as session:
                        write(session)
                    return
                except IntegrityError:
                    if attempt == 2:
                        raise
        finally:
            self.forget_viewers()  # also any viewer read while the write was under way
