"""A Google Drive stand-in on 127.0.0.1: the requests the `gdrive` kind makes, answered as Google documents them
(developers.google.com/drive/api/reference/rest/v3, developers.google.com/identity/protocols/oauth2/service-account):

- `POST /token`: the JWT bearer grant. The assertion must be RS256-signed by the service account's key
  (`service_account()` gives its JSON key file, `token_uri` pointing here), `aud` this URL, `iss` the
  account, a `drive.readonly` scope, not expired; 400 `invalid_grant` otherwise. An expired or revoked
  access token gets 401 from the API.
- `GET /drive/v3/changes/startPageToken`, `GET /drive/v3/changes?pageToken=…`: each file changed since the
  token once (its latest state, `removed: true` when deleted for good), `nextPageToken` while more remain,
  `newStartPageToken` on the last page; 400 for a token it never gave (or expired by `expire_tokens`).
- `GET /drive/v3/files?q='ID' in parents and trashed = false`: a folder's children, `nextPageToken`-paged.
- `GET /drive/v3/files/{id}` (`alt=media`: the bytes), `/files/{id}/export?mimeType=text/html|text/markdown`
  (Google Docs only; 403 `fileNotExportable` otherwise), `/files/{id}/permissions`.
- `fail_next(403, body=RATE_LIMITED)`, `fail_next(429)` inject Drive's rate limits.

Google Docs hold real documents: CivicActions Guidebook pages (sourcestub/web.py, CC BY 4.0, every page carries
the notice), exported as HTML or Markdown.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets as random_tokens
import time
from dataclasses import dataclass, field

from sourcestub.server import Reply, Request, StubServer
from sourcestub.web import guidebook_pages, render

DOC = "application/vnd.google-apps.document"
FOLDER = "application/vnd.google-apps.folder"
ACCOUNT = "moment-reader@moment-test.iam.gserviceaccount.com"
RATE_LIMITED = {
    "error": {
        "code": 403,
        "message": "User rate limit exceeded.",
        "errors": [
            {"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User rate limit exceeded."}
        ],
    }
}
ANYONE_AT_CONTOSO = {"type": "domain", "role": "reader", "domain": "contoso.com"}
OWNER = {"type": "user", "role": "owner", "emailAddress": "ana.lopez@contoso.com"}


@dataclass
class DriveFile:
    id: str
    name: str
    parents: list[str]
    content: bytes = b""  # Google Docs: their Markdown source
    mime: str = DOC
    by: str = "ana.lopez@contoso.com"
    modified: str = "2026-11-02T09:30:00.000Z"
    permissions: list[dict] = field(default_factory=lambda: [dict(OWNER), dict(ANYONE_AT_CONTOSO)])
    version: int = 1
    trashed: bool = False
    removed: bool = False


class DriveStub(StubServer):
    def __init__(self, page_size: int = 100, token_lifetime: int = 3600) -> None:
        super().__init__()
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.files: dict[str, DriveFile] = {}
        self.log: list[tuple[int, str]] = []  # (change number, file id)
        self.counter = itertools.count(1)
        self.oldest_token = 1
        self.tokens: dict[str, float] = {}
        self.add(DriveFile("folder-ld", "L&D", ["my-drive-0AB"], mime=FOLDER))

    @property
    def folder_url(self) -> str:
        return "https://drive.google.com/drive/folders/folder-ld"

    def service_account(self) -> dict:
        """The service account's JSON key file, as Google gives it."""
        from cryptography.hazmat.primitives import serialization

        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "moment-test",
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": ACCOUNT,
            "client_id": "1234567890",
            "token_uri": self.base + "/token",
        }

    # -- changing the drive ---------------------------------------------------------------------------

    def _changed(self, file: DriveFile) -> None:
        self.log.append((next(self.counter), file.id))

    def add(self, file: DriveFile) -> DriveFile:
        with self.lock:
            self.files[file.id] = file
            self._changed(file)
        return file

    def add_doc(self, file_id: str, name: str, markdown: str, parent: str = "folder-ld", **kw) -> DriveFile:
        return self.add(DriveFile(file_id, name, [parent], markdown.encode("utf-8"), **kw))

    def add_guidebook(self, pages: int) -> dict[str, DriveFile]:
        """`pages` guidebook pages as Google Docs in the L&D folder (one subfolder per section)."""
        out = {}
        for n, (rel, markdown) in enumerate(guidebook_pages(pages).items()):
            section, _, name = rel.rpartition("/")
            parent = "folder-ld"
            if section:
                parent = "folder-" + section.replace("/", "-")
                if parent not in self.files:
                    self.add(DriveFile(parent, section.rsplit("/", 1)[-1], ["folder-ld"], mime=FOLDER))
            out[rel] = self.add_doc(f"doc{n:04d}", name[:-3].replace("-", " ").title(), markdown, parent)
        return out

    def edit(self, file_id: str, content: str | bytes) -> None:
        with self.lock:
            file = self.files[file_id]
            file.content = content.encode("utf-8") if isinstance(content, str) else content
            file.version += 1
            file.modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            self._changed(file)

    def trash(self, file_id: str) -> None:
        with self.lock:
            self.files[file_id].trashed = True
            self.files[file_id].version += 1
            self._changed(self.files[file_id])

    def remove(self, file_id: str) -> None:
        """Deleted for good (or no longer shared with the account)."""
        with self.lock:
            self.files[file_id].removed = True
            self._changed(self.files[file_id])

    def share(self, file_id: str, users: list[str] = (), groups: list[str] = (), domain: bool = False) -> None:
        with self.lock:
            file = self.files[file_id]
            permissions = [{"type": "user", "role": "owner", "emailAddress": file.by}]
            permissions += [{"type": "user", "role": "reader", "emailAddress": u} for u in users]
            permissions += [{"type": "group", "role": "reader", "emailAddress": g} for g in groups]
            if domain:
                permissions.append(dict(ANYONE_AT_CONTOSO))
            file.permissions = permissions
            file.version += 1  # a sharing change is a change of the file
            self._changed(file)

    def expire_tokens(self) -> None:
        """Access tokens expire; so do page tokens given before now."""
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    def expire_page_tokens(self) -> None:
        with self.lock:
            self.oldest_token = len(self.log) + 1

    # -- resources --------------------------------------------------------------------------------------

    def _resource(self, file: DriveFile) -> dict:
        link = (
            f"https://docs.google.com/document/d/{file.id}/edit"
            if file.mime == DOC
            else f"https://drive.google.com/file/d/{file.id}/view"
        )
        out = {
            "kind": "drive#file",
            "id": file.id,
            "name": file.name,
            "mimeType": file.mime,
            "parents": list(file.parents),
            "trashed": file.trashed,
            "modifiedTime": file.modified,
            "webViewLink": link if file.mime != FOLDER else f"https://drive.google.com/drive/folders/{file.id}",
            "version": str(file.version),
            "lastModifyingUser": {"displayName": file.by.split("@")[0].title(), "emailAddress": file.by},
        }
        if file.mime not in (DOC, FOLDER):
            out["size"] = str(len(file.content))
        return out

    def _token(self, request: Request) -> Reply:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        refused = (400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if request.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {}, {"error": "unsupported_grant_type"}
        try:
            header, claims, signature = request.form["assertion"].split(".")
            self.key.public_key().verify(
                _unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = json.loads(_unb64(claims))
        except (KeyError, ValueError, InvalidSignature):
            return refused
        now = time.time()
        if (
            json.loads(_unb64(header)).get("alg") != "RS256"
            or claims.get("iss") != ACCOUNT
            or claims.get("aud") != self.base + "/token"
            or "drive.readonly" not in claims.get("scope", "")
            or not claims.get("iat", now + 60) <= now + 5
            or not now < claims.get("exp", 0) <= claims["iat"] + 3600
        ):
            return refused
        token = "ya29." + random_tokens.token_hex(12)
        self.tokens[token] = now + self.token_lifetime
        return 200, {}, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def answer(self, request: Request) -> Reply:
        with self.lock:
            if request.method == "POST" and request.path == "/token":
                return self._token(request)
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if self.tokens.get(bearer, 0) < time.time():
                return (
                    401,
                    {},
                    {
                        "error": {
                            "code": 401,
                            "message": "Request had invalid authentication credentials.",
                            "status": "UNAUTHENTICATED",
                        }
                    },
                )
            return self._api(request, request.path.removeprefix("/drive/v3"))

    def _visible(self, file_id: str) -> DriveFile | None:
        file = self.files.get(file_id)
        return None if file is None or file.removed else file

    def _api(self, request: Request, path: str) -> Reply:
        missing = (
            404,
            {},
            {"error": {"code": 404, "message": f"File not found: {path}.", "errors": [{"reason": "notFound"}]}},
        )
        if path == "/changes/startPageToken":
            return 200, {}, {"kind": "drive#startPageToken", "startPageToken": str(len(self.log) + 1)}
        if path == "/changes":
            return self._changes(request)
        if path == "/files":
            query = request.arg("q", "")
            parent = query.split("'")[1] if query.count("'") >= 2 else None
            found = [
                self._resource(f)
                for f in self.files.values()
                if parent in f.parents and not f.removed and not ("trashed = false" in query and f.trashed)
            ]
            return 200, {}, self._paged(found, "files", request)
        parts = path.strip("/").split("/")
        if parts[0] != "files" or len(parts) < 2:
            return missing
        if parts[1] == "root" and len(parts) == 2:  # My Drive's alias; its real id differs
            return 200, {}, {"id": "my-drive-0AB", "mimeType": FOLDER}
        file = self._visible(parts[1])
        if file is None:
            return missing
        if len(parts) == 2:
            if request.arg("alt") == "media":
                if file.mime in (DOC, FOLDER):
                    return 403, {}, {"error": {"code": 403, "errors": [{"reason": "fileNotDownloadable"}]}}
                return 200, {"Content-Type": file.mime}, file.content
            return 200, {}, self._resource(file)
        if parts[2] == "export":
            if file.mime != DOC:
                return 403, {}, {"error": {"code": 403, "errors": [{"reason": "fileNotExportable"}]}}
            text = file.content.decode("utf-8")
            if request.arg("mimeType") == "text/html":
                return 200, {"Content-Type": "text/html; charset=utf-8"}, render(text, file.name).encode("utf-8")
            if request.arg("mimeType") == "text/markdown":
                return 200, {"Content-Type": "text/markdown"}, file.content
            return 400, {}, {"error": {"code": 400, "message": "Invalid export format."}}
        if parts[2] == "permissions":
            return (
                200,
                {},
                self._paged([dict(p, kind="drive#permission") for p in file.permissions], "permissions", request),
            )
        return missing

    def _paged(self, found: list, key: str, request: Request) -> dict:
        offset = int(request.arg("pageToken") or 0)
        size = min(int(request.arg("pageSize") or self.page_size), self.page_size)
        body = {key: found[offset : offset + size]}
        if offset + size < len(found):
            body["nextPageToken"] = str(offset + size)
        return body

    def _changes(self, request: Request) -> Reply:
        token = request.arg("pageToken", "")
        try:
            start, offset = (int(x) for x in [*token.split(":"), "0"][:2])
        except ValueError:
            start, offset = -1, 0
        if start < self.oldest_token or start > len(self.log) + 1:
            return (
                400,
                {},
                {
                    "error": {
                        "code": 400,
                        "message": "Invalid Value",
                        "errors": [{"reason": "invalid", "location": "pageToken"}],
                    }
                },
            )
        latest: dict[str, int] = {}
        for number, file_id in self.log:
            if number >= start:
                latest[file_id] = number
        ordered = sorted(latest, key=latest.get)
        size = min(int(request.arg("pageSize") or self.page_size), self.page_size)
        changes = []
        for file_id in ordered[offset : offset + size]:
            file = self.files[file_id]
            change = {"kind": "drive#change", "changeType": "file", "fileId": file_id, "removed": file.removed}
            if not file.removed:
                change["file"] = self._resource(file)
            changes.append(change)
        body: dict = {"kind": "drive#changeList", "changes": changes}
        if offset + size < len(ordered):
            body["nextPageToken"] = f"{start}:{offset + size}"
        else:
            body["newStartPageToken"] = str(len(self.log) + 1)
        return 200, {}, body


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
