"""The HTTP plumbing of the cloud-drive stand-ins (sourcestub/graph.py, sourcestub/gdrive.py): a threaded
server on 127.0.0.1 that hands each request to the stand-in's `answer`, records it, and serves an injected
failure first when a test asked for one (`fail_next`)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)


Reply = tuple[int, dict, "dict | bytes"]  # status, headers, a JSON body or raw bytes


class StubServer:
    """Subclasses implement `answer(request) -> (status, headers, body)`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.failures: list[Reply] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail_next(self, status: int, headers: dict | None = None, body: dict | None = None) -> None:
        """Answer the next API request (not a token request) with `status`."""
        with self.lock:
            self.failures.append((status, headers or {}, body or {"error": {"code": status, "message": "injected"}}))

    def calls(self, fragment: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if fragment in r.path]

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8") if length else ""
        request = Request(
            method,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in handler.headers.items()},
            {k: v[0] for k, v in parse_qs(raw).items()},
        )
        with self.lock:
            self.requests.append(request)
            injected = self.failures.pop(0) if self.failures and "/token" not in request.path else None
        status, headers, body = injected or self.answer(request)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        if not isinstance(body, bytes):
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                stub._handle(self, "GET")

            def do_POST(self):
                stub._handle(self, "POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
