"""A Confluence Cloud stand-in on 127.0.0.1: the REST v1 requests the `confluence` kind makes, answered as
Atlassian documents them (developer.atlassian.com/cloud/confluence/rest/v1/):

- `GET /wiki/rest/api/content/search?cql=…&expand=…&start=&limit=`: `results`, `start`, `limit`, `size`,
  `_links.base` and, while more remain, `_links.next` (a path under the base). The CQL understood is what the
  connector sends: `type = page`, `space in ("A", "B")`, `(ancestor = N or id = N)`, joined by `and`.
- `GET /wiki/rest/api/content/{id}?expand=body.storage,version,space`: the page, 404 when it does not exist
  or the caller may not read it.
- `GET /wiki/rest/api/content/{id}/restriction/byOperation/read`: the read restrictions.
- `GET /wiki/rest/api/group/member?name=…`: a group's users (with `email`), paged.
- Basic auth (account e-mail and API token); 401 otherwise. `fail_next(status, headers)` injects failures.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

EMAIL, TOKEN = "moment-bot@example.com", "atl-test-token-1"


@dataclass
class Page:
    id: str
    space: str
    title: str
    body: str
    parent: str | None = None
    version: int = 1
    when: str = "2026-11-02T09:30:00.000Z"
    by: str = "ana.lopez@example.com"
    users: list[str] = field(default_factory=list)  # read restriction: e-mails
    groups: list[str] = field(default_factory=list)  # read restriction: group names


class ConfluenceStub:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.groups: dict[str, list[str]] = {}  # name -> member e-mails
        self.requests: list[str] = []
        self.failures: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/wiki"

    def add(self, page: Page) -> Page:
        self.pages[page.id] = page
        return page

    def edit(self, page_id: str, body: str) -> None:
        page = self.pages[page_id]
        page.body, page.version = body, page.version + 1

    def fail_next(self, status: int, headers: dict | None = None) -> None:
        self.failures.append((status, headers or {}))

    # -- the API -----------------------------------------------------------------------------------

    def _ancestors(self, page: Page) -> list[Page]:
        chain, parent = [], page.parent
        while parent:
            chain.insert(0, self.pages[parent])
            parent = self.pages[parent].parent
        return chain

    def _matches(self, page: Page, cql: str) -> bool:
        if "type = page" not in cql:
            return False
        space = re.search(r"space in \(([^)]*)\)", cql)
        if space and page.space not in re.findall(r'"([^"]+)"', space.group(1)):
            return False
        tree = re.search(r"\(ancestor = (\d+) or id = (\d+)\)", cql)
        return not (tree and page.id != tree.group(2) and tree.group(1) not in {a.id for a in self._ancestors(page)})

    def _user(self, email: str) -> dict:
        return {"type": "known", "accountId": "acc-" + email.split("@")[0], "email": email, "publicName": email}

    def _restrictions(self, page: Page) -> dict:
        return {
            "operation": "read",
            "restrictions": {
                "user": {
                    "results": [self._user(u) for u in page.users],
                    "start": 0,
                    "limit": 200,
                    "size": len(page.users),
                },
                "group": {
                    "results": [{"type": "group", "name": g} for g in page.groups],
                    "start": 0,
                    "limit": 200,
                    "size": len(page.groups),
                },
            },
        }

    def _content(self, page: Page, expand: str) -> dict:
        out = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "_links": {"webui": f"/spaces/{page.space}/pages/{page.id}", "base": self.url},
        }
        if "version" in expand:
            out["version"] = {"number": page.version, "when": page.when, "by": self._user(page.by)}
        if "ancestors" in expand:
            out["ancestors"] = [{"id": a.id, "type": "page", "title": a.title} for a in self._ancestors(page)]
        if "restrictions.read" in expand:
            out["restrictions"] = {"read": self._restrictions(page)}
        if "body.storage" in expand:
            out["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        if "space" in expand:
            out["space"] = {"key": page.space}
        return out

    def _paged(self, path: str, query: dict, results: list) -> dict:
        start, limit = int(query.get("start", ["0"])[0]), int(query.get("limit", ["25"])[0])
        chosen = results[start : start + limit]
        links = {"base": self.url}
        if start + limit < len(results):
            following = {k: v[0] for k, v in query.items()} | {"start": start + limit, "limit": limit}
            links["next"] = f"{path}?{urlencode(following)}"
        return {"results": chosen, "start": start, "limit": limit, "size": len(chosen), "_links": links}

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict, dict]:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append(handler.path)
            if self.failures:
                status, headers = self.failures.pop(0)
                return status, headers, {"statusCode": status, "message": "injected"}
        auth = handler.headers.get("Authorization", "")
        if auth != "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode():
            return 401, {}, {"statusCode": 401, "message": "Client must be authenticated to access this resource."}
        path = parts.path.removeprefix("/wiki")
        expand = query.get("expand", [""])[0]
        if path == "/rest/api/content/search":
            cql = query.get("cql", [""])[0]
            found = [
                self._content(p, expand)
                for p in sorted(self.pages.values(), key=lambda p: int(p.id))
                if self._matches(p, cql)
            ]
            return 200, {}, self._paged(path, query, found)
        if m := re.fullmatch(r"/rest/api/content/(\d+)/restriction/byOperation/read", path):
            page = self.pages.get(m.group(1))
            return (200, {}, self._restrictions(page)) if page else (404, {}, {"statusCode": 404})
        if m := re.fullmatch(r"/rest/api/content/(\d+)", path):
            page = self.pages.get(m.group(1))
            return (200, {}, self._content(page, expand)) if page else (404, {}, {"statusCode": 404})
        if path == "/rest/api/group/member":
            members = [self._user(e) for e in self.groups.get(query.get("name", [""])[0], [])]
            return 200, {}, self._paged(path, query, members)
        return 404, {}, {"statusCode": 404, "message": "No such resource"}

    def start(self) -> ConfluenceStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, headers, body = stub.answer(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ConfluenceStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
