"""Payloads shaped as Slack sends them (Events API envelopes, slash commands, interactions).

Ids are Slack-like: users `U…`, channels `C…`, DMs `D…`, event ids `Ev…`, message ts `1700000000.000100`.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time

from slackstub.api import BOT_ID, BOT_USER_ID, TEAM_ID

APP_ID = "A0MOMENT01"
TEAM_DOMAIN = "moment-test"
VERIFICATION_TOKEN = "legacyVerificationTok"  # deprecated field Slack still sends; apps must not rely on it
_counter = itertools.count(1)


def uid(prefix: str = "U", n: int = 10) -> str:
    """A fresh Slack-like id: U0ABC123XY."""
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(n - 1))


def new_ts() -> str:
    """A fresh, increasing message ts."""
    return f"{int(time.time())}.{next(_counter) % 1_000_000:06d}"


def new_event_id() -> str:
    return "Ev" + uid("", 10)


def new_trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def dm_channel(user: str) -> str:
    """The DM channel id the API stub's conversations.open gives for `user`."""
    return "D" + user.lstrip("UW")[:10]


def _rich_text(text: str) -> list[dict]:
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(2),
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


# -- Events API ---------------------------------------------------------------------------------


def event_callback(
    event: dict,
    *,
    event_id: str | None = None,
    event_time: int | None = None,
    team_id: str | None = TEAM_ID,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
    ext_shared: bool = False,
) -> dict:
    """The envelope every Events API delivery comes in, for the installation in `team_id` (and
    `enterprise_id`; an org-wide install has `is_enterprise_install`). `ext_shared`: the event happened in
    a channel shared with another organisation (Slack Connect)."""
    body = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time or int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": None if is_enterprise_install else team_id,  # an org-wide install has no team
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": is_enterprise_install,
            }
        ],
        "is_ext_shared_channel": ext_shared,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
    if enterprise_id:
        body["enterprise_id"] = enterprise_id
    return body


def app_mention(
    text: str,
    *,
    user: str,
    channel: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
    user_team: str | None = None,
) -> dict:
    """`@Moment text` in a channel (Slack puts the bot's mention in the text). `user_team`: the asker's
    own workspace when it is not the channel's (Slack Connect)."""
    ts = ts or new_ts()
    full = f"<@{BOT_USER_ID}> {text}"
    event = {
        "client_msg_id": secrets.token_hex(16),
        "type": "app_mention",
        "text": full,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(full),
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    if user_team:
        event["user_team"] = user_team
        event["source_team"] = user_team
    return event


def im_message(
    text: str, *, user: str, channel: str | None = None, ts: str | None = None, thread_ts=None, team: str = TEAM_ID
) -> dict:
    """A direct message to the app."""
    event = channel_message(
        text, user=user, channel=channel or dm_channel(user), ts=ts, thread_ts=thread_ts, channel_type="im", team=team
    )
    if thread_ts:
        event["parent_user_id"] = BOT_USER_ID
    return event


def message_changed(*, user: str, channel: str, old_text: str, new_text: str, channel_type: str = "im") -> dict:
    ts, edit_ts = new_ts(), new_ts()
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": {
            "type": "message",
            "user": user,
            "text": new_text,
            "edited": {"user": user, "ts": edit_ts},
            "ts": ts,
            "client_msg_id": secrets.token_hex(16),
        },
        "previous_message": {"type": "message", "user": user, "text": old_text, "ts": ts},
        "channel": channel,
        "hidden": True,
        "ts": edit_ts,
        "event_ts": edit_ts,
        "channel_type": channel_type,
    }


def message_deleted(*, user: str, channel: str, old_text: str, channel_type: str = "im") -> dict:
    ts, del_ts = new_ts(), new_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": {"type": "message", "user": user, "text": old_text, "ts": ts},
        "channel": channel,
        "hidden": True,
        "deleted_ts": ts,
        "ts": del_ts,
        "event_ts": del_ts,
        "channel_type": channel_type,
    }


def bot_message(text: str, *, channel: str, channel_type: str = "im", bot_id: str = "B0OTHERBOT") -> dict:
    ts = new_ts()
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "username": "Other bot",
        "bot_id": bot_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }


def own_message(text: str, *, channel: str) -> dict:
    """Moment's own message in a DM, as Slack echoes it (no subtype, but a bot_id)."""
    ts = new_ts()
    return {
        "type": "message",
        "text": text,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "ts": ts,
        "team": TEAM_ID,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
    }


def channel_join(*, user: str, channel: str) -> dict:
    ts = new_ts()
    return {
        "type": "message",
        "subtype": "channel_join",
        "user": user,
        "text": f"<@{user}> has joined the channel",
        "inviter": "U0INVITER1",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "channel",
    }


def app_home_opened(*, user: str, tab: str = "home", view: dict | None = None) -> dict:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": dm_channel(user),
        "tab": tab,
        "event_ts": new_ts(),
        **({"view": view} if view else {}),
    }


# -- slash commands -------------------------------------------------------------------------------


def slash_command(
    text: str,
    *,
    user: str,
    channel: str,
    response_url: str,
    command: str = "/ask",
    channel_name: str = "general",
    user_name: str = "pat",
    team_id: str = TEAM_ID,
) -> dict:
    """The form fields of a slash command (from a person of `team_id`)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": new_trigger_id(),
    }


# -- interactions ---------------------------------------------------------------------------------


def _user(user: str, team_id: str = TEAM_ID) -> dict:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id}


def _team(team_id: str = TEAM_ID) -> dict:
    return {"id": team_id, "domain": TEAM_DOMAIN if team_id == TEAM_ID else team_id.lower()}


def message_shortcut(
    message_text: str,
    *,
    user: str,
    channel: str,
    response_url: str,
    author: str | None = None,
    callback_id: str = "ask_moment",
) -> dict:
    """A message shortcut ("Ask Moment" from a message's menu)."""
    ts = new_ts()
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": new_ts(),
        "team": _team(),
        "user": _user(user),
        "channel": {"id": channel, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": new_trigger_id(),
        "response_url": response_url,
        "message_ts": ts,
        "message": {
            "client_msg_id": secrets.token_hex(16),
            "type": "message",
            "text": message_text,
            "user": author or user,
            "ts": ts,
            "team": TEAM_ID,
            "blocks": _rich_text(message_text),
        },
    }


def block_actions(
    *,
    action_id: str,
    value: str,
    user: str,
    channel: str,
    response_url: str,
    message: dict | None = None,
    block_id: str = "moment_answer_actions",
    ephemeral: bool = False,
    text: str = "Button",
    team_id: str = TEAM_ID,
) -> dict:
    """A button click (by a person of `team_id`). `message` is the message clicked (as posted); ephemeral
    messages carry none."""
    message_ts = (message or {}).get("ts") or new_ts()
    payload = {
        "type": "block_actions",
        "user": _user(user, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": ephemeral},
        "trigger_id": new_trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general" if channel.startswith("C") else "directmessage"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": new_ts(),
            }
        ],
    }
    if message is not None and not ephemeral:
        payload["message"] = message
    return payload


def posted_message(call) -> dict:
    """The message as Slack would later show it in a block_actions payload, from a recorded post."""
    p = call.params
    msg = {
        "type": "message",
        "subtype": "bot_message",
        "text": p.get("text", ""),
        "ts": call.response.get("ts") or call.response.get("message_ts") or new_ts(),
        "bot_id": BOT_ID,
        "blocks": p.get("blocks") or [],
    }
    if p.get("thread_ts"):
        msg["thread_ts"] = p["thread_ts"]
    return msg


def view_submission(view: dict, *, user: str, values: dict) -> dict:
    """Submitting a modal that the app opened (`view` as sent to views.open); `values` is
    {block_id: {action_id: value}} for plain-text inputs."""
    state = {
        block: {action: {"type": "plain_text_input", "value": value} for action, value in actions.items()}
        for block, actions in values.items()
    }
    submitted = dict(view)
    submitted.update(
        {
            "id": "V" + uid("", 10),
            "team_id": TEAM_ID,
            "state": {"values": state},
            "hash": f"{time.time():.6f}.{secrets.token_hex(4)}",
            "previous_view_id": None,
            "root_view_id": None,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
    )
    submitted.setdefault("private_metadata", "")
    submitted.setdefault("callback_id", "")
    return {
        "type": "view_submission",
        "team": _team(),
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": new_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def button(blocks: list[dict], action_id: str) -> dict | None:
    """The button with `action_id` in posted blocks."""
    for block in blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def channel_message(
    text: str,
    *,
    user: str,
    channel: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    subtype: str | None = None,
    files: list[dict] | None = None,
    team: str = TEAM_ID,
    user_team: str | None = None,
) -> dict:
    """A person's message in a channel (`message.channels`; `channel_type="group"` for a private one,
    `"im"` for a DM)."""
    ts = ts or new_ts()
    event = {
        "client_msg_id": secrets.token_hex(16),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if user_team:
        event["user_team"] = user_team
        event["source_team"] = user_team
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    if subtype:
        event["subtype"] = subtype
    if files:
        event["files"] = files
        event["upload"] = False
    return event


def screenshot(name: str = "image.png") -> dict:
    """A file as it appears in a `file_share` message."""
    return {
        "id": "F" + uid("", 10),
        "name": name,
        "title": name,
        "mimetype": "image/png",
        "filetype": "png",
        "size": 48211,
        "url_private": f"https://files.slack.com/files-pri/{TEAM_ID}-F1/{name}",
    }


def workflow_message(text: str, *, channel: str, bot_id: str = "B0WORKFLOW1") -> dict:
    """A Workflow Builder form posted in a channel (a bot message, with the workflow's bot id)."""
    event = bot_message(text, channel=channel, channel_type="channel", bot_id=bot_id)
    event["bot_profile"] = {"id": bot_id, "name": "Workflow Builder", "app_id": "A0WORKFLOW"}
    return event


def app_uninstalled() -> dict:
    return {"type": "app_uninstalled"}


def tokens_revoked(*, bot: list[str] | None = None, oauth: list[str] | None = None) -> dict:
    return {"type": "tokens_revoked", "tokens": {"oauth": oauth or [], "bot": bot or [BOT_USER_ID]}}


def subteam_members_changed(group_id: str, *, added: list[str] = (), removed: list[str] = ()) -> dict:
    """People added to or removed from a user group."""
    now = int(time.time())
    return {
        "type": "subteam_members_changed",
        "subteam_id": group_id,
        "team_id": TEAM_ID,
        "date_previous_update": now - 60,
        "date_update": now,
        "added_users": list(added),
        "added_users_count": str(len(added)),
        "removed_users": list(removed),
        "removed_users_count": str(len(removed)),
        "event_ts": new_ts(),
    }


def subteam_updated(group_id: str, *, handle: str, users: list[str] = (), deleted: bool = False) -> dict:
    """A user group renamed, changed, disabled (`deleted`) or, as `subteam_created`, new."""
    return {
        "type": "subteam_updated",
        "subteam": {
            "id": group_id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": handle.replace("-", " ").title(),
            "handle": handle,
            "date_delete": int(time.time()) if deleted else 0,
            "users": list(users),
            "user_count": len(users),
        },
        "event_ts": new_ts(),
    }
