"""`SlackSender`: requests to the app over real HTTP, signed exactly as Slack signs them.

    sender = SlackSender("http://127.0.0.1:3000", signing_secret)
    sender.event(payloads.event_callback(payloads.app_mention("how do I ...", user="U1", channel="C1")))
    sender.command(payloads.slash_command("how do I ...", user="U1", channel="C1", response_url=...))
    sender.interaction(payloads.block_actions(...))

Slack's signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` keyed with the signing secret,
sent in `X-Slack-Signature` with the timestamp in `X-Slack-Request-Timestamp`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import requests

SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def signature(signing_secret: str, timestamp: str | int, body: bytes) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    """Sends events, slash commands and interactions to `{base_url}{path}` as Slack would."""

    def __init__(self, base_url: str, signing_secret: str, path: str = "/slack/events", timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.signing_secret = signing_secret
        self.path = path
        self.timeout = timeout

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | str | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        unsigned: bool = False,
    ) -> requests.Response:
        """POST raw `body`; `timestamp` overrides now (stale or replayed requests), `bad_signature`
        signs with the wrong secret, `retry_num` adds Slack's retry headers."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        secret = self.signing_secret + "-wrong" if bad_signature else self.signing_secret
        headers = {"Content-Type": content_type, "User-Agent": SLACK_USER_AGENT, "Accept": "*/*"}
        if not unsigned:
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = signature(secret, ts, body)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return requests.post(self.base_url + self.path, data=body, headers=headers, timeout=self.timeout)

    def event(self, envelope: dict, **kwargs) -> requests.Response:
        """An Events API delivery (JSON)."""
        return self.post(json.dumps(envelope).encode(), "application/json", **kwargs)

    def command(self, fields: dict, **kwargs) -> requests.Response:
        """A slash command (form-encoded fields)."""
        return self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded", **kwargs)

    def interaction(self, payload: dict, **kwargs) -> requests.Response:
        """A shortcut, block action or view submission (form field `payload` holding JSON)."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, "application/x-www-form-urlencoded", **kwargs)
