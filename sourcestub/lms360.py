"""A 360Learning stand-in on 127.0.0.1: the API v2 requests `moment courses import --lms 360learning` makes,
answered as 360Learning documents them (360learning.readme.io):

- `POST /api/v2/oauth2/token` with a JSON body `{"grant_type": "client_credentials", "client_id", "client_secret"}`:
  `{"token_type": "Bearer", "access_token", "expires_in": "3600"}`; 401 for other credentials.
- `GET /api/v2/paths`: every request carries `Authorization: Bearer <token>` and `360-api-version: v2.0`
  (401 without a valid token, 400 without the version). The answer is a JSON list of paths, `PAGE_SIZE` (200)
  a page; while more remain, a `Link: <URL>; rel="next"` header, the URL carrying an opaque `next` token.
- `fail_next(status, headers)` injects failures.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 200
CLIENT_ID = "moment-test-client"
CLIENT_SECRET = "s3cret-for-tests-only"


class Lms360Stub:
    """Paths in memory; `requests` records every path asked for, with its headers."""

    def __init__(self) -> None:
        self.paths: list[dict] = []
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, dict]] = []
        self.failures: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def add_path(self, name: str, description: str = "", **fields) -> dict:
        """A path as the API returns it (`_id`, `name`, `description`, `createdAt`, `modifiedAt`, `status`, ...)."""
        path = {
            "_id": fields.pop("_id", secrets.token_hex(12)),
            "name": name,
            "description": description,
            "authorId": "507f1f77bcf86cd799439011",
            "createdAt": "2026-09-12T12:33:30.423Z",
            "modifiedAt": "2026-10-01T08:00:00.000Z",
            "defaultLang": "en",
            "status": "published",
            **fields,
        }
        self.paths.append(path)
        return path

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def fail_next(self, status: int, headers: dict | None = None) -> None:
        with self.lock:
            self.failures.append((status, headers or {}))

    def _injected(self):
        with self.lock:
            if self.failures:
                status, headers = self.failures.pop(0)
                return status, headers, {"error": "injected"}
        return None

    def answer_get(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict, object]:
        parts = urlsplit(handler.path)
        with self.lock:
            self.requests.append(("GET", handler.path, dict(handler.headers)))
        if injected := self._injected():
            return injected
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            return 401, {}, {"error": "unauthorized", "message": "Invalid or expired access token"}
        if handler.headers.get("360-api-version") != "v2.0":
            return 400, {}, {"error": "bad_request", "message": "Missing or unknown 360-api-version header"}
        if parts.path != "/api/v2/paths":
            return 404, {}, {"error": "not_found"}
        query = parse_qs(parts.query)
        start = 0
        if "next" in query:
            try:
                start = int(base64.urlsafe_b64decode(query["next"][0].encode()).decode().removeprefix("after:"))
            except ValueError:
                return 400, {}, {"error": "bad_request", "message": "Invalid next token"}
        page = self.paths[start : start + PAGE_SIZE]
        headers = {}
        if start + PAGE_SIZE < len(self.paths):
            token = base64.urlsafe_b64encode(f"after:{start + PAGE_SIZE}".encode()).decode()
            headers["Link"] = f'<{self.url}/api/v2/paths?next={token}>; rel="next"'
        return 200, headers, page

    def answer_post(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict, object]:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        with self.lock:
            self.requests.append(("POST", handler.path, dict(handler.headers)))
        if injected := self._injected():
            return injected
        if urlsplit(handler.path).path != "/api/v2/oauth2/token":
            return 404, {}, {"error": "not_found"}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {}, {"error": "invalid_request"}
        if (
            data.get("grant_type") != "client_credentials"
            or data.get("client_id") != CLIENT_ID
            or data.get("client_secret") != CLIENT_SECRET
        ):
            return 401, {}, {"error": "invalid_client"}
        return 200, {}, {"token_type": "Bearer", "access_token": self.issue_token(), "expires_in": "3600"}

    def start(self) -> Lms360Stub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, headers, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(*stub.answer_get(self))

            def do_POST(self):
                self._send(*stub.answer_post(self))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Lms360Stub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
