"""A stand-in OpenAI-compatible server on 127.0.0.1, for what a real model cannot be made to do on demand
(quote what is not there, time out, fail with 500, reply with prose, refuse a response format).

It serves `POST /v1/chat/completions` and `GET /v1/models` as OpenAI's API documents them: a chat completion
object with `choices[0].message.content`, errors as `{"error": {"message", "type"}}`. Each test says what the
next replies are (`replies`: a function of the request body, or fixed), and reads what was asked (`requests`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """One reply: the message content (a string the model "wrote"), or a raw status and body."""

    content: str | None = None
    status: int = 200
    body: str | None = None  # raw body (overrides content)
    delay: float = 0.0  # seconds before answering

    @classmethod
    def json(cls, data: dict, **kwargs) -> Reply:
        return cls(content=json.dumps(data), **kwargs)


@dataclass
class Seen:
    """One request as received."""

    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class OpenAIStandIn:
    """The server's state: what to reply, what was asked."""

    reply: Callable[[dict], Reply] = lambda body: Reply.json({"unknown": True})
    requests: list[Seen] = field(default_factory=list)
    refuse_formats: tuple[str, ...] = ()  # response_format types answered with 400, as some servers do
    model: str = "stand-in-model"
    url: str = ""

    def completion(self, content: str) -> dict:
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }


def serve() -> tuple[OpenAIStandIn, ThreadingHTTPServer]:
    """Start a stand-in on a free loopback port; `state.url` is its base URL (…/v1)."""
    state = OpenAIStandIn()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": state.model, "object": "model"}]}))
            else:
                self._send(404, json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, json.dumps({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}))
                return
            state.requests.append(Seen(self.path, dict(self.headers.items()), body))
            if self.path != "/v1/chat/completions":
                self._send(404, json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}))
                return
            wanted = (body.get("response_format") or {}).get("type")
            if wanted in state.refuse_formats:
                message = f"response_format type {wanted!r} is not supported"
                self._send(400, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}))
                return
            reply = state.reply(body)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.body is not None:
                self._send(reply.status, reply.body)
            else:
                self._send(reply.status, json.dumps(state.completion(reply.content or "")))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return state, server
