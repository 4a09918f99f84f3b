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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import UserGroup, UserGroupMember, UserGroupSync, utcnow
from indexer.documents import group_name

log = logging.getLogger(__name__)

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
        """True when an item with this audience may be shown (no audience: everyone)."""
        return not audience or (self.known and not self.groups.isdisjoint(audience))


def visible_to_all(audience: Sequence[str] | None, viewers: Iterable[Viewer]) -> bool:
    """True when every one of `viewers` may see an item with this audience."""
    return all(v.may_see(audience) for v in viewers)


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


class GroupDirectory:
    """The user-group cache in the database, shared by every process."""

    def __init__(self, database: Database, max_age: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.database = database
        self.max_age = max_age

    # -- reading -------------------------------------------------------------------------------

    def viewer(self, user_id: str, team_id: str | None = None, *, now: dt.datetime | None = None) -> Viewer:
        """`user_id`'s groups, or an unknown viewer when the cache is missing or stale (fail closed).
        `team_id` None: the workspace most recently read (a single-workspace install)."""
        now = now or utcnow()
        try:
            with self.database.session() as session:
                sync = self._sync(session, team_id)
                if sync is None or sync.synced_at is None:
                    why = "the user groups have not been read from Slack yet"
                    if sync is not None and sync.error:
                        why += f" ({sync.error})"
                    return Viewer.unknown(user_id, why)
                if now - sync.synced_at > self.max_age:
                    return Viewer.unknown(
                        user_id,
                        f"the user groups were last read from Slack at {sync.synced_at:%Y-%m-%d %H:%M} UTC"
                        + (f" ({sync.error})" if sync.error else ""),
                    )
                rows = session.execute(
                    select(UserGroup.group_id, UserGroup.handle)
                    .join(
                        UserGroupMember,
                        (UserGroupMember.team_id == UserGroup.team_id)
                        & (UserGroupMember.group_id == UserGroup.group_id),
                    )
                    .where(UserGroupMember.user_id == user_id, UserGroup.team_id == sync.team_id)
                ).all()
        except DatabaseUnavailableError as exc:
            return Viewer.unknown(user_id, str(exc))
        groups = frozenset().union(*(UserGroupInfo(g, h).names for g, h in rows)) if rows else frozenset()
        return Viewer(user_id, groups)

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
        for attempt in range(3):
            try:
                with self.database.session() as session:
                    write(session)
                return
            except IntegrityError:
                if attempt == 2:
                    raise
