"""The `confluence` kind: pages of Confluence Cloud (or Data Center) spaces, or of one page tree, through the
REST API (v1: CQL search, content, restrictions, group members) with plain `requests`.

Each sync lists every page in scope once, without bodies (`GET /rest/api/content/search` with CQL
`type = page and space = "HR"` or `ancestor = 123`, following `_links.next`), with each page's version and
read restrictions (`expand=version,ancestors,restrictions.read.restrictions.user,…group`). A page whose
version number or effective readers changed since the cursor is fetched (`GET /rest/api/content/{id}?
expand=body.storage,version`); a page no longer listed was deleted, moved out of scope or hidden from
Moment's account. Listing every sync (not only `lastModified >` the last one) is what catches deletions and
restriction changes, which do not change a page's version.

Read restrictions become the item's access: Confluence shows a page to someone only when they pass the read
restrictions of the page and of each restricted ancestor, so the readers are the intersection of each
level's users and group members (`GET /rest/api/group/member?name=…`, e-mails as the API gives them).

Credentials come from the environment or a secrets file (the assistant resolves them, `secrets`): an
account e-mail and API token (Cloud, basic auth) or a personal access token (Data Center, bearer).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterable, Iterator
from urllib.parse import urljoin

import requests

from indexer.connectors.base import Access, Change, Item, SourceError, SourceUnavailable
from indexer.connectors.web import _retry_after

EXPAND_LIST = "version,ancestors,restrictions.read.restrictions.user,restrictions.read.restrictions.group"
PAGE_LIMIT = 50


class ConfluenceConnector:
    """Pages of spaces (`spaces`) or of a page tree (`page`) on one Confluence site (`target`, its wiki URL)."""

    kind = "confluence"

    def __init__(
        self,
        target: str,
        spaces: list[str] | str | None = None,
        page: str | int | None = None,
        timeout: float = 20.0,
        secrets: dict | None = None,
        email: str | None = None,
    ) -> None:
        if not re.match(r"^https?://", target or ""):
            raise SourceError(
                f"'{target}' is not a Confluence address: give its wiki URL, like https://x.atlassian.net/wiki."
            )
        if isinstance(spaces, str):
            spaces = [s for s in re.split(r"[,\s]+", spaces) if s]
        if not spaces and page is None:
            raise SourceError(
                "Say what to read: --option spaces=HR,IT (space keys) or --option page=12345 (a page tree)."
            )
        self.base = target.rstrip("/")
        self.spaces = list(spaces or [])
        self.page = str(page) if page is not None else None
        self.timeout = float(timeout)
        self.session = requests.Session()
        secrets = secrets or {}
        if secrets.get("pat"):
            self.session.headers["Authorization"] = f"Bearer {secrets['pat']}"
        elif secrets.get("api_token"):
            self.session.auth = (secrets.get("email") or email or "", secrets["api_token"])
        self.session.headers["Accept"] = "application/json"
        self.cursor: dict = {}
        self.notes: list[str] = []
        self._groups: dict[str, tuple[str, ...]] = {}
        self._restrictions: dict[str, tuple | None] = {}

    # -- requests ------------------------------------------------------------------------------

    def _get(self, path_or_url: str, params: dict | None = None) -> dict:
        url = path_or_url if path_or_url.startswith("http") else urljoin(self.base + "/", path_or_url.lstrip("/"))
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise SourceUnavailable(f"Confluence did not answer within {self.timeout:g} s.") from None
        except requests.RequestException as exc:
            raise SourceUnavailable(f"Confluence could not be reached ({type(exc).__name__}).") from None
        if response.status_code in (401, 403):
            raise SourceUnavailable(
                f"Confluence refused Moment's credentials ({response.status_code}): the token may have expired or "
                "lost access. Renew it where the source's settings name it."
            )
        if response.status_code == 429:
            retry = _retry_after(response.headers.get("Retry-After"))
            raise SourceUnavailable(
                f"Confluence is rate-limiting Moment (429{f', retry in {retry:.0f} s' if retry else ''}).", retry
            )
        if response.status_code >= 500:
            raise SourceUnavailable(f"Confluence answered {response.status_code}.")
        if response.status_code == 404:
            raise KeyError(url)
        if response.status_code != 200:
            raise SourceError(
                f"Confluence answered {response.status_code} to {url.split('?')[0]}: {response.text[:200]}"
            )
        return response.json()

    def _paged(self, path: str, params: dict) -> Iterator[dict]:
        """Every result of a paged v1 list, following `_links.next` (which carries start/limit or a cursor)."""
        data = self._get(path, {**params, "limit": PAGE_LIMIT, "start": 0})
        while True:
            yield from data.get("results", ())
            following = (data.get("_links") or {}).get("next")
            if not following:
                return
            base = (data.get("_links") or {}).get("base") or self.base
            data = self._get(following if following.startswith("http") else base.rstrip("/") + following)

    def _cql(self) -> str:
        scope = []
        if self.spaces:
            scope.append("space in (" + ", ".join(f'"{s}"' for s in self.spaces) + ")")
        if self.page:
            scope.append(f"(ancestor = {int(self.page)} or id = {int(self.page)})")
        return "type = page and " + " and ".join(scope)

    # -- access --------------------------------------------------------------------------------

    def _members(self, group: str) -> tuple[str, ...]:
        if group not in self._groups:
            emails = [u.get("email") for u in self._paged("rest/api/group/member", {"name": group})]
            self._groups[group] = tuple(sorted(e.lower() for e in emails if e))
        return self._groups[group]

    def _level(self, restrictions: dict | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(users' e-mails, group names) of one page's read restrictions; None when it has none."""
        read = ((restrictions or {}).get("read") or {}).get("restrictions") or {}
        users = [u.get("email") for u in (read.get("user") or {}).get("results", ())]
        groups = [g.get("name") for g in (read.get("group") or {}).get("results", ())]
        if not users and not groups and not any((read.get(k) or {}).get("results") for k in ("user", "group")):
            return None
        return tuple(sorted(u.lower() for u in users if u)), tuple(sorted(g for g in groups if g))

    def _restrictions_of(self, page_id: str, listed: dict[str, dict]) -> tuple | None:
        if page_id not in self._restrictions:
            if page_id in listed:
                self._restrictions[page_id] = self._level(listed[page_id].get("restrictions"))
            else:
                data = self._get(
                    f"rest/api/content/{page_id}/restriction/byOperation/read",
                    {"expand": "restrictions.user,restrictions.group"},
                )
                self._restrictions[page_id] = self._level({"read": data})
        return self._restrictions[page_id]

    def access_of(self, page: dict, listed: dict[str, dict]) -> Access:
        """Who may read `page`: everyone, unless it or an ancestor has read restrictions (then only those
        who pass every level)."""
        levels = [self._restrictions_of(str(a["id"]), listed) for a in page.get("ancestors", ())]
        levels.append(self._restrictions_of(str(page["id"]), listed))
        levels = [level for level in levels if level is not None]
        if not levels:
            return Access()
        readers: set[str] | None = None
        groups: dict[str, tuple[str, ...]] = {}
        for users, names in levels:
            allowed = set(users)
            for name in names:
                groups[name] = self._members(name)
                allowed.update(groups[name])
            readers = allowed if readers is None else readers & allowed
        return Access.restricted(sorted(readers or ()))

    # -- the interface -------------------------------------------------------------------------

    def _listing(self) -> dict[str, dict]:
        return {
            str(p["id"]): p for p in self._paged("rest/api/content/search", {"cql": self._cql(), "expand": EXPAND_LIST})
        }

    def changes(self, cursor: dict | None) -> Iterator[Change]:
        before: dict[str, dict] = dict((cursor or {}).get("pages", {}))
        listed = self._listing()
        pages: dict[str, dict] = {}
        for page_id, page in listed.items():
            version = (page.get("version") or {}).get("number")
            try:
                access = self.access_of(page, listed)
            except KeyError:
                yield Change(page_id, error="Its restrictions could not be read; it is left as it was.")
                if page_id in before:
                    pages[page_id] = before[page_id]
                continue
            digest = hashlib.sha256(repr((access.public, access.readers())).encode()).hexdigest()[:16]
            entry = {"version": version, "access": digest}
            old = before.get(page_id)
            if old == entry:
                pages[page_id] = entry
                continue
            try:
                item = self._item(page_id, access)
            except KeyError:
                continue  # deleted between the listing and now: the next sync says so
            pages[page_id] = entry
            yield Change(page_id, item=item)
        for page_id in sorted(set(before) - set(listed)):
            yield Change(page_id, deleted=True)
        self.cursor = {"pages": pages}

    def _item(self, page_id: str, access: Access) -> Item:
        page = self._get(f"rest/api/content/{page_id}", {"expand": "body.storage,version,space"})
        links = page.get("_links") or {}
        base = links.get("base") or self.base
        version = page.get("version") or {}
        by = version.get("by") or {}
        modified = None
        if version.get("when"):
            modified = dt.datetime.fromisoformat(version["when"].replace("Z", "+00:00"))
        body = ((page.get("body") or {}).get("storage") or {}).get("value") or ""
        title = page.get("title") or f"Page {page_id}"
        document = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{_with_anchors(body)}</body></html>"
        )
        return Item(
            id=page_id,
            title=title,
            link=base.rstrip("/") + (links.get("webui") or f"/pages/viewpage.action?pageId={page_id}"),
            modified=modified,
            owner=by.get("email") or by.get("publicName") or by.get("displayName"),
            access=access,
            media_type="text/html",
            content=document.encode("utf-8"),
            version=str(version.get("number")),
        )

    def fetch(self, item_id: str) -> Item:
        listed = self._listing()
        return self._item(item_id, self.access_of(listed[item_id], listed))

    def ids(self) -> Iterable[str]:
        return [str(p["id"]) for p in self._paged("rest/api/content/search", {"cql": self._cql()})]


def _with_anchors(storage: str) -> str:
    """Give each heading of a page's storage format the anchor Confluence's page view uses for it (the
    heading's text, spaces as hyphens), so answers link to the heading."""

    def add(match: re.Match) -> str:
        level, attrs, inner = match.group(1), match.group(2), match.group(3)
        if "id=" in attrs:
            return match.group(0)
        text = re.sub(r"<[^>]+>", "", inner)
        anchor = re.sub(r"\s+", "-", html.unescape(text).strip())
        return f'<h{level}{attrs} id="{html.escape(anchor, quote=True)}">{inner}</h{level}>'

    return re.sub(r"<h([1-6])([^>]*)>(.*?)</h\1>", add, storage, flags=re.DOTALL | re.IGNORECASE)
