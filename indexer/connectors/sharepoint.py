"""The `sharepoint` kind: a SharePoint Online document library or a OneDrive, through Microsoft Graph (v1.0)
with plain `requests`, as Microsoft documents it (learn.microsoft.com/graph/api/driveitem-delta):

- The app's token: client credentials (`POST {login_url}/{tenant}/oauth2/v2.0/token`, scope
  `https://graph.microsoft.com/.default`), renewed before it expires; or a configured token (`token_env`).
- The drive: `GET /sites/{host}:/{path}` then `/sites/{id}/drive` (or `/drives`, by `library` name) for a
  site URL; `drive:ID`; `onedrive:person@example.com` (`/users/{upn}/drive`).
- Changes: `GET /drives/{id}/root/delta`, following `@odata.nextLink` to the last page's `@odata.deltaLink`,
  which is the cursor. With `Prefer: deltashowremovedasdeleted, deltatraversepermissiongaps,
  deltashowsharingchanges` an item removed or no longer visible comes back with the `deleted` facet, and an
  item whose sharing changed comes back too. 410 (`resyncRequired`: the delta link expired) lists everything
  again from the root: unchanged items (same cTag and readers) are not fetched again, and items no longer
  listed are removed.
- Content: `GET /drives/{id}/items/{id}/content` answers 302 to a pre-authenticated download URL, fetched
  without the token; Word, PowerPoint and Excel files are fetched as PDF (`?format=pdf`).
- Readers: `GET /drives/{id}/items/{id}/permissions`. A sharing link with scope `anonymous` or `organization`,
  or a grant to a group named in `public_groups` (default "Everyone", "Everyone except external users"), makes
  the item public; otherwise its readers are the people granted (their e-mail, else `GET /users/{id}`) and the
  members of the groups granted (`GET /groups/{id}/transitiveMembers/microsoft.graph.user`). SharePoint site
  groups have no member list in Graph: their members are outside the audience (fail closed) unless the group
  is named in `public_groups`.
- 429 and 503 with Retry-After are waited out when short, else the sync fails as a whole (`SourceUnavailable`).

`folder` keeps the source to one folder of the drive (and below): delta is only offered on the root of
SharePoint and OneDrive for Business drives, so the connector keeps the folder tree in its cursor.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlsplit

from indexer.connectors.base import Access, Change, Item, SourceError, SourceUnavailable
from indexer.connectors.drives import (
    BearerApi,
    Entry,
    FolderTree,
    Forbidden,
    Gone,
    drive_changes,
    file_change,
    file_kind,
    json_of,
    paged,
    readable,
)

GRAPH_URL = "https://graph.microsoft.com/v1.0"
LOGIN_URL = "https://login.microsoftonline.com"
PREFER = "deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges"
CONVERTED = (".doc", ".docx", ".ppt", ".pptx", ".xls", ".xlsx", ".odt", ".odp", ".ods", ".rtf")
PUBLIC_GROUPS = ("Everyone", "Everyone except external users")


class SharePointConnector:
    """The files of one drive (a document library or a OneDrive), or of one folder of it."""

    kind = "sharepoint"

    def __init__(
        self,
        target: str,
        tenant: str | None = None,
        client_id: str | None = None,
        library: str | None = None,
        folder: str | None = None,
        public_groups: list[str] | str | None = None,
        graph_url: str = GRAPH_URL,
        login_url: str = LOGIN_URL,
        max_bytes: int = 20 * 1024 * 1024,
        timeout: float = 20.0,
        max_wait: float = 60.0,
        secrets: dict | None = None,
    ) -> None:
        target = (target or "").strip()
        if not (re.match(r"^https://[^/]+/", target) or target.startswith(("drive:", "onedrive:"))):
            raise SourceError(
                f"'{target}' is not a SharePoint library: give the site's address "
                "(https://contoso.sharepoint.com/sites/hr), drive:DRIVE-ID or onedrive:person@contoso.com."
            )
        secrets = secrets or {}
        if isinstance(public_groups, str):
            public_groups = [g.strip() for g in public_groups.split(",") if g.strip()]
        self.target = target
        self.tenant, self.client_id = tenant, client_id
        self.library = library
        self.folder = (folder or "").strip("/") or None
        self.public_groups = set(PUBLIC_GROUPS if public_groups is None else public_groups)
        self.graph = graph_url.rstrip("/")
        self.login = login_url.rstrip("/")
        self.max_bytes = int(max_bytes)
        self.secrets = secrets
        self.api = BearerApi("Microsoft Graph", self._fetch_token, timeout=timeout, max_wait=max_wait)
        self.cursor: dict = {}
        self.notes: list[str] = []
        self._drive: str | None = None
        self._members: dict[str, tuple[str, ...]] = {}
        self._user_mail: dict[str, str | None] = {}

    # -- the token and the drive -------------------------------------------------------------------

    def _fetch_token(self, session) -> tuple[str, float]:
        if self.secrets.get("token"):
            return self.secrets["token"], 3600.0
        secret = self.secrets.get("client_secret")
        if not (self.tenant and self.client_id and secret):
            raise SourceUnavailable(
                "Say which app reads it: --option tenant=TENANT-ID --option client_id=APP-ID and "
                "--option client_secret_env=VARIABLE (the secret stays in the environment), or a token with "
                "--option token_env=VARIABLE."
            )
        url = f"{self.login}/{quote(self.tenant)}/oauth2/v2.0/token"
        try:
            response = session.post(
                url,
                data={
                    "client_id": self.client_id,
                    "client_secret": secret,
                    "scope": "https://graph.microsoft.com/.default",
                    "grant_type": "client_credentials",
                },
                timeout=self.api.timeout,
            )
        except Exception as exc:
            raise SourceUnavailable(f"Microsoft's sign-in could not be reached ({type(exc).__name__}).") from None
        if response.status_code != 200:
            code = json_of(response).get("error") or response.status_code
            raise SourceUnavailable(
                f"Microsoft's sign-in refused the app's credentials ({code}): the client secret may have expired. "
                "Renew it where the source's settings name it."
            )
        data = json_of(response)
        return data["access_token"], float(data.get("expires_in") or 3600)

    def drive_id(self) -> str:
        if self._drive is None:
            self._drive = self._resolve_drive()
        return self._drive

    def _resolve_drive(self) -> str:
        if self.target.startswith("drive:"):
            return self.target.removeprefix("drive:")
        try:
            if self.target.startswith("onedrive:"):
                return self.api.json(f"{self.graph}/users/{quote(self.target.removeprefix('onedrive:'))}/drive")["id"]
            parts = urlsplit(self.target)
            site = self.api.json(f"{self.graph}/sites/{parts.hostname}:{quote(parts.path.rstrip('/') or '/')}")
            if not self.library:
                return self.api.json(f"{self.graph}/sites/{site['id']}/drive")["id"]
            for drive in self.api.json(f"{self.graph}/sites/{site['id']}/drives").get("value", ()):
                if drive.get("name") == self.library:
                    return drive["id"]
        except KeyError:
            raise SourceError(f"Microsoft Graph does not know {self.target} (404): check the address.") from None
        raise SourceError(f"The site {self.target} has no document library called '{self.library}'.")

    def _root_id(self) -> str:
        path = f"root:/{quote(self.folder)}" if self.folder else "root"
        try:
            return self.api.json(f"{self.graph}/drives/{self.drive_id()}/{path}", {"$select": "id"})["id"]
        except KeyError:
            raise SourceError(f"The drive has no folder '{self.folder}'.") from None

    # -- changes -----------------------------------------------------------------------------------

    def _delta(self, link: str | None) -> Iterator[dict]:
        start = link or f"{self.graph}/drives/{self.drive_id()}/root/delta"
        for page in paged(
            lambda following: self.api.json(following or start, headers={"Prefer": PREFER}),
            lambda page: page.get("@odata.nextLink"),
        ):
            yield from page.get("value", ())
            if page.get("@odata.deltaLink"):
                self.cursor["delta"] = page["@odata.deltaLink"]

    def changes(self, cursor: dict | None) -> Iterator[Change]:
        cursor = cursor or {}
        items: dict[str, dict] = dict(cursor.get("items", {}))
        self._drive = self._drive or cursor.get("drive")
        root = cursor.get("root") or self._root_id()
        tree = FolderTree(root, cursor.get("folders"))
        self.cursor = {"drive": self.drive_id(), "root": root}
        link = cursor.get("delta")
        try:
            entries = list(self._delta(link))
        except Gone:
            self.notes.append("The delta link had expired (410 resyncRequired): every item was listed again.")
            link, tree = None, FolderTree(root)
            entries = list(self._delta(None))
        entries = [self._entry(e) for e in entries]
        for entry in entries:  # a page of delta may name a file before its folder
            if entry.folder and not entry.deleted and entry.id != root and entry.parent:
                tree.add(entry.id, entry.parent)
        skipped: list[str] = []
        yield from drive_changes(entries, items, tree, full=link is None, change_of=self._change, skipped=skipped)
        if skipped:
            self.notes.append(f"{len(skipped)} files of kinds Moment does not read (images, archives) were skipped.")
        self.cursor.update({"folders": tree.folders, "items": items})

    @staticmethod
    def _entry(raw: dict) -> Entry:
        name = raw.get("name") or raw["id"]
        return Entry(
            raw["id"],
            parent=(raw.get("parentReference") or {}).get("id"),
            deleted="deleted" in raw,
            folder="folder" in raw or "root" in raw,
            readable=file_kind(name, (raw.get("file") or {}).get("mimeType")) is not None or _converted(name),
            raw=raw if "file" in raw else None,
        )

    def _change(self, entry: dict, old: dict | None) -> tuple[Change | None, dict | None]:
        """(the change for one file, its new cursor state; None: keep the old state)."""
        item_id = entry["id"]
        if "file" not in entry:  # neither a file nor a folder (a OneNote package, ...): nothing to read
            return None, None
        size = entry.get("size")
        return file_change(  # gone between the delta and now: nothing; the next delta says so
            item_id,
            old,
            {"tag": entry.get("cTag") or entry.get("eTag")},
            size if isinstance(size, int) else None,
            self.max_bytes,
            self.access_of,
            lambda access: self._item(entry, access),
        )

    def _item(self, entry: dict, access: Access) -> Item:
        name = entry.get("name") or entry["id"]
        converted = _converted(name)
        kind = "application/pdf" if converted else file_kind(name, (entry.get("file") or {}).get("mimeType"))
        data = self._download(entry["id"], converted)
        data, found_title = readable(data, kind)
        by = (entry.get("lastModifiedBy") or {}).get("user") or {}
        modified = entry.get("lastModifiedDateTime")
        return Item(
            id=entry["id"],
            title=found_title or (name.rsplit(".", 1)[0] if "." in name else name),
            link=entry.get("webUrl") or "",
            modified=dt.datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
            owner=by.get("email") or by.get("displayName"),
            access=access,
            media_type=kind,
            content=data,
            version=entry.get("cTag") or entry.get("eTag"),
        )

    def _download(self, item_id: str, converted: bool) -> bytes:
        url = f"{self.graph}/drives/{self.drive_id()}/items/{item_id}/content"
        response = self.api.request(url, {"format": "pdf"} if converted else None, allow_redirects=False)
        if response.status_code in (301, 302, 303, 307):
            location = response.headers.get("Location", "")
            response.close()
            try:
                response = self.api.downloads.get(location, timeout=self.api.timeout, stream=True)
            except Exception as exc:
                raise SourceUnavailable(f"A file's download URL could not be read ({type(exc).__name__}).") from None
        if response.status_code == 404:
            response.close()
            raise KeyError(item_id)
        if response.status_code != 200:
            response.close()
            raise ValueError(f"Its content could not be downloaded ({response.status_code}).")
        return self.api.body(response, self.max_bytes)

    # -- readers -----------------------------------------------------------------------------------

    def access_of(self, item_id: str) -> Access:
        """Who may read the item, from its permissions (see the module docstring)."""
        url = f"{self.graph}/drives/{self.drive_id()}/items/{item_id}/permissions"
        emails: set[str] = set()
        groups: dict[str, tuple[str, ...]] = {}
        for page in paged(lambda following: self.api.json(following or url), lambda p: p.get("@odata.nextLink")):
            for permission in page.get("value", ()):
                link = permission.get("link") or {}
                if link.get("scope") in ("anonymous", "organization"):
                    return Access()
                grants = [permission.get("grantedToV2") or permission.get("grantedTo") or {}]
                grants += permission.get("grantedToIdentitiesV2") or permission.get("grantedToIdentities") or []
                for grant in grants:
                    group = grant.get("group") or grant.get("siteGroup")
                    if group:
                        name = group.get("displayName") or group.get("email") or group.get("id") or "?"
                        if name in self.public_groups:
                            return Access()
                        groups[name] = self._group_members(group) if grant.get("group") else ()
                        continue
                    person = grant.get("user") or grant.get("siteUser") or {}
                    email = person.get("email") or self._mail_of(person.get("id"))
                    if email:
                        emails.add(email)
        return Access.restricted(emails, groups)

    def _group_members(self, group: dict) -> tuple[str, ...]:
        group_id = group.get("id")
        if not group_id:
            return ()
        if group_id not in self._members:
            url = f"{self.graph}/groups/{group_id}/transitiveMembers/microsoft.graph.user"
            found: list[str] = []
            try:
                for page in paged(
                    lambda following: self.api.json(following or url, {"$select": "mail,userPrincipalName"}),
                    lambda p: p.get("@odata.nextLink"),
                ):
                    found += [u.get("mail") or u.get("userPrincipalName") for u in page.get("value", ())]
            except (KeyError, Forbidden):
                self.notes.append(
                    f"The members of the group {group.get('displayName') or group_id} could not be read (the app "
                    "needs GroupMember.Read.All): they are outside the audience."
                )
            self._members[group_id] = tuple(sorted({e.lower() for e in found if e}))
        return self._members[group_id]

    def _mail_of(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        if user_id not in self._user_mail:
            try:
                user = self.api.json(f"{self.graph}/users/{user_id}", {"$select": "mail,userPrincipalName"})
                self._user_mail[user_id] = user.get("mail") or user.get("userPrincipalName")
            except (KeyError, Forbidden):
                self._user_mail[user_id] = None
        return self._user_mail[user_id]

    # -- one item, every id --------------------------------------------------------------------------

    def fetch(self, item_id: str) -> Item:
        entry = self.api.json(f"{self.graph}/drives/{self.drive_id()}/items/{item_id}")
        return self._item(entry, self.access_of(item_id))

    def ids(self) -> Iterable[str]:
        """Every file in scope now (a delta from the start, ids only: the prune pass)."""
        root = self._root_id()
        tree, files = FolderTree(root), {}
        for entry in self._delta(None):
            if "deleted" in entry:
                continue
            parent = (entry.get("parentReference") or {}).get("id")
            if "folder" in entry and "root" not in entry:
                tree.add(entry["id"], parent)
            elif "file" in entry:
                files[entry["id"]] = parent
        return [item_id for item_id, parent in files.items() if tree.contains(parent)]


def _converted(name: str) -> bool:
    return name.lower().endswith(CONVERTED)
