"""Slack's user-group events keep the shared group cache current between the scheduled reads.

Listeners (`app.py` registers them); the reading itself is `SlackUserGroups`, which the worker uses too.
"""

from __future__ import annotations

import logging

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.access.audiences import UserGroupInfo
from assistant.slack.usergroups import SlackUserGroups, why_failed
from assistant.slack.workspaces import TEAM

log = logging.getLogger(__name__)


class UserGroupEvents:
    """`subteam_*` events, applied to the cache `groups` reads into."""

    def __init__(self, groups: SlackUserGroups) -> None:
        self.groups = groups

    def on_members_changed(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """`subteam_members_changed`: read the group's members again (or apply the change Slack sent, when
        the group cannot be read)."""
        group_id = event.get("subteam_id")
        team = context.get(TEAM) or event.get("team_id") or body.get("team_id")
        if not group_id or not self.groups.matters():
            return
        cached = self.groups.directory.group(team, group_id) if team else None
        if cached is None:
            self.groups.refresh(team, client)  # a group we have not seen (or no workspace yet): read them all
            return
        try:
            members = self.groups.members_of(client, group_id)
        except (SlackApiError, OSError, ValueError, KeyError) as exc:
            log.warning(
                "members of user group %s not read (%s): applying the change Slack sent", group_id, why_failed(exc)
            )
            self.groups.directory.change_members(
                team, group_id, event.get("added_users") or (), event.get("removed_users") or ()
            )
            return
        self.groups.directory.update_group(team, UserGroupInfo(group_id, cached.handle, cached.name, members))

    def on_group_changed(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """`subteam_updated` / `subteam_created`: a group renamed, disabled, deleted, or new."""
        group = event.get("subteam") or {}
        group_id = group.get("id")
        team = context.get(TEAM) or group.get("team_id") or body.get("team_id")
        if not group_id or not team or not self.groups.matters():
            return
        if group.get("date_delete"):
            self.groups.directory.remove_group(team, group_id)
            return
        info = UserGroupInfo(group_id, group.get("handle") or "", group.get("name") or "")
        wanted = self.groups.wanted()
        members = None
        if wanted is None or not info.names.isdisjoint(wanted):
            try:
                members = self.groups.members_of(client, group_id)
            except (SlackApiError, OSError, ValueError, KeyError) as exc:
                log.warning("members of user group %s not read (%s)", group_id, why_failed(exc))
                members = frozenset(group["users"]) if isinstance(group.get("users"), list) else None
        self.groups.directory.update_group(team, UserGroupInfo(info.group_id, info.handle, info.name, members))
