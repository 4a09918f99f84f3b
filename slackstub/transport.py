"""The stub's HTTP side: the request handler, how a request's parameters are read (query string, form or JSON
body; JSON-valued fields parsed), and `Call`, the record of one request."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from slackstub.api import SlackAPIStub

JSON_FIELDS = ("blocks", "view", "attachments", "files", "metadata")


@dataclass
class Call:
    """One request the stub received."""

    method: str  # the API method ("chat.postMessage"), or "upload" / "response_url"
    params: dict[str, Any]  # query string + body; JSON-valued fields (blocks, view...) parsed
    headers: dict[str, str]
    body: bytes
    time: float
    status: int = 200  # the HTTP status answered
    response: dict[str, Any] = field(default_factory=dict)  # the JSON answered

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def token(self) -> str | None:
        """The token the call was made with (`Authorization: Bearer …`, or a `token` parameter)."""
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return self.params.get("token")

    def text(self) -> str:
        """Every piece of text this call would show: `text` plus all the text inside blocks / view."""
        parts = [str(self.params.get("text") or "")]
        for key in ("blocks", "view"):
            if self.params.get(key) is not None:
                parts.append(json.dumps(self.params[key], ensure_ascii=False))
        return "\n".join(parts)


class Handler(BaseHTTPRequestHandler):
    """Serves one `SlackAPIStub` (a subclass per stub sets `stub`): `/api/<method>` answers as the stub does,
    with the fault programmed for the method; `/upload/<id>` and `/response/<id>` take what is sent there."""

    stub: SlackAPIStub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if url.path.startswith("/api/"):
            self._api(url.path[len("/api/") :], url.query, body, headers)
        elif url.path.startswith("/upload/"):
            self._upload(url.path[len("/upload/") :], body, headers)
        elif url.path.startswith("/response/"):
            self._response_url(url.path[len("/response/") :], body, headers)
        elif url.path == "/openid/connect/authorize":
            status, location = self.stub.openid.authorize(url.query)
            self._send(status, {"ok": status == 302}, location)
        elif url.path == "/openid/connect/keys":
            self._send(200, self.stub.openid.keys())
        else:
            self._send(404, {"ok": False, "error": "not_found"})

    def _api(self, method: str, query: str, body: bytes, headers: dict) -> None:
        stub = self.stub
        params = _parse(query, body, headers.get("content-type", ""))
        call = Call(method=method, params=params, headers=headers, body=body, time=time.time())
        fault = stub._take_fault(method, params)
        extra: dict[str, str] = {}
        if method == "oauth.v2.access":  # the app authenticates with its client id and secret, not a token
            if not stub.client_id or _basic_auth(headers) != (stub.client_id, stub.client_secret):
                call.status, call.response = 200, {"ok": False, "error": "invalid_client_id"}
            else:
                call.response = stub.answer(method, params)
        elif method == "openid.connect.token":  # the same: the client id and secret, no token
            call.response = stub.openid.token(params, _basic_auth(headers))
        elif (stub.token or stub.issued) and not stub.token_valid(call.token):
            call.status, call.response = 200, {"ok": False, "error": "invalid_auth"}
        elif fault is not None and (fault.drop or fault.delay):
            call.response = stub.answer(method, params, call.token)  # it happened
            if fault.drop:
                call.status = 0  # no answer
                stub._record(call)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            time.sleep(fault.delay)
        elif fault is not None and fault.error:
            call.status, call.response = 200, {"ok": False, "error": fault.error}
        elif fault is None and stub._rate_limited(method, params):
            call.status, call.response = 429, {"ok": False, "error": "ratelimited"}
            extra["Retry-After"] = "1"
        elif fault is not None and fault.status == 429:
            call.status, call.response = 429, {"ok": False, "error": "ratelimited"}
            if fault.retry_after is not None:
                extra["Retry-After"] = str(fault.retry_after)
        elif fault is not None:
            if fault.after_success:
                stub.answer(method, params)  # it happened; the answer is lost
            call.status, call.response = fault.status, {"ok": False, "error": "fatal_error"}
        else:
            call.response = stub.answer(method, params, call.token)
        stub._record(call)
        self._send(call.status, call.response, extra)

    def _upload(self, file_id: str, body: bytes, headers: dict) -> None:
        stub = self.stub
        with stub._cond:
            upload = stub.uploads.get(file_id)
            if upload is not None:
                upload["bytes"] = body
        stub._record(
            Call(
                method="upload",
                params={"file_id": file_id, "length": len(body)},
                headers=headers,
                body=body,
                time=time.time(),
                status=200 if upload is not None else 404,
            )
        )
        if upload is None:
            self._send_text(404, "not found")
        else:
            self._send_text(200, f"OK - {len(body)}")

    def _response_url(self, name: str, body: bytes, headers: dict) -> None:
        params = _parse("", body, headers.get("content-type", "application/json"))
        params["response_url_id"] = name
        call = Call("response_url", params, headers, body, time.time(), 200, {"ok": True})
        self.stub._record(call)
        self._send_text(200, "ok")

    def _send(self, status: int, payload: dict, extra: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _basic_auth(headers: dict) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[len("Basic ") :]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _parse(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        if "json" in content_type:
            try:
                loaded = json.loads(body)
            except ValueError:
                loaded = {}
            if isinstance(loaded, dict):
                params.update(loaded)
        elif "x-www-form-urlencoded" in content_type:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params
