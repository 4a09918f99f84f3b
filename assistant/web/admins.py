"""Who may open the admin pages: a Moment admin of the workspace they signed in with.

The workspace: with OAuth installs (many workspaces), the Slack workspace of the sign-in, if Moment is
installed there; in single-token mode, Moment's one workspace (`MOMENT_DEFAULT_TEAM_ID`) for people of the
Slack workspace the bot token belongs to (`auth.test`), nobody else. An admin: MOMENT_ADMINS, the workspace's
own admins (`/moment admin add`), or a member of MOMENT_ADMIN_USERGROUP, as for `/moment`: the group's members
are read with the bot token of the workspace signed in to (the one token, or the installation's).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.web.signin import SlackIdentity

log = logging.getLogger(__name__)

GROUP_SECONDS = 300.0  # how long the admin user group's members are kept


class AdminCheck:
    def __init__(self, settings, service, workspace_client: Callable[[str], WebClient | None] | None = None) -> None:
        """`workspace_client`: a workspace's Web API client (OAuth installs: its installation's bot token, None
        when it has none); by default the one bot token's, for every workspace."""
        self.settings = settings
        self.service = service
        self._client = None
        if settings.slack_bot_token is not None:
            self._client = WebClient(
                token=settings.slack_bot_token.get_secret_value(),
                base_url=settings.slack_api_url,
                timeout=int(settings.slack_timeout_seconds),
            )
        self._workspace_client = workspace_client or (lambda team_id: self._client)
        self._home_team: str | None = None
        self._groups: dict[str, tuple[float, set[str]]] = {}  # workspace -> (read at, the group's members)
        self._lock = threading.Lock()

    def workspace_of(self, identity: SlackIdentity) -> str | None:
        """The workspace whose records this person may see as its admin, or None (Moment does not serve
        their Slack workspace)."""
        if self.settings.multi_workspace:
            workspace = self.service.workspaces.get(identity.team_id)
            if workspace is None or workspace.uninstalled_at is not None:
                return None
            return identity.team_id
        return self.settings.default_team_id if identity.team_id == self.home_team() else None

    def home_team(self) -> str | None:
        """The Slack workspace of the bot token (single-token mode), asked once."""
        if self._home_team is None and self._client is not None:
            try:
                self._home_team = self._client.auth_test()["team_id"]
            except SlackApiError as exc:
                log.error("auth.test failed: %s", exc.response.get("error"))
        return self._home_team

    def client(self, team_id: str) -> WebClient | None:
        """The workspace's Web API client (its bot token), None when Moment has none for it."""
        return self._workspace_client(team_id)

    def is_admin(self, user_id: str, team_id: str) -> bool:
        if self.service.workspaces.is_named_admin(user_id, team_id, self.settings.admins):
            return True
        return bool(self.settings.admin_usergroup) and user_id in self._group_members(team_id)

    def _group_members(self, team_id: str) -> set[str]:
        """The admin user group's members in the workspace, read with its bot token (kept GROUP_SECONDS)."""
        with self._lock:
            read_at, members = self._groups.get(team_id, (float("-inf"), set()))
            if time.monotonic() - read_at <= GROUP_SECONDS:
                return members
            client = self._workspace_client(team_id)
            if client is None:  # no token for the workspace (uninstalled): nobody is in its group
                return set()
            try:
                members = set(client.usergroups_users_list(usergroup=self.settings.admin_usergroup)["users"])
            except SlackApiError as exc:
                log.error("cannot read admin user group of %s: %s", team_id, exc.response.get("error"))
            self._groups[team_id] = (time.monotonic(), members)
            return members
