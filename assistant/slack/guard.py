"""Requests Bolt cannot parse are refused in front of it with 400, not answered with 500.

Bolt answers 500 to a request whose X-Slack-Request-Timestamp is not a number, and fails on a correctly
signed body that is not what its content type says (JSON for events; a form for slash commands and for
interactions, whose `payload` field holds JSON). Such a request is answered 400 when correctly signed and
401 otherwise, and logged in one line without its body (it may carry tokens); a well-formed request goes to
Bolt, which verifies its signature.

    app = RequestGuard(bolt_wsgi_handler, settings.slack_signing_secret)
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from urllib.parse import parse_qs

from pydantic import SecretStr

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack's requests are far smaller; a larger one is not Slack's
MAX_AGE_S = 300  # Slack's: a request signed longer ago is a replay


class RequestGuard:
    """WSGI middleware for /slack/events: 400 for malformed requests, everything else to `app`."""

    def __init__(self, app, signing_secret: SecretStr | None) -> None:
        self.app = app
        self.secret = signing_secret.get_secret_value().encode() if signing_secret else None

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, "a Content-Length that is not a number")
        if length > MAX_BODY_BYTES:
            return _refuse(start_response, f"a body of {length} bytes", status="413 Payload Too Large")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)  # Bolt reads it again
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        if timestamp is not None and not timestamp.strip().isdigit():
            return _refuse(start_response, "an X-Slack-Request-Timestamp that is not a number")
        problem = body_problem(environ.get("CONTENT_TYPE") or "", body)
        if problem is None:
            return self.app(environ, start_response)  # Bolt verifies the signature (401) and handles it
        if not self.signed(body, timestamp, environ.get("HTTP_X_SLACK_SIGNATURE")):
            return _refuse(start_response, "an invalid signature", status="401 Unauthorized")
        return _refuse(start_response, problem)

    def signed(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """Slack's signature over the raw bytes, fresh (5 minutes), as Bolt checks it."""
        if self.secret is None or timestamp is None or signature is None:
            return False
        if abs(time.time() - int(timestamp)) > MAX_AGE_S:
            return False
        base = b"v0:" + timestamp.strip().encode() + b":" + body
        expected = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


def body_problem(content_type: str, body: bytes) -> str | None:
    """What makes a body one Bolt cannot parse, or None: JSON for events, a form for slash commands and
    interactions (whose `payload` field holds JSON)."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not UTF-8"
    if kind == "application/json":
        return None if isinstance(_json(text), dict) else "a JSON request whose body is not a JSON object"
    if kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return "a form request whose body is not a form"
        if "payload" in form and not isinstance(_json(form["payload"][0]), dict):
            return "an interaction whose payload is not a JSON object"
        return None
    return f"a body of type {kind or 'none'}"


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _refuse(start_response, why: str, status: str = "400 Bad Request"):
    log.warning("refused a request to /slack/events: %s", why)
    payload = f"Bad request: {why}.\n".encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(payload)))])
    return [payload]
