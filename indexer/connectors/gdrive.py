"""The `gdrive` kind: a Google Drive folder (in My Drive or a shared drive) and everything under it, through the
Drive API v3 with plain `requests`, as Google documents it (developers.google.com/drive/api/reference/rest/v3):

- The token: a service account's JWT bearer grant (RS256-signed assertion, `POST token_uri`, scope
  `drive.readonly`, optionally impersonating `subject` with domain-wide delegation), renewed before it
  expires; or a configured token (`token_env`). The key file is named by `service_account_file` or read
  from the environment (`service_account_env`).
- The first sync (and a resync): `changes.getStartPageToken` first, then the folder tree listed with
  `files.list` (`q='ID' in parents and trashed = false`, following `nextPageToken`). Later syncs:
  `changes.list` from the saved token, following `nextPageToken` to `newStartPageToken`, the cursor. A
  change `removed`, or a file `trashed`, or moved out of the folder, removes the item; an invalid page
  token lists the folder again.
- Content: Google Docs exported (`files.export`, `text/html` by default, `export=text/markdown` also
  works), Slides as text/plain; PDFs, HTML, text and transcripts downloaded (`files.get?alt=media`). Link
  `webViewLink`, modified `modifiedTime`, editor `lastModifyingUser`.
- Readers: `permissions.list`. `anyone`, or a `domain` grant to the organisation's domain (`domains`, by
  default the owner's), makes the item public; otherwise its readers are the users granted. A group's
  members are not listed by the Drive API: they are outside the audience (fail closed); the sync says so.
- 429, 503 and 403 `rateLimitExceeded`/`userRateLimitExceeded` are retried with exponential backoff (or
  Retry-After) while short, else the sync fails as a whole (`SourceUnavailable`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.connectors.base import Access, Change, Item, SourceError, SourceUnavailable
from indexer.connectors.drives import (
    BearerApi,
    Entry,
    FolderTree,
    drive_changes,
    file_change,
    file_kind,
    json_of,
    paged,
    readable,
)

DRIVE_URL = "https://www.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/drive.readonly"
FOLDER = "application/vnd.google-apps.folder"
EXPORTS = {  # Google's own formats -> what they are exported as (None: the `export` option)
    "application/vnd.google-apps.document": None,
    "application/vnd.google-apps.presentation": "text/plain",
}
FIELDS = (
    "id,name,mimeType,parents,trashed,modifiedTime,webViewLink,size,version,md5Checksum,"
    "lastModifyingUser(displayName,emailAddress)"
)
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


class DriveConnector:
    """The files of one Drive folder (`target`: its id, its address, or `root`) and its subfolders."""

    kind = "gdrive"

    def __init__(
        self,
        target: str,
        shared_drive: str | None = None,
        service_account_file: str | None = None,
        subject: str | None = None,
        export: str = "text/html",
        domains: list[str] | str | None = None,
        drive_url: str = DRIVE_URL,
        max_bytes: int = 20 * 1024 * 1024,
        timeout: float = 20.0,
        max_wait: float = 60.0,
        secrets: dict | None = None,
    ) -> None:
        found = re.search(r"/folders/([A-Za-z0-9_-]+)", target or "")
        folder = found.group(1) if found else (target or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]+", folder):
            raise SourceError(
                f"'{target}' is not a Drive folder: give its address (https://drive.google.com/drive/folders/ID), "
                "its id, or root."
            )
        if export not in ("text/html", "text/markdown"):
            raise SourceError("export must be text/html or text/markdown.")
        secrets = secrets or {}
        if isinstance(domains, str):
            domains = [d.strip().lower() for d in domains.split(",") if d.strip()]
        self.folder = folder
        self.shared_drive = shared_drive
        self.key_file = service_account_file
        self.subject = subject
        self.export = export
        self.domains = set(domains or ())
        self.base = drive_url.rstrip("/") + "/drive/v3"
        self.max_bytes = int(max_bytes)
        self.secrets = secrets
        self.api = BearerApi(
            "Google Drive", self._fetch_token, timeout=timeout, max_wait=max_wait, throttled=_rate_limited
        )
        self.cursor: dict = {}
        self.notes: list[str] = []

    # -- the token ---------------------------------------------------------------------------------

    def _key(self) -> dict:
        if not (self.secrets.get("service_account") or self.key_file):
            raise SourceUnavailable(
                "Say how Moment signs in: --option service_account_file=/path/key.json (a service account's key), "
                "--option service_account_env=VARIABLE (the key's JSON), or --option token_env=VARIABLE."
            )
        try:
            text = self.secrets.get("service_account") or Path(self.key_file).expanduser().read_text("utf-8")
            key = json.loads(text)
            if not key.get("private_key") or not key.get("client_email"):
                raise KeyError("private_key")
            return key
        except (OSError, ValueError, KeyError, TypeError):
            raise SourceUnavailable(
                "The service account's key cannot be read: it must be the JSON key file Google gives."
            ) from None

    def _fetch_token(self, session) -> tuple[str, float]:
        if self.secrets.get("token"):
            return self.secrets["token"], 3600.0
        key = self._key()
        token_uri = key.get("token_uri") or "https://oauth2.googleapis.com/token"
        now = int(time.time())
        claims = {"iss": key["client_email"], "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600}
        if self.subject:
            claims["sub"] = self.subject
        try:
            response = session.post(
                token_uri,
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt_rs256(claims, key)},
                timeout=self.api.timeout,
            )
        except Exception as exc:
            raise SourceUnavailable(f"Google's sign-in could not be reached ({type(exc).__name__}).") from None
        data = json_of(response)
        if response.status_code != 200 or "access_token" not in data:
            raise SourceUnavailable(
                f"Google's sign-in refused the service account ({data.get('error') or response.status_code}): its "
                "key may have been deleted or lost access to Drive. Renew it where the source's settings name it."
            )
        return data["access_token"], float(data.get("expires_in") or 3600)

    # -- listings ----------------------------------------------------------------------------------

    def _resolve_root(self) -> None:
        """`root` is an alias: the files in My Drive name its real id as their parent."""
        if self.folder == "root":
            self.folder = self.api.json(f"{self.base}/files/root", {"fields": "id"})["id"]

    def _drive_params(self) -> dict:
        params = {"supportsAllDrives": "true"}
        if self.shared_drive:
            params |= {"driveId": self.shared_drive, "includeItemsFromAllDrives": "true", "corpora": "drive"}
        return params

    def _listing(self) -> Iterator[dict]:
        """Every file and folder under the folder (breadth first)."""
        queue = [self.folder]
        while queue:
            parent = queue.pop(0)
            params = self._drive_params() | {
                "q": f"'{parent}' in parents and trashed = false",
                "fields": f"nextPageToken,files({FIELDS})",
                "pageSize": 100,
            }
            for page in paged(
                lambda token, params=params: self.api.json(
                    f"{self.base}/files", params | ({"pageToken": token} if token else {})
                ),
                lambda page: page.get("nextPageToken"),
            ):
                for entry in page.get("files", ()):
                    if entry.get("mimeType") == FOLDER:
                        queue.append(entry["id"])
                    yield entry

    def _changes_since(self, token: str) -> Iterator[dict]:
        params = {k: v for k, v in self._drive_params().items() if k != "corpora"} | {
            "includeRemoved": "true",
            "fields": f"nextPageToken,newStartPageToken,changes(fileId,removed,file({FIELDS}))",
            "pageSize": 100,
        }
        if self.shared_drive:
            params["includeItemsFromAllDrives"] = "true"
        for page in paged(
            lambda following: self.api.json(f"{self.base}/changes", params | {"pageToken": following or token}),
            lambda page: page.get("nextPageToken"),
        ):
            yield from page.get("changes", ())
            if page.get("newStartPageToken"):
                self.cursor["page_token"] = page["newStartPageToken"]

    def _start_token(self) -> str:
        params = {"supportsAllDrives": "true"} | ({"driveId": self.shared_drive} if self.shared_drive else {})
        return self.api.json(f"{self.base}/changes/startPageToken", params)["startPageToken"]

    # -- changes -----------------------------------------------------------------------------------

    def changes(self, cursor: dict | None) -> Iterator[Change]:
        cursor = cursor or {}
        items: dict[str, dict] = dict(cursor.get("items", {}))
        self._resolve_root()
        tree = FolderTree(self.folder, cursor.get("folders"))
        token = cursor.get("page_token")
        entries: list[Entry] = []
        full = token is None
        if not full:
            try:
                entries = [
                    self._entry(c["fileId"], None if c.get("removed") else c.get("file"), tree)
                    for c in self._changes_since(token)
                ]
            except (KeyError, SourceError):  # the saved token is no longer valid: list again
                self.notes.append("The saved changes token was refused: the folder was listed again.")
                full = True
        if full:
            self.cursor["page_token"] = self._start_token()  # before listing: nothing is missed in between
            tree = FolderTree(self.folder)
            entries = [self._entry(e["id"], e, tree) for e in self._listing()]
        skipped: list[str] = []
        yield from drive_changes(entries, items, tree, full=full, change_of=self._change, skipped=skipped)
        if skipped:
            self.notes.append(f"{len(skipped)} files of kinds Moment does not read (images, sheets, ...) were skipped.")
        self.cursor.update({"folders": tree.folders, "items": items})

    def _entry(self, file_id: str, raw: dict | None, tree: FolderTree) -> Entry:
        if raw is None or raw.get("trashed"):
            return Entry(file_id, deleted=True)
        parents = raw.get("parents") or []
        parent = next((p for p in parents if tree.contains(p)), parents[0] if parents else None)
        if raw.get("mimeType") == FOLDER:
            if tree.contains(parent):  # its children may follow in this listing
                tree.add(file_id, parent)
            return Entry(file_id, parent=parent, folder=True)
        return Entry(file_id, parent=parent, readable=self._kind(raw) is not None, raw=raw)

    def _kind(self, entry: dict) -> str | None:
        media = entry.get("mimeType")
        if media in EXPORTS:
            return EXPORTS[media] or self.export
        return file_kind(entry.get("name") or "", media)

    def _change(self, entry: dict, old: dict | None) -> tuple[Change | None, dict | None]:
        size = entry.get("size")
        return file_change(
            entry["id"],
            old,
            {"version": str(entry.get("version") or entry.get("modifiedTime"))},
            int(size) if size is not None and str(size).isdigit() else None,
            self.max_bytes,
            self.access_of,
            lambda access: self._item(entry, access),
        )

    def _item(self, entry: dict, access: Access) -> Item:
        kind = self._kind(entry)
        file_id = entry["id"]
        if entry.get("mimeType") in EXPORTS:
            response = self.api.request(f"{self.base}/files/{file_id}/export", {"mimeType": kind}, stream=True)
        else:
            response = self.api.request(
                f"{self.base}/files/{file_id}", {"alt": "media", "supportsAllDrives": "true"}, stream=True
            )
        if response.status_code == 404:
            response.close()
            raise KeyError(file_id)
        if response.status_code != 200:
            response.close()
            raise ValueError(f"Its content could not be downloaded ({response.status_code}).")
        data = self.api.body(response, self.max_bytes)
        data, found_title = readable(data, kind)
        by = entry.get("lastModifyingUser") or {}
        modified = entry.get("modifiedTime")
        name = entry.get("name") or file_id
        return Item(
            id=file_id,
            title=name if entry.get("mimeType") in EXPORTS else (found_title or re.sub(r"\.\w{2,8}$", "", name)),
            link=entry.get("webViewLink") or f"https://drive.google.com/file/d/{file_id}/view",
            modified=dt.datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
            owner=by.get("emailAddress") or by.get("displayName"),
            access=access,
            media_type=kind,
            content=data,
            version=str(entry.get("version") or ""),
        )

    # -- readers -----------------------------------------------------------------------------------

    def access_of(self, file_id: str) -> Access:
        """Who may read the file, from its permissions (see the module docstring)."""
        url = f"{self.base}/files/{file_id}/permissions"
        params = {"supportsAllDrives": "true", "fields": "nextPageToken,permissions(type,role,emailAddress,domain)"}
        emails, groups, domains, owners = set(), {}, set(), set()
        for page in paged(
            lambda token: self.api.json(url, params | ({"pageToken": token} if token else {})),
            lambda page: page.get("nextPageToken"),
        ):
            for permission in page.get("permissions", ()):
                kind, email = permission.get("type"), permission.get("emailAddress")
                if kind == "anyone":
                    return Access()
                if kind == "domain":
                    domains.add((permission.get("domain") or "").lower())
                elif kind == "user" and email:
                    emails.add(email)
                    if permission.get("role") == "owner":
                        owners.add(email.rsplit("@", 1)[-1].lower())
                elif kind == "group" and email:
                    groups[email] = ()
        # "Anyone at contoso.com" is everyone only for contoso.com itself: the `domains` option, else the
        # owner's domain. A file shared with a partner's domain is not open to all of Moment's askers.
        if domains & (self.domains or owners):
            return Access()
        if groups:
            self.notes.append(
                "Drive does not list the members of groups: items shared with a group ("
                + ", ".join(sorted(groups))
                + ") are answered only to the people named on them."
            )
        return Access.restricted(emails, groups)

    # -- one item, every id ------------------------------------------------------------------------

    def fetch(self, item_id: str) -> Item:
        entry = self.api.json(f"{self.base}/files/{item_id}", {"fields": FIELDS, "supportsAllDrives": "true"})
        return self._item(entry, self.access_of(item_id))

    def ids(self) -> Iterable[str]:
        self._resolve_root()
        return [e["id"] for e in self._listing() if e.get("mimeType") != FOLDER and self._kind(e) is not None]


def jwt_rs256(claims: dict, key: dict) -> str:
    """A JWT signed with the service account's RSA key (RS256), as Google's token endpoint expects."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError:
        raise SourceUnavailable(
            "Signing in with a service account needs the cryptography package (pip install cryptography), "
            "or give a token with --option token_env=VARIABLE."
        ) from None
    header = {"alg": "RS256", "typ": "JWT"}
    if key.get("private_key_id"):
        header["kid"] = key["private_key_id"]
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    try:
        private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    except ValueError:
        raise SourceUnavailable("The service account's private key cannot be read (not a PEM RSA key).") from None
    return f"{signing_input.decode()}.{_b64(private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rate_limited(response) -> bool:
    if response.status_code != 403:
        return False
    errors = ((json_of(response).get("error") or {}).get("errors")) or []
    return any(e.get("reason") in RATE_REASONS for e in errors)
