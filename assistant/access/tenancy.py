"""Workspaces: whose a record is, who administers a workspace, which content it sees. Knows nothing of Slack.

Every record that belongs to a workspace carries its team id (`team_id`), and every question, report,
setting and list is read within one workspace. In single-token mode (SLACK_BOT_TOKEN) there is one
workspace, `MOMENT_DEFAULT_TEAM_ID` (`default` when unset); with OAuth installs each Slack workspace is
its own, keyed by the team id Slack gives it (an Enterprise Grid org's workspaces each separately, with
the org's enterprise id beside it).

Content is shared by every workspace, except that a workspace may be given a folder of its own
(`moment workspace content TEAM FOLDER`): it is then answered from that folder of the content only, and
no other workspace is answered from it. A content source that belongs to a workspace (`moment source add
… --workspace TEAM`, or added with `/moment source add` there) is the same: its items (`NAME/…` in the
index) answer in that workspace and in no other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from assistant.db.models import ContentSource, Workspace, utcnow
from assistant.settings import DEFAULT_TEAM  # (kept light: settings must not import the database)

if TYPE_CHECKING:
    from assistant.db.database import Database

log = logging.getLogger(__name__)

NOTHING = ("\0",)  # a path prefix no path has: nothing is allowed
SCOPE_SECONDS = 30.0  # how long the workspaces' content folders are read from memory


@dataclass(frozen=True)
class ContentScope:
    """Which part of the shared content a workspace is answered from: under `include` (every folder when
    empty), never under `exclude` (other workspaces' own folders)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = field(default_factory=tuple)

    def allows(self, path: str) -> bool:
        if self.include and not path.startswith(self.include):
            return False
        return not path.startswith(self.exclude) if self.exclude else True

    @property
    def everything(self) -> bool:
        return not self.include and not self.exclude

    def within(self, folders) -> ContentScope:
        """This scope, narrowed to `folders` (a help channel's); an empty `folders` narrows nothing."""
        wanted = tuple(p for p in (folder_prefix(f) for f in folders) if p)
        if not wanted:
            return self
        # A wanted folder inside the scope's own folders, or the scope's own folder inside a wanted one.
        include = tuple(w for w in wanted if self.allows(w)) + tuple(
            own for own in self.include if own.startswith(wanted)
        )
        return ContentScope(include=include or NOTHING, exclude=self.exclude)


def folder_prefix(folder: str) -> str:
    """`it/`, `/it`, `it` -> `it/` (a path prefix inside the content folder); "" for the root."""
    folder = folder.strip().strip("/")
    return folder + "/" if folder else ""


class WorkspaceError(Exception):
    """A workspace setting was refused; the message says why."""


def content_folder_of(content_dir: Path, folder: str) -> str:
    """FOLDER (of `moment workspace content TEAM FOLDER`) as a path prefix inside `content_dir`; a folder
    outside it (absolute, `..`, or a link leading out), the content folder itself or no folder at all is
    refused with `WorkspaceError`."""
    root = content_dir.resolve()
    target = (content_dir / folder).resolve()
    if Path(folder).is_absolute() or root not in target.parents:
        raise WorkspaceError(
            f"{folder} is not a folder inside the content folder {content_dir}: give a folder relative to it "
            "(e.g. acme/), or no folder for the shared content."
        )
    if not target.is_dir():
        raise WorkspaceError(f"{content_dir / folder} is not a folder of the content.")
    return folder_prefix(target.relative_to(root).as_posix())


def install_state(workspace: Workspace, default_team_id: str = DEFAULT_TEAM) -> str:
    """How a workspace stands: installed, uninstalled (when), or never installed (a row made by an admin's
    setting, e.g. a content folder given before the install)."""
    if workspace.uninstalled_at:
        return f"uninstalled {workspace.uninstalled_at:%Y-%m-%d}"
    if workspace.installed_at:
        return "installed"
    if workspace.team_id == default_team_id:
        return "the single-token workspace (MOMENT_DEFAULT_TEAM_ID)"
    return "not installed"


class Workspaces:
    """The workspaces Moment serves (the `workspaces` table): installs, admins, own content folders."""

    def __init__(self, database: Database, default_team_id: str = DEFAULT_TEAM) -> None:
        self.database = database
        self.default_team_id = default_team_id
        self._folders_cache: tuple[float, dict[str, str]] = (-SCOPE_SECONDS, {})
        self._sources_owned: dict[str, str] = {}  # a workspace's own source's items' prefix -> its team id
        self._generation_off: tuple[float, frozenset[str]] = (-SCOPE_SECONDS, frozenset())

    def team(self, team_id: str | None) -> str:
        """The workspace records are kept under: `team_id`, or the default workspace."""
        return team_id or self.default_team_id

    def get(self, team_id: str) -> Workspace | None:
        with self.database.session() as session:
            return session.get(Workspace, team_id)

    def all(self) -> list[Workspace]:
        with self.database.session() as session:
            return list(session.scalars(select(Workspace).order_by(Workspace.team_id)).all())

    def installed(self, team_id: str, enterprise_id: str | None, name: str | None, by: str | None) -> Workspace:
        """Record an install (or a re-install). Whoever installs a workspace is one of its admins."""
        with self.database.session() as session:
            workspace = session.get(Workspace, team_id) or Workspace(team_id=team_id, admins=[])
            workspace.enterprise_id, workspace.name = enterprise_id, name or workspace.name
            workspace.installed_by, workspace.installed_at, workspace.uninstalled_at = by, utcnow(), None
            if by and by not in workspace.admins:
                workspace.admins = [*workspace.admins, by]
            session.add(workspace)
            return workspace

    def uninstalled(self, team_id: str) -> None:
        """The workspace removed Moment: its records stay (and follow MOMENT_RETENTION_DAYS)."""
        with self.database.session() as session:
            workspace = session.get(Workspace, team_id) or Workspace(team_id=team_id, admins=[])
            workspace.uninstalled_at = utcnow()
            session.add(workspace)

    def admins(self, team_id: str) -> set[str]:
        """The workspace's own admins (besides MOMENT_ADMINS, who administer every workspace)."""
        workspace = self.get(team_id)
        return set(workspace.admins) if workspace else set()

    def is_named_admin(self, user_id: str, team_id: str, everywhere) -> bool:
        """Whether `user_id` administers `team_id` by name: in `everywhere` (MOMENT_ADMINS) or one of the
        workspace's own admins. (Slack's admin user group, MOMENT_ADMIN_USERGROUP, is read by the edges.)"""
        return user_id in everywhere or user_id in self.admins(team_id)

    def set_admin(self, team_id: str, user_id: str, admin: bool) -> bool:
        """Make `user_id` an admin of the workspace (or not); False when nothing changed."""
        with self.database.session() as session:
            workspace = session.get(Workspace, team_id) or Workspace(team_id=team_id, admins=[])
            if (user_id in workspace.admins) == admin:
                return False
            others = [a for a in workspace.admins if a != user_id]
            workspace.admins = [*others, user_id] if admin else others
            session.add(workspace)
            return True

    def set_content_folder(self, team_id: str, folder: str | None) -> Workspace:
        """Answer the workspace from `folder` of the content only (None: from the shared content again).
        A folder can be one workspace's only, and not inside another's."""
        prefix = folder_prefix(folder or "")
        with self.database.session() as session:
            if prefix:
                for other in session.scalars(select(Workspace).where(Workspace.team_id != team_id)):
                    theirs = folder_prefix(other.content_folder or "")
                    if theirs and (prefix.startswith(theirs) or theirs.startswith(prefix)):
                        raise WorkspaceError(f"{prefix} overlaps {other.team_id}'s own folder {theirs}.")
            workspace = session.get(Workspace, team_id) or Workspace(team_id=team_id, admins=[])
            workspace.content_folder = prefix or None
            session.add(workspace)
        self._folders_cache = (-SCOPE_SECONDS, {})
        return workspace

    def set_generated_answers(self, team_id: str, on: bool) -> bool:
        """Show generated answers in the workspace (where the deployer has an LLM) or not; False when nothing
        changed. Web processes follow within `SCOPE_SECONDS`."""
        with self.database.session() as session:
            workspace = session.get(Workspace, team_id) or Workspace(team_id=team_id, admins=[])
            if (workspace.generated_answers is not False) == on:
                return False
            workspace.generated_answers = None if on else False
            session.add(workspace)
        self._generation_off = (-SCOPE_SECONDS, frozenset())
        return True

    def generated_answers(self, team_id: str) -> bool:
        """Whether the workspace shows generated answers (unless switched off, it does). Read at most every
        `SCOPE_SECONDS`; while the database is down, the last reading holds."""
        from assistant.db.database import DatabaseUnavailableError

        read_at, off = self._generation_off
        if time.monotonic() - read_at >= SCOPE_SECONDS:
            try:
                with self.database.session() as session:
                    off = frozenset(
                        session.scalars(select(Workspace.team_id).where(Workspace.generated_answers.is_(False))).all()
                    )
            except DatabaseUnavailableError as exc:
                log.warning("workspace generated-answer switches not read (%s): using the last ones read", exc)
            self._generation_off = (time.monotonic(), off)
        return team_id not in off

    def content_scope(self, team_id: str) -> ContentScope:
        """What `team_id` is answered from: its own folder, or the shared content without others' folders.
        The folders are read at most every `SCOPE_SECONDS` (every question needs them); while the database
        is down the last ones read hold (with OAuth installs nothing is answered then anyway: Bolt finds
        no token)."""
        folders = self._folders()
        mine = tuple(sorted(p for p, owner in self._sources_owned.items() if owner == team_id))
        theirs = [p for p, owner in self._sources_owned.items() if owner != team_id]
        own = folders.get(team_id)
        if own:
            return ContentScope(include=(own, *mine))
        return ContentScope(exclude=tuple(sorted([f for t, f in folders.items() if t != team_id] + theirs)))

    def _folders(self) -> dict[str, str]:
        from assistant.db.database import DatabaseUnavailableError

        read_at, folders = self._folders_cache
        if time.monotonic() - read_at < SCOPE_SECONDS:
            return folders
        try:
            with self.database.session() as session:
                folders = dict(
                    session.execute(
                        select(Workspace.team_id, Workspace.content_folder).where(Workspace.content_folder.is_not(None))
                    ).all()
                )
                owned = session.execute(
                    select(ContentSource.name, ContentSource.team_id).where(ContentSource.team_id.is_not(None))
                ).all()
                self._sources_owned = {folder_prefix(name): team for name, team in owned}
        except DatabaseUnavailableError as exc:
            log.warning("workspace content folders not read (%s): using the last ones read", exc)
        # (after a failure too: the next try is in SCOPE_SECONDS, not at every question)
        self._folders_cache = (time.monotonic(), folders)
        return folders
