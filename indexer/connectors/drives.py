"""What the cloud-drive kinds (`sharepoint` through Microsoft Graph, `gdrive` through the Drive API) share:

- `BearerApi`: a JSON API behind an OAuth bearer token. The token is fetched when first needed, fetched again
  a minute before it expires and once more when the API answers 401 (revoked or expired early). A rate limit
  (429, 503, or what `throttled` recognises, like Drive's 403 rateLimitExceeded) is waited out when the wait
  is short (Retry-After when the API gives one, else exponential backoff) and otherwise raised as
  `SourceUnavailable` with the wait, so the sync fails as a whole and the last good items keep answering.
- `FolderTree`: which folders are inside the source's folder, kept in the cursor, so an item moved out of
  it, or under a folder that was deleted or moved out, is removed.
- `file_kind`: what Moment reads a file as, by its name and media type.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import requests

from indexer.connectors.base import Access, Change, SourceError, SourceUnavailable
from indexer.connectors.web import _reason, _retry_after, decode_html, main_content

TokenFetcher = Callable[[requests.Session], tuple[str, float]]  # -> (access token, lifetime in seconds)


class Gone(Exception):
    """410: the cursor is no longer valid at the source (Graph's resyncRequired); list everything again."""


class Forbidden(SourceUnavailable):
    """403 that is not a rate limit: Moment's account may not read this."""


class TooLarge(Exception):
    """A file over the size limit; the message says how large."""


@dataclass
class _Token:
    value: str
    renew_at: float  # time.monotonic()


class BearerApi:
    """Requests to one vendor's API (`vendor` names it in messages) with a bearer token from `fetch_token`."""

    def __init__(
        self,
        vendor: str,
        fetch_token: TokenFetcher,
        *,
        timeout: float = 20.0,
        max_wait: float = 60.0,
        retries: int = 5,
        throttled: Callable[[requests.Response], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vendor = vendor
        self.fetch_token = fetch_token
        self.timeout = float(timeout)
        self.max_wait = float(max_wait)
        self.retries = int(retries)
        self.throttled = throttled or (lambda response: False)
        self.sleep = sleep
        self.session = requests.Session()
        self.downloads = requests.Session()  # pre-authenticated download URLs: never send the token there
        self._token: _Token | None = None
        self.tokens_fetched = 0
        self.waited = 0.0

    def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token.renew_at:
            value, lifetime = self.fetch_token(self.session)
            self.tokens_fetched += 1
            lifetime = float(lifetime)
            self._token = _Token(value, time.monotonic() + lifetime - min(60.0, lifetime / 10))
        return self._token.value

    def request(self, url: str, params: dict | None = None, *, headers: dict | None = None, **kwargs):
        """A GET to `url` with the token; 401 renews the token once, rate limits are waited out or raised."""
        renewed = False
        attempt = 0
        while True:
            try:
                response = self.session.get(
                    url,
                    params=params,
                    headers={**(headers or {}), "Authorization": f"Bearer {self.token()}"},
                    timeout=self.timeout,
                    **kwargs,
                )
            except requests.Timeout:
                raise SourceUnavailable(f"{self.vendor} did not answer within {self.timeout:g} s.") from None
            except requests.RequestException as exc:
                raise SourceUnavailable(f"{self.vendor} could not be reached ({_reason(exc)}).") from None
            status = response.status_code
            if status == 401 and not renewed:
                response.close()
                self._token, renewed = None, True
                continue
            if status == 429 or status == 503 or self.throttled(response):
                response.close()
                retry = _retry_after(response.headers.get("Retry-After"))
                wait = retry if retry is not None else min(2.0**attempt, 30.0)
                if attempt < self.retries and self.waited + wait <= self.max_wait:
                    self.sleep(wait)
                    self.waited += wait
                    attempt += 1
                    continue
                raise SourceUnavailable(
                    f"{self.vendor} is rate-limiting Moment ({status}"
                    f"{f', retry in {retry:.0f} s' if retry else ''}); the next sync tries again.",
                    retry,
                )
            if status == 401:
                response.close()
                raise SourceUnavailable(
                    f"{self.vendor} refused Moment's token (401) even after renewing it: the app's access may have "
                    "been revoked. Check the credentials where the source's settings name them."
                )
            if status == 403:
                response.close()
                raise Forbidden(f"{self.vendor} does not let Moment's account read this (403 at {_path(url)}).")
            if status >= 500:
                response.close()
                raise SourceUnavailable(f"{self.vendor} answered {status}.")
            return response

    def json(self, url: str, params: dict | None = None, *, headers: dict | None = None) -> dict:
        """The JSON of a GET; KeyError for 404, `Gone` for 410, `SourceError` for another refusal."""
        response = self.request(url, params, headers=headers)
        if response.status_code == 404:
            raise KeyError(_path(url))
        if response.status_code == 410:
            raise Gone(_path(url))
        if response.status_code != 200:
            raise SourceError(f"{self.vendor} answered {response.status_code} to {_path(url)}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise SourceUnavailable(f"{self.vendor} answered {_path(url)} with something other than JSON.") from None

    def body(self, response: requests.Response, max_bytes: int) -> bytes:
        """A file's bytes, stopping at `max_bytes` (`TooLarge`)."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            response.close()
            raise TooLarge(too_large(int(declared), max_bytes))
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"It is larger than the limit of {_mb(max_bytes)} MB (max_bytes).")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"A file from {self.vendor} stopped arriving ({_reason(exc)}).") from None
        finally:
            response.close()
        return b"".join(chunks)


def too_large(size: int, max_bytes: int) -> str:
    return f"It is {_mb(size)} MB; the limit is {_mb(max_bytes)} MB (max_bytes)."


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.3g}"


def _path(url: str) -> str:
    return url.split("?")[0]


class FolderTree:
    """The folders under `root` (folder id -> parent id), as a connector learns them from listings and
    changes; JSON-serialisable through `folders`."""

    def __init__(self, root: str, folders: dict[str, str | None] | None = None) -> None:
        self.root = root
        self.folders: dict[str, str | None] = dict(folders or {})

    def add(self, folder_id: str, parent: str | None) -> None:
        self.folders[folder_id] = parent

    def remove(self, folder_id: str) -> None:
        self.folders.pop(folder_id, None)

    def contains(self, folder_id: str | None) -> bool:
        """Whether `folder_id` is the root or a folder under it (following parents, not through a removed one)."""
        seen = 0
        while folder_id is not None and seen <= len(self.folders) + 1:
            if folder_id == self.root:
                return True
            if folder_id not in self.folders:
                return False
            folder_id = self.folders[folder_id]
            seen += 1
        return False


# A file's name ending -> what Moment reads it as. Office documents are converted to PDF by the source
# (Graph's `?format=pdf`); the connector says which it can convert.
BY_EXTENSION = {
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
}


def file_kind(name: str, media_type: str | None = None) -> str | None:
    """What Moment reads a file called `name` as (a media type of `indexer.connectors.Item`), or None."""
    lower = name.lower()
    for ending, kind in BY_EXTENSION.items():
        if lower.endswith(ending):
            return kind
    if media_type in BY_EXTENSION.values():
        return media_type
    return None


def readable(data: bytes, kind: str) -> tuple[bytes, str | None]:
    """A file's bytes as Moment stores them (text as UTF-8; HTML's main content, with its title) and the title
    found in it; ValueError when it is not what its name says (binary data under a text name)."""
    if kind == "application/pdf":
        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise ValueError("It is named as a PDF but is not one; it was not read.")
        return data, None
    if b"\x00" in data[:65536]:
        raise ValueError(f"It is named as {kind} but holds binary data (NUL bytes); it was not read.")
    if kind == "text/html":
        return main_content(decode_html(data, None))
    try:
        return data.decode("utf-8").encode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace").encode("utf-8"), None


def paged(fetch: Callable[[str | None], dict], next_of: Callable[[dict], str | None]) -> Iterator[dict]:
    """Every page of a paged listing: `fetch(None)` first, then `fetch(next)` while `next_of(page)` says more."""
    page = fetch(None)
    while True:
        yield page
        following = next_of(page)
        if not following:
            return
        page = fetch(following)


@dataclass(frozen=True)
class Entry:
    """One file or folder as a listing or a change names it."""

    id: str
    parent: str | None = None
    deleted: bool = False  # removed, trashed, or no longer visible to Moment
    folder: bool = False
    readable: bool = True  # a kind Moment reads
    raw: dict | None = None


def drive_changes(
    entries: Iterable[Entry],
    items: dict[str, dict],
    tree: FolderTree,
    *,
    full: bool,
    change_of: Callable[[dict, dict | None], tuple[Change | None, dict | None]],
    skipped: list[str],
) -> Iterator[Change]:
    """The changes of a drive listing or change feed, updating `items` (id -> cursor state) and `tree` in place.
    `full`: the entries are everything there is, so an item not among them is gone. `change_of(raw, old)`
    gives one file's change and new state (None: keep the old state); files of kinds Moment does not read
    are added to `skipped`."""
    seen: set[str] = set()
    for entry in entries:
        if entry.deleted:
            tree.remove(entry.id)
            if items.pop(entry.id, None) is not None:
                yield Change(entry.id, deleted=True)
            continue
        if entry.folder:
            if entry.id != tree.root:
                if tree.contains(entry.parent):
                    tree.add(entry.id, entry.parent)
                else:
                    tree.remove(entry.id)  # moved out: what is under it goes below
            continue
        seen.add(entry.id)
        if not tree.contains(entry.parent):
            if items.pop(entry.id, None) is not None:
                yield Change(entry.id, deleted=True)  # moved out of the folder
            continue
        if not entry.readable:
            skipped.append(entry.id)
            continue
        change, state = change_of(entry.raw or {}, items.get(entry.id))
        if state is not None:
            items[entry.id] = state | {"parent": entry.parent}
        if change is not None:
            yield change
    gone = set(items) - seen if full else set()
    # Items under a folder deleted or moved out: the feed names only the folder.
    gone |= {i for i, state in items.items() if not tree.contains(state.get("parent"))}
    for item_id in sorted(gone):
        del items[item_id]
        yield Change(item_id, deleted=True)


def file_change(
    item_id: str,
    old: dict | None,
    version: dict,
    size: int | None,
    max_bytes: int,
    access_of: Callable[[str], Access],
    item_of: Callable[[Access], object],
) -> tuple[Change | None, dict | None]:
    """One file's change and its new cursor state (None: keep the old state), the same for every drive kind:
    unchanged when its `version` and readers are; over `max_bytes` or unreadable, an error that keeps the last
    good copy; gone meanwhile (KeyError), nothing (the next listing says so)."""
    try:
        access = access_of(item_id)
    except KeyError:
        return None, None
    state = {**version, "access": access_digest(access)}
    if old is not None and {k: old.get(k) for k in state} == state:
        return None, state
    if size is not None and size > max_bytes:
        return Change(item_id, error=too_large(size, max_bytes) + " The last good copy stays."), None
    try:
        item = item_of(access)
    except KeyError:
        return None, None
    except (TooLarge, ValueError) as exc:
        return Change(item_id, error=f"{exc} The last good copy stays."), None
    return Change(item_id, item=item), state


def access_digest(access: Access) -> str:
    """A short fingerprint of who may read an item: a change of readers changes it."""
    return hashlib.sha256(repr((access.public, access.readers())).encode()).hexdigest()[:16]


def json_of(response: requests.Response) -> dict:
    """A response's JSON object, or {} when it has none."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
