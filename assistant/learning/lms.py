"""Reading a course catalogue from an LMS: 360Learning's API v2 `GET /api/v2/paths` (learning paths).

As 360Learning documents it (360learning.readme.io): an access token from `POST /api/v2/oauth2/token`
(client credentials, JSON body), or one given ready-made; every request carries `Authorization: Bearer
<token>` and `360-api-version: v2.0`; the list is paginated (200 paths a page), the next page's URL given in a
`Link: <URL>; rel="next"` header. A next link to another host is not followed (the token would go with it).

Each path becomes a catalogue row: its `name`, its `description` (HTML tags removed), its tags as topics when
it has any, and the address learners open it at, `{platform}/paths/{_id}` (`path_url`), which is also its
xAPI activity id. Archived paths are left out.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from assistant.errors import MomentError

API_VERSION = "v2.0"
MAX_PAGES = 10_000
RETRIES = 3  # on 429 and 5xx, waiting what Retry-After says (at most MAX_WAIT seconds)
MAX_WAIT = 30.0
SKIPPED_STATUSES = ("archived", "deleted")
_TAGS = re.compile(r"<[^>]+>")


class LmsError(MomentError):
    """The LMS could not be read (unreachable, credentials refused, an answer that is not a list of paths)."""


def path_url(base_url: str, path_id: str) -> str:
    """Where a learner opens a 360Learning path."""
    return f"{base_url.rstrip('/')}/paths/{path_id}"


class Learning360:
    """A client of 360Learning's API v2, for the paths of the catalogue."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LmsError(f"{base_url!r} is not the address of a 360Learning platform (https://…)")
        if not token and not (client_id and client_secret):
            raise LmsError("360Learning needs an access token (--token) or API credentials (client id and secret)")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._credentials = (client_id, client_secret)
        self.timeout = timeout
        self._session = session or requests.Session()

    def __repr__(self) -> str:  # never the token
        return f"Learning360(base_url={self.base_url!r})"

    def _access_token(self) -> str:
        if self._token:
            return self._token
        client_id, client_secret = self._credentials
        response = self._request(
            "POST",
            f"{self.base_url}/api/v2/oauth2/token",
            json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            headers={"accept": "application/json"},
        )
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise LmsError("360Learning's token endpoint answered without an access_token")
        self._token = str(token)
        return self._token

    def paths(self) -> Iterator[dict]:
        """Every path of the platform, page after page."""
        url: str | None = f"{self.base_url}/api/v2/paths"
        host = urlsplit(self.base_url).netloc
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._request(
                "GET",
                url,
                headers={
                    "accept": "application/json",
                    "360-api-version": API_VERSION,
                    "Authorization": f"Bearer {self._access_token()}",
                },
            )
            page = _json(response)
            if not isinstance(page, list):
                raise LmsError(f"360Learning answered {url} with something other than a list of paths")
            yield from (p for p in page if isinstance(p, dict))
            url = (response.links.get("next") or {}).get("url")
            if url and urlsplit(url).netloc != host:
                raise LmsError(f"360Learning's next page is on another host ({urlsplit(url).netloc}); not followed")
        raise LmsError(f"360Learning gave more than {MAX_PAGES} pages of paths")

    def rows(self) -> Iterator[tuple[str, dict]]:
        """The paths as catalogue rows (where, fields), for `assistant.learning.catalogue.entries_from`."""
        for n, path in enumerate(self.paths(), start=1):
            if str(path.get("status", "")).lower() in SKIPPED_STATUSES:
                continue
            path_id = str(path.get("_id") or "")
            where = f"path {path_id or n}"
            tags = path.get("tags")
            yield (
                where,
                {
                    "title": path.get("name"),
                    "url": path_url(self.base_url, path_id) if path_id else None,
                    "description": _plain(path.get("description")),
                    "topics": tags if isinstance(tags, list) else None,
                    "duration": path.get("duration"),
                },
            )

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        for attempt in range(RETRIES + 1):
            try:
                response = self._session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                raise LmsError(f"360Learning unreachable at {urlsplit(url).netloc}: {type(exc).__name__}") from None
            if response.status_code in (429, 502, 503, 504) and attempt < RETRIES:
                time.sleep(_retry_after(response, attempt))
                continue
            if response.status_code == 401:
                raise LmsError("360Learning refused the credentials (401): check the token or client id and secret")
            if response.status_code == 403:
                raise LmsError("360Learning refused access to paths (403): the credentials need the paths:read scope")
            if response.status_code >= 400:
                raise LmsError(f"360Learning answered {method} {urlsplit(url).path} with HTTP {response.status_code}")
            return response
        raise AssertionError("unreachable")


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        return min(MAX_WAIT, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return min(MAX_WAIT, 0.5 * 2**attempt)


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        raise LmsError(f"360Learning answered {urlsplit(response.url).path} with something other than JSON") from None


def _plain(value) -> str:
    """A description as text (360Learning's may be HTML)."""
    if not isinstance(value, str):
        return ""
    return html.unescape(_TAGS.sub(" ", value))
