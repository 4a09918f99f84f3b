"""`SlackAPIStub`: a small threaded HTTP server on 127.0.0.1 that answers like the Slack Web API.

    with SlackAPIStub(token="xoxb-test") as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)   # http://127.0.0.1:PORT/api/
        ...
        call = slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "C1")
        call.params["blocks"]                                             # parsed JSON

Every request is recorded (method, parameters from the query string, a form or a JSON body, headers,
time, and what was answered). Messages are checked against the Block Kit limits Slack enforces, so a
message Slack would refuse is refused here too (`invalid_blocks`, `msg_too_long`). Faults are
programmable per method with `fail_next`. For OAuth installs, `expect_install` hands out a code that
`oauth.v2.access` exchanges for a bot token of its own workspace; `Call.token` says which token each call
was made with, and `revoke` makes a token stop working. Besides `/api/<method>` it serves `/upload/<id>` (the URL
`files.getUploadURLExternal` hands out) and `/response/<id>` (a `response_url`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from slackstub.blockkit import check_message, check_view
from slackstub.openid import OpenIDProvider
from slackstub.transport import Call, Handler

TEAM_ID = "T0MOMENT1"
BOT_USER_ID = "U0MOMENTBOT"
BOT_ID = "B0MOMENTBOT"


@dataclass
class Workspace:
    """A workspace (or an Enterprise Grid org, for an org-wide install) the app is installed in."""

    team_id: str | None
    team_name: str
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    installer: str = "U0INSTALL1"
    is_enterprise_install: bool = False


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    error: str | None
    times: int
    after_success: bool = False  # do the work (a message is posted), then answer `status` anyway
    channel: str | None = None  # only calls for this channel (others pass untouched)
    drop: bool = False  # do the work, then close the connection without an answer
    delay: float = 0.0  # do the work, then wait this long before answering


class SlackAPIStub:
    """The Slack Web API on 127.0.0.1: records calls, answers like Slack, fails on demand."""

    def __init__(self, token: str | None = None, team_id: str = TEAM_ID, bot_user_id: str = BOT_USER_ID) -> None:
        self.token = token  # when set, calls without `Authorization: Bearer <token>` get invalid_auth
        # OAuth: the app's credentials, codes waiting for oauth.v2.access, and the bot tokens it issued
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.codes: dict[str, Workspace] = {}
        self.issued: dict[str, Workspace] = {}  # bot token -> its workspace (revoked tokens removed)
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.users: dict[str, str] = {}  # user id -> real name (users.info)
        self.emails: dict[str, str] = {}  # e-mail (lower case) -> user id (users.lookupByEmail)
        self.usergroups: dict[str, list[str]] = {}  # usergroup id -> members (usergroups.users.list)
        self.usergroup_handles: dict[str, str] = {}  # usergroup id -> handle (usergroups.list; default: the id)
        self.members: dict[str, list[str]] = {}  # channel id -> members (conversations.members)
        self.uploads: dict[str, dict[str, Any]] = {}  # file id -> {"filename", "bytes", "title", "length"}
        self.bot_channels: set[str] = set()  # channels Moment is a member of (conversations.info is_member)
        self.messages: dict[str, list[dict]] = {}  # channel id -> messages (posted, or seeded with add_message)
        self.min_post_interval: float | None = None  # when set, faster chat.postMessage per channel gets 429
        self._last_post: dict[str, float] = {}
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self.openid = OpenIDProvider(self)  # Sign in with Slack
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SlackAPIStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("StubHandler", (Handler,), {"stub": self}))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-api-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackAPIStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the stub is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL / WebClient(base_url=...): slack_sdk joins method names to it."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str | None = None) -> str:
        """A fresh response_url; what the app posts there is recorded as method "response_url"."""
        return f"{self.base_url}/response/{name or next(self._ids)}"

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
        after_success: bool = False,
        channel: str | None = None,
        drop: bool = False,
        delay: float = 0.0,
    ) -> None:
        """The next `times` calls of `method` fail: HTTP `status` (429 with Retry-After and `ratelimited`,
        500/503 with an error body), or, with `error`, HTTP 200 `{"ok": false, "error": error}`.
        `after_success`: the call takes effect (a message is posted) and still answers `status`, as Slack
        sometimes does when it times out internally after posting. `channel`: only calls for that channel
        fail (a test's fault is not taken by another test's background post). `drop`: the call takes effect
        and the connection is closed without an answer (a load balancer or network dropping it); `delay`: the
        call takes effect and is answered (as usual) only after `delay` seconds (a slow Slack)."""
        with self._cond:
            self._faults.setdefault(method, []).append(
                _Fault(
                    status=200 if error else status,
                    retry_after=retry_after,
                    error=error,
                    times=times,
                    after_success=after_success,
                    channel=channel,
                    drop=drop,
                    delay=delay,
                )
            )

    def _take_fault(self, method: str, params: dict) -> _Fault | None:
        with self._cond:
            queue = self._faults.get(method) or []
            fault = next((f for f in queue if f.channel is None or f.channel == params.get("channel")), None)
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                queue.remove(fault)
            return fault

    # -- what was called -------------------------------------------------------------------------

    def calls(self, method: str | None = None, predicate=None) -> list[Call]:
        with self._cond:
            found = [c for c in self._calls if method is None or c.method == method]
        return [c for c in found if predicate is None or predicate(c)]

    def wait_for(self, method: str, predicate=None, timeout: float = 20.0, count: int = 1) -> Call:
        """The first call of `method` matching `predicate` (waiting until `count` such calls exist)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if c.method == method and (predicate is None or predicate(c))]
                if len(found) >= count:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{c.method} {_brief(c.params)}" for c in self._calls[-15:]]
                    raise AssertionError(
                        f"no {method} call{' matching' if predicate else ''} within {timeout} s "
                        f"({len(found)} of {count}); last calls:\n  " + "\n  ".join(seen)
                    )
                self._cond.wait(min(left, 0.5))

    def clear(self) -> None:
        with self._cond:
            self._calls.clear()
            self._faults.clear()

    def add_message(
        self, channel: str, text: str, *, user: str, ts: str | None = None, thread_ts: str | None = None, **extra
    ) -> dict:
        """A message people wrote (seen by conversations.history / conversations.replies)."""
        msg = {"type": "message", "text": text, "user": user, "ts": ts or self.next_ts(), **extra}
        if thread_ts:
            msg["thread_ts"] = thread_ts
        with self._cond:
            self.messages.setdefault(channel, []).append(msg)
        return msg

    def forget_messages(self, *channels: str) -> None:
        """Empty these conversations (tests sharing the stand-in that reuse a user's DM)."""
        with self._cond:
            for channel in channels:
                self.messages.pop(channel, None)

    def channel_messages(self, channel: str) -> list[dict]:
        with self._cond:
            return list(self.messages.get(channel, []))

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- answers -----------------------------------------------------------------------------------

    def answer(self, method: str, params: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """Slack's answer to a successful call (after auth and faults)."""
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        if method == "auth.test":
            return handler(params, token)
        return handler(params)

    # -- OAuth -----------------------------------------------------------------------------------

    def expect_install(self, workspace: Workspace) -> str:
        """A code Slack would hand the app's redirect URL after someone approves the install in
        `workspace`; oauth.v2.access exchanges it (once) for a bot token of that workspace."""
        code = f"{int(time.time())}.{next(self._ids)}.code"
        with self._cond:
            self.codes[code] = workspace
        return code

    def revoke(self, token: str) -> None:
        """The token stops working (the app was uninstalled, or the token revoked)."""
        with self._cond:
            self.issued.pop(token, None)

    def token_valid(self, token: str | None) -> bool:
        if token is None:
            return False
        with self._cond:
            return token == self.token or token in self.issued

    def _workspace_of(self, token: str | None) -> Workspace | None:
        with self._cond:
            return self.issued.get(token or "")

    def _m_oauth_v2_access(self, p):
        with self._cond:
            workspace = self.codes.pop(p.get("code") or "", None)
        if workspace is None:
            return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{workspace.team_id or workspace.enterprise_id}-{next(self._ids)}-{uuid.uuid4().hex[:16]}"
        with self._cond:
            self.issued[token] = workspace
        team = {"id": workspace.team_id, "name": workspace.team_name} if workspace.team_id else None
        enterprise = (
            {"id": workspace.enterprise_id, "name": workspace.enterprise_name} if workspace.enterprise_id else None
        )
        return {
            "ok": True,
            "app_id": "A0MOMENT01",
            "authed_user": {"id": workspace.installer},
            "scope": "app_mentions:read,chat:write,commands,im:history",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": workspace.bot_user_id,
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": workspace.is_enterprise_install,
        }

    def _m_auth_test(self, p, token: str | None = None):
        workspace = self._workspace_of(token)
        if workspace is not None:
            return {
                "ok": True,
                "url": f"https://{workspace.team_name.lower().replace(' ', '-')}.slack.com/",
                "team": workspace.team_name,
                "user": "moment",
                "team_id": workspace.team_id,
                "user_id": workspace.bot_user_id,
                "bot_id": workspace.bot_id,
                "enterprise_id": workspace.enterprise_id,
                "is_enterprise_install": workspace.is_enterprise_install,
            }
        return {
            "ok": True,
            "url": "https://moment-test.slack.com/",
            "team": "Moment Test",
            "user": "moment",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message(self, p, ts: str) -> dict:
        msg = {"type": "message", "text": p.get("text") or "", "user": self.bot_user_id, "bot_id": BOT_ID, "ts": ts}
        if p.get("blocks"):
            msg["blocks"] = p["blocks"]
        if p.get("thread_ts"):
            msg["thread_ts"] = p["thread_ts"]
        return msg

    def _m_chat_postMessage(self, p):
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        problem = check_message(p)
        if problem:
            return {"ok": False, "error": problem}
        ts = self.next_ts()
        message = self._message(p, ts)
        if isinstance(p.get("metadata"), dict):
            message["metadata"] = p["metadata"]
        with self._cond:
            self.messages.setdefault(p["channel"], []).append(message)
        return {"ok": True, "channel": p["channel"], "ts": ts, "message": message}

    def _rate_limited(self, method: str, params: dict) -> bool:
        """With `min_post_interval` set: a second chat.postMessage to one channel too soon is refused."""
        if method != "chat.postMessage" or self.min_post_interval is None:
            return False
        channel, now = params.get("channel"), time.monotonic()
        with self._cond:
            last = self._last_post.get(channel)
            if last is not None and now - last < self.min_post_interval:
                return True
            self._last_post[channel] = now
        return False

    def _m_conversations_replies(self, p):
        root = p.get("ts")
        msgs = [m for m in self.channel_messages(p.get("channel")) if m["ts"] == root or m.get("thread_ts") == root]
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        msgs.sort(key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": _with_metadata(msgs[: int(p.get("limit") or 1000)], p), "has_more": False}

    def _m_conversations_history(self, p):
        msgs = self.channel_messages(p.get("channel"))
        msgs = [m for m in msgs if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        oldest = float(p.get("oldest") or 0)
        msgs = sorted((m for m in msgs if float(m["ts"]) >= oldest), key=lambda m: -float(m["ts"]))
        return {"ok": True, "messages": _with_metadata(msgs[: int(p.get("limit") or 100)], p), "has_more": False}

    def _m_conversations_info(self, p):
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {"id": channel, "is_member": channel in self.bot_channels, "is_archived": False},
        }

    def _m_reactions_remove(self, p):
        if not p.get("name") or not p.get("timestamp"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _m_chat_postEphemeral(self, p):
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        problem = check_message(p)
        if problem:
            return {"ok": False, "error": problem}
        return {"ok": True, "message_ts": self.next_ts()}

    def _m_chat_update(self, p):
        if not p.get("channel") or not p.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        problem = check_message(p)
        if problem:
            return {"ok": False, "error": problem}
        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": p.get("text") or ""}

    def _m_chat_delete(self, p):
        if not p.get("channel") or not p.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def _view(self, p, view_id: str | None = None) -> dict:
        view = p.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        problem = check_view(view)
        if problem:
            return {"ok": False, "error": problem}
        out = dict(view)
        out.update(id=view_id or f"V{next(self._ids):08d}", team_id=self.team_id, hash=f"{time.time():.6f}")
        return {"ok": True, "view": out}

    def _m_views_publish(self, p):
        if not p.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view(p)

    def _m_views_open(self, p):
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return self._view(p)

    def _m_views_update(self, p):
        if not (p.get("view_id") or p.get("external_id")):
            return {"ok": False, "error": "not_found"}
        return self._view(p, p.get("view_id"))

    def _m_views_push(self, p):
        return self._m_views_open(p)

    def _m_conversations_open(self, p):
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if p.get("channel"):
            return {"ok": True, "channel": {"id": p["channel"]}}
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            return {"ok": True, "channel": {"id": "D" + users[0].lstrip("UW")[:10]}}
        return {"ok": True, "channel": {"id": "G" + "".join(sorted(u[-3:] for u in users))[:10]}}

    def _m_conversations_members(self, p):
        return {"ok": True, "members": list(self.members.get(p.get("channel"), [])), "response_metadata": {}}

    def _m_users_info(self, p):
        uid = p.get("user")
        if uid not in self.users:
            return {"ok": False, "error": "user_not_found"}
        name = self.users[uid]
        return {
            "ok": True,
            "user": {
                "id": uid,
                "team_id": self.team_id,
                "name": name.lower().replace(" ", "."),
                "real_name": name,
                "tz": "Europe/London",
                "profile": {"real_name": name, "display_name": name.split()[0]},
            },
        }

    def _m_users_lookupByEmail(self, p):
        # https://docs.slack.dev/reference/methods/users.lookupByEmail: a user object, or `users_not_found`.
        email = str(p.get("email") or "").strip().lower()
        uid = self.emails.get(email)
        if not email:
            return {"ok": False, "error": "invalid_arguments"}
        if uid is None:
            return {"ok": False, "error": "users_not_found"}
        name = self.users.get(uid, email.split("@")[0])
        return {
            "ok": True,
            "user": {
                "id": uid,
                "team_id": self.team_id,
                "name": email.split("@")[0],
                "deleted": False,
                "is_bot": False,
                "real_name": name,
                "profile": {"email": email, "real_name": name, "display_name": name.split()[0]},
            },
        }

    def _m_usergroups_list(self, p):
        include_users = str(p.get("include_users", "")).lower() in ("1", "true")
        groups = []
        for group_id, members in list(self.usergroups.items()):
            handle = self.usergroup_handles.get(group_id, group_id.lower())
            group = {
                "id": group_id,
                "team_id": self.team_id,
                "is_usergroup": True,
                "name": handle.replace("-", " ").title(),
                "handle": handle,
                "date_delete": 0,
                "user_count": len(members),
            }
            if include_users:
                group["users"] = list(members)
            groups.append(group)
        return {"ok": True, "usergroups": groups}

    def set_usergroup(self, group_id: str, handle: str, members: list[str]) -> None:
        """A user group as Slack would list it (usergroups.list) with its members (usergroups.users.list)."""
        with self._cond:
            self.usergroups[group_id] = list(members)
            self.usergroup_handles[group_id] = handle

    def remove_usergroup(self, group_id: str) -> None:
        """A user group disabled or deleted: no longer listed, its members no longer readable."""
        with self._cond:
            self.usergroups.pop(group_id, None)
            self.usergroup_handles.pop(group_id, None)

    def _m_usergroups_users_list(self, p):
        group = p.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _m_reactions_add(self, p):
        if not p.get("name") or not p.get("timestamp"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _m_files_getUploadURLExternal(self, p):
        if not p.get("filename") or not p.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        with self._cond:
            self.uploads[file_id] = {"filename": p["filename"], "length": int(p["length"]), "bytes": None}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p):
        files = p.get("files") or []
        done = []
        with self._cond:
            for f in files:
                upload = self.uploads.get(f.get("id"))
                if upload is None or upload["bytes"] is None:
                    return {"ok": False, "error": "file_not_found"}
                upload["title"] = f.get("title")
                upload["channel"] = p.get("channel_id")
                done.append({"id": f["id"], "title": f.get("title"), "name": upload["filename"]})
        return {"ok": True, "files": done}


def _brief(params: dict) -> str:
    keep = {k: params[k] for k in ("channel", "user", "user_id", "thread_ts", "text") if k in params}
    return json.dumps(keep, ensure_ascii=False)[:200]


def _with_metadata(messages: list[dict], params: dict) -> list[dict]:
    """Messages as conversations.history / conversations.replies return them: a message's `metadata` (set by
    chat.postMessage) only when the call asks for it with `include_all_metadata=true`."""
    if str(params.get("include_all_metadata", "")).lower() in ("true", "1"):
        return messages
    return [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
