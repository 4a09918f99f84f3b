"""Slack user groups into the shared group cache (`assistant.access.audiences.GroupDirectory`).

Read with `usergroups.list` (every enabled group: id, handle, name) and `usergroups.users.list` (the members of
each group some content is restricted to: only those, as that method allows about 20 calls a minute), by
the worker every `MOMENT_AUDIENCE_REFRESH_MINUTES`, by a web process whose cache is stale when a question
needs it, and for one group on Slack's `subteam_members_changed`, `subteam_updated` and `subteam_created`
events (`assistant.slack.usergroup_events`). A read that fails leaves the cache as it was and records why;
the cache then ages until restricted items are withheld (`MOMENT_AUDIENCE_MAX_AGE_MINUTES`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.access.audiences import GroupDirectory, UserGroupInfo
from assistant.db.database import DatabaseUnavailableError

log = logging.getLogger(__name__)


class SlackUserGroups:
    """Reads user groups from Slack into the directory (the `GroupSource` of `assistant.access.audiences`).

    `wanted()` gives the group names (ids and handles) content is restricted to: only their members are read.
    An empty set means no content is restricted, and Slack is not asked at all; None (no index to say):
    every group's members are read."""

    def __init__(
        self,
        client: WebClient,
        directory: GroupDirectory,
        wanted: Callable[[], set[str] | None] = lambda: None,
        *,
        default_team: str | None = None,
        client_for: Callable[[str], WebClient | None] | None = None,
    ) -> None:
        self.client = client
        # With OAuth installs: the client holding a workspace's own token (None: it has none, uninstalled).
        self.client_for = client_for
        self.directory = directory
        self.wanted = wanted
        # Groups are kept under Moment's workspace key (`assistant.slack.workspaces`), the one askers carry:
        # in single-token mode the default workspace; with OAuth installs the caller names the workspace.
        self._team_id: str | None = default_team
        self._lock = threading.Lock()

    def refresh(self, team_id: str | None = None, client: WebClient | None = None) -> bool:
        """Read every group of the workspace again; False when Slack could not be asked (recorded)."""
        if client is None and self.client_for is not None and team_id:
            client = self.client_for(team_id)
            if client is None:
                return False  # no token for that workspace (uninstalled): nothing to ask Slack with
        client = client or self.client
        wanted = self.wanted()
        if wanted is not None and not wanted:
            return True  # nothing is restricted: nobody's groups matter
        team = team_id
        try:
            team = team or self._team(client)
            groups = []
            for group in client.usergroups_list(include_disabled=False)["usergroups"]:
                info = UserGroupInfo(group["id"], group.get("handle") or "", group.get("name") or "")
                if wanted is None or not info.names.isdisjoint(wanted):
                    info = UserGroupInfo(info.group_id, info.handle, info.name, self.members_of(client, info.group_id))
                groups.append(info)
        except (SlackApiError, OSError, ValueError, KeyError) as exc:
            why = why_failed(exc)
            log.error("user groups not read from Slack (restricted content is withheld once the cache is old): %s", why)
            self._record_failure(team or "", why)
            return False
        self.directory.replace(team, groups)
        read = sum(g.members is not None for g in groups)
        log.info("read %d user groups from Slack (the members of %d)", len(groups), read)
        return True

    # -- plumbing ----------------------------------------------------------------------------------

    def matters(self) -> bool:
        """Some content is restricted (or there is no index to say): people's groups matter."""
        wanted = self.wanted()
        return wanted is None or bool(wanted)

    def _team(self, client: WebClient) -> str:
        with self._lock:
            if self._team_id is None:
                self._team_id = client.auth_test()["team_id"]
            return self._team_id

    @staticmethod
    def members_of(client: WebClient, group_id: str) -> frozenset[str]:
        """The members of one user group, as Slack has them now."""
        return frozenset(client.usergroups_users_list(usergroup=group_id, include_disabled=False)["users"])

    def _record_failure(self, team: str, why: str) -> None:
        try:
            self.directory.failed(team, why)
        except DatabaseUnavailableError as exc:
            log.error("user group failure not recorded: %s", exc)


def why_failed(exc: Exception) -> str:
    """Why Slack could not be asked, in words for the log and the status."""
    if isinstance(exc, SlackApiError):
        return f"Slack said {exc.response.get('error') or exc.response.status_code}"
    return f"Slack could not be reached ({type(exc).__name__})"
