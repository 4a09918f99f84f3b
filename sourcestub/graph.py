"""A Microsoft Graph stand-in on 127.0.0.1: the requests the `sharepoint` kind makes, answered as Microsoft
documents them (learn.microsoft.com/graph/api/…), over one SharePoint site with one document library:

- `POST /{tenant}/oauth2/v2.0/token` (client credentials): `access_token`, `expires_in`; 401 `invalid_client`
  for a wrong secret. An expired or revoked token gets 401 `InvalidAuthenticationToken` from the API.
- `GET /v1.0/sites/{host}:/{path}`, `/sites/{id}/drive`, `/sites/{id}/drives`, `/users/{upn}/drive`.
- `GET /v1.0/drives/{id}/root/delta`: the first call lists every item (the root, folders, files); the last
  page carries `@odata.deltaLink`, earlier ones `@odata.nextLink` (`page_size` items a page). From a delta
  link: the items changed since, deleted ones with the `deleted` facet; with `Prefer:
  deltashowsharingchanges`, items whose permissions changed too (annotated `@microsoft.graph.sharedChanged`).
  A delta link older than `expire_deltas()` gets 410 `resyncRequired`.
- `GET /v1.0/drives/{id}/items/{id}`, `/root`, `/root:/{path}`; `/items/{id}/permissions` (permission
  resources: `grantedToV2` user / group / siteGroup, `link.scope`); `/items/{id}/content`: 302 to a
  pre-authenticated download URL (`/download/…?tempauth=…`), which needs no token.
- `?format=pdf` converts a Word file (its text, held as the item's content) to PDF (with fpdf2, a test
  dependency), as Graph converts Office files.
- `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user`, `GET /v1.0/users/{id}`.
- `fail_next(429, {"Retry-After": "1"})` and the like inject throttling and outages.

The library holds real documents: CivicActions Guidebook pages rendered to HTML (sourcestub/web.py, CC BY
4.0, every page carries the notice), as an intranet's exported pages would be.
"""

from __future__ import annotations

import datetime as dt
import secrets as random_tokens
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from sourcestub.server import Reply, Request, StubServer
from sourcestub.web import guidebook_pages, render

TENANT, CLIENT_ID, CLIENT_SECRET = "contoso-tenant", "moment-app-id", "graph-test-secret-1"
HOST, SITE_PATH = "contoso.sharepoint.com", "/sites/hr"
SITE_ID = "contoso.sharepoint.com,5a8d7e0f-site,2b4c-web"
DRIVE_ID = "b!hr-documents"
EVERYONE = {
    "id": "perm-everyone",
    "roles": ["read"],
    "grantedToV2": {"group": {"displayName": "Everyone except external users", "id": "c:0-.f|rolemanager|spo-grid"}},
}
OWNERS = {
    "id": "perm-owners",
    "roles": ["owner"],
    "grantedToV2": {"siteGroup": {"displayName": "HR Owners", "id": "3"}},
}


@dataclass
class DriveItem:
    id: str
    name: str
    parent: str | None
    content: bytes = b""
    folder: bool = False
    mime: str = "text/html"
    by: str = "ana.lopez@contoso.com"
    modified: str = "2026-11-02T09:30:00Z"
    permissions: list[dict] = field(default_factory=lambda: [dict(OWNERS), dict(EVERYONE)])
    version: int = 1
    deleted: bool = False
    seq: int = 0  # when its content, name or place last changed
    sharing_seq: int = 0  # when its permissions last changed


class GraphStub(StubServer):
    def __init__(self, page_size: int = 200, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.items: dict[str, DriveItem] = {}
        self.groups: dict[str, tuple[str, list[str]]] = {}  # id -> (display name, member e-mails)
        self.users: dict[str, str] = {}  # user id -> mail
        self.tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self.seq = 0
        self.oldest_delta = 0  # delta links from before this are answered 410
        self.downloads_with_token = 0
        self.children_first = False  # Graph does not promise parents before children in a delta
        self.add(DriveItem("root", "root", None, folder=True))

    @property
    def graph_url(self) -> str:
        return self.base + "/v1.0"

    @property
    def site_url(self) -> str:
        return f"https://{HOST}{SITE_PATH}"

    def options(self, **more) -> dict:
        """The source options that point the `sharepoint` kind at this stand-in."""
        return {"tenant": TENANT, "client_id": CLIENT_ID, "graph_url": self.graph_url, "login_url": self.base, **more}

    # -- changing the library -----------------------------------------------------------------------

    def _touch(self, item: DriveItem) -> None:
        self.seq += 1
        item.seq = self.seq

    def add(self, item: DriveItem) -> DriveItem:
        with self.lock:
            self.items[item.id] = item
            self._touch(item)
            item.sharing_seq = item.seq
        return item

    def add_file(self, item_id: str, name: str, text: str | bytes, parent: str = "root", **kw) -> DriveItem:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return self.add(DriveItem(item_id, name, parent, data, **kw))

    def add_guidebook(self, pages: int, folder: str = "guidebook") -> dict[str, DriveItem]:
        """`pages` guidebook pages as HTML files in a folder `Guidebook` (and one subfolder per section)."""
        self.add(DriveItem(folder, "Guidebook", "root", folder=True))
        out = {}
        for n, (rel, markdown) in enumerate(guidebook_pages(pages).items()):
            section, _, name = rel.rpartition("/")
            parent = folder
            if section:
                parent = f"{folder}-{section.replace('/', '-')}"
                if parent not in self.items:
                    self.add(DriveItem(parent, section.rsplit("/", 1)[-1], folder, folder=True))
            out[rel] = self.add_file(f"gb{n:04d}", name[:-3] + ".html", render(markdown), parent)
        return out

    def edit(self, item_id: str, text: str | bytes) -> None:
        with self.lock:
            item = self.items[item_id]
            item.content = text.encode("utf-8") if isinstance(text, str) else text
            item.version += 1
            item.modified = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._touch(item)

    def delete(self, item_id: str) -> None:
        with self.lock:
            self.items[item_id].deleted = True
            self._touch(self.items[item_id])

    def move(self, item_id: str, parent: str) -> None:
        with self.lock:
            self.items[item_id].parent = parent
            self._touch(self.items[item_id])

    def share(self, item_id: str, users: list[str] = (), groups: list[str] = (), everyone: bool = False) -> None:
        """Replace the item's permissions (the owners keep theirs): named people, groups (ids in `groups`), or
        everyone in the organisation."""
        with self.lock:
            item = self.items[item_id]
            permissions = [dict(OWNERS)]
            if everyone:
                permissions.append(dict(EVERYONE))
            for n, email in enumerate(users):
                user = {"user": {"id": f"user-{email.split('@')[0]}", "displayName": email.split("@")[0]}}
                if n % 2 == 0:  # Graph gives some grants an e-mail, others only the user's id
                    user["user"]["email"] = email
                self.users[f"user-{email.split('@')[0]}"] = email
                permissions.append({"id": f"perm-u{n}", "roles": ["read"], "grantedToV2": user})
            for n, group in enumerate(groups):
                name, _ = self.groups[group]
                grant = {"group": {"id": group, "displayName": name, "email": f"{group}@contoso.com"}}
                permissions.append({"id": f"perm-g{n}", "roles": ["read"], "grantedToV2": grant})
            item.permissions = permissions
            self.seq += 1
            item.sharing_seq = self.seq

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    def expire_deltas(self) -> None:
        with self.lock:
            self.oldest_delta = self.seq + 1

    # -- resources ------------------------------------------------------------------------------------

    def _path_of(self, item: DriveItem) -> str:
        names = []
        parent = item.parent
        while parent and parent != "root":
            names.insert(0, self.items[parent].name)
            parent = self.items[parent].parent
        return "/drive/root:" + ("/" + "/".join(quote(n) for n in names) if names else "")

    def _resource(self, item: DriveItem, annotate: bool = False) -> dict:
        if item.deleted:
            return {"id": item.id, "deleted": {"state": "deleted"}, "parentReference": {"driveId": DRIVE_ID}}
        out = {
            "id": item.id,
            "name": item.name,
            "eTag": f'"{{{item.id}}},{item.version}"',
            "cTag": f'"c:{{{item.id}}},{item.version}"',
            "lastModifiedDateTime": item.modified,
            "lastModifiedBy": {"user": {"email": item.by, "displayName": item.by.split("@")[0].title()}},
            "webUrl": f"{self.site_url}/Shared%20Documents{self._path_of(item).removeprefix('/drive/root:')}/"
            + quote(item.name),
            "size": len(item.content),
        }
        if item.id == "root":
            out |= {"root": {}, "folder": {"childCount": 0}, "webUrl": f"{self.site_url}/Shared%20Documents"}
            return out
        out["parentReference"] = {"driveId": DRIVE_ID, "id": item.parent, "path": self._path_of(item)}
        if item.folder:
            out["folder"] = {"childCount": sum(1 for i in self.items.values() if i.parent == item.id)}
        else:
            out["file"] = {"mimeType": item.mime}
        if annotate:
            out["@microsoft.graph.sharedChanged"] = "True"
        return out

    def _delta(self, request: Request) -> Reply:
        skip = request.arg("$skiptoken")
        if skip:
            since, upto, offset = (int(x) for x in skip.split("."))
        else:
            since = int(request.arg("token", "-1"))
            upto, offset = self.seq, 0
        if since >= 0 and since < self.oldest_delta:
            return (
                410,
                {},
                {
                    "error": {
                        "code": "resyncRequired",
                        "message": "Resync required. Replace any local "
                        "items with the server's version and upload local changes.",
                    }
                },
            )
        sharing = "deltashowsharingchanges" in request.headers.get("prefer", "")
        changed = []
        for item in self.items.values():
            if since < 0:
                if not item.deleted:
                    changed.append((item.seq, item, False))
            elif since < item.seq <= upto:
                changed.append((item.seq, item, False))
            elif sharing and since < item.sharing_seq <= upto and not item.deleted:
                changed.append((item.sharing_seq, item, True))
        changed.sort(key=lambda c: (c[1].id != "root", c[0]), reverse=self.children_first)
        page = changed[offset : offset + self.page_size]
        body: dict = {"value": [self._resource(item, annotate) for _, item, annotate in page]}
        delta = f"{self.graph_url}/drives/{DRIVE_ID}/root/delta"
        if offset + self.page_size < len(changed):
            body["@odata.nextLink"] = f"{delta}?$skiptoken={since}.{upto}.{offset + self.page_size}"
        else:
            body["@odata.deltaLink"] = f"{delta}?token={upto}"
        return 200, {}, body

    def _token(self, request: Request) -> Reply:
        form = request.form
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or request.path != f"/{TENANT}/oauth2/v2.0/token"
        ):
            return 401, {}, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        token = "graph-" + random_tokens.token_hex(12)
        self.tokens[token] = time.time() + self.token_lifetime
        return 200, {}, {"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token}

    def answer(self, request: Request) -> Reply:
        with self.lock:
            if request.method == "POST" and request.path.endswith("/oauth2/v2.0/token"):
                return self._token(request)
            if request.path.startswith("/download/"):
                if "authorization" in request.headers:
                    self.downloads_with_token += 1
                item = self.items.get(request.path.removeprefix("/download/"))
                if item is None or item.deleted or not request.arg("tempauth"):
                    return 404, {}, {"error": {"code": "itemNotFound"}}
                if request.arg("format") == "pdf":
                    return 200, {"Content-Type": "application/pdf"}, as_pdf(item.content.decode("utf-8"))
                if item.name.endswith(".docx"):  # a Word file is a zip archive; its text is inside
                    return 200, {"Content-Type": item.mime}, b"PK\x03\x04" + item.content
                return 200, {"Content-Type": item.mime}, item.content
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if self.tokens.get(bearer, 0) < time.time():
                return (
                    401,
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    {
                        "error": {
                            "code": "InvalidAuthenticationToken",
                            "message": "Access token has expired or is not yet valid.",
                        }
                    },
                )
            return self._api(request, unquote(request.path.removeprefix("/v1.0")))

    def _api(self, request: Request, path: str) -> Reply:
        missing = (404, {}, {"error": {"code": "itemNotFound", "message": "The resource could not be found."}})
        site = {"id": SITE_ID, "webUrl": self.site_url, "displayName": "HR"}
        drive = {"id": DRIVE_ID, "name": "Documents", "driveType": "documentLibrary", "webUrl": self.site_url}
        if path == f"/sites/{HOST}:{SITE_PATH}":
            return 200, {}, site
        if path == f"/sites/{SITE_ID}/drive":
            return 200, {}, drive
        if path == f"/sites/{SITE_ID}/drives":
            return 200, {}, {"value": [drive]}
        prefix = f"/drives/{DRIVE_ID}"
        if not path.startswith(prefix + "/"):
            if path.startswith("/groups/") and path.endswith("/transitiveMembers/microsoft.graph.user"):
                group = self.groups.get(path.split("/")[2])
                if group is None:
                    return missing
                return 200, {}, {"value": [{"mail": m, "userPrincipalName": m} for m in group[1]]}
            if path.startswith("/users/") and path.count("/") == 2:
                mail = self.users.get(path.split("/")[2])
                return (200, {}, {"id": path.split("/")[2], "mail": mail}) if mail else missing
            return missing
        rest = path.removeprefix(prefix)
        if rest == "/root/delta":
            return self._delta(request)
        if rest == "/root":
            return 200, {}, self._resource(self.items["root"])
        if rest.startswith("/root:/"):
            names = rest.removeprefix("/root:/").strip("/").split("/")
            current = "root"
            for name in names:
                found = [i for i in self.items.values() if i.parent == current and i.name == name and not i.deleted]
                if not found:
                    return missing
                current = found[0].id
            return 200, {}, self._resource(self.items[current])
        parts = rest.strip("/").split("/")
        if parts[0] != "items" or len(parts) < 2:
            return missing
        item = self.items.get(parts[1])
        if item is None or item.deleted:
            return missing
        if len(parts) == 2:
            return 200, {}, self._resource(item)
        if parts[2] == "permissions":
            return 200, {}, {"value": item.permissions}
        if parts[2] == "content":
            if request.arg("format") and request.arg("format") != "pdf":
                return 400, {}, {"error": {"code": "invalidRequest", "message": "Unsupported format."}}
            url = f"{self.base}/download/{item.id}?tempauth={random_tokens.token_hex(8)}"
            if request.arg("format") == "pdf":
                url += "&format=pdf"
            return 302, {"Location": url}, b""
        return missing


def as_pdf(text: str) -> bytes:
    """`text` as a PDF, as Graph's conversion of a Word file would give it."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())
