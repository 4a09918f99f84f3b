"""The `web` kind: an intranet site, read politely, and only under one URL prefix.

- robots.txt is honoured (`urllib.robotparser`, for the connector's user agent); a robots.txt that answers
  5xx or cannot be reached stops the sync (the site may be down), as search engines treat it.
- Pages come from a sitemap (also a sitemap index; capped at `max_sitemap_urls` with a message), from the
  start URL and from links, followed under the prefix only. Nothing outside the prefix is ever requested:
  a redirect that leaves it is refused per page, and a redirect loop stops after `MAX_REDIRECTS`.
- With `full_pass_hours` above 0 (default 0: every sync is a full pass), a page whose sitemap `lastmod` is the
  same as at the last sync is not requested: its last version stays. Every `full_pass_hours` (and at the
  first sync) a full pass asks every page anyway, so a page whose lastmod
  did not move (a sitemap that lies, a page made private or deleted but still listed) is caught then.
  Requests are conditional (If-None-Match / If-Modified-Since): 304 means unchanged. 404 and 410 mean the
  page was deleted, 401 and 403 that it was made private (both withdraw it).
- At most `max_pages` pages, at most `rate` requests a second (slower when robots.txt asks for a longer
  Crawl-delay or a lower Request-rate), one request at a time, at most `max_bytes` per page.
- HTML's main content is extracted by trafilatura (headings kept); each heading gets its id from the page
  again, so answers link to the heading's anchor. PDFs are read by the build (pypdf). A page declared in
  another charset is decoded by its declaration and stored as UTF-8.

The cursor keeps, per page, its validators (ETag, Last-Modified, sitemap lastmod), a hash of what was
stored, and the links it had: a page answered 304 or skipped by its lastmod is not fetched, but its links
are still followed. It also keeps the links that led nowhere (404, 410, 401, 403; not asked again before the
next full pass unless the sitemap lists them) and when the last full pass began (`full_pass_at`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import urllib.robotparser
from collections import deque
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import urldefrag, urljoin, urlsplit

import requests

from indexer.connectors.base import Change, Item, SourceError, SourceUnavailable

USER_AGENT = "MomentBot/1.0 (+https://github.com/moment; content sync)"
MAX_REDIRECTS = 5
PAGE_TYPES = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "application/pdf": "application/pdf",
    "text/plain": "text/plain",
    "text/markdown": "text/markdown",
}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class _Refused(Exception):
    """One page that is not read, and why (said to the admin in the sync's failures)."""


class _Gone(Exception):
    """404 or 410: the page was deleted; 401 or 403: made private (Moment may no longer read it)."""


class WebConnector:
    """Pages of one site under one URL prefix."""

    kind = "web"

    def __init__(
        self,
        target: str,
        prefix: str | None = None,
        sitemap: str | None = None,
        max_pages: int = 1000,
        rate: float = 2.0,
        timeout: float = 10.0,
        max_bytes: int = 20 * 1024 * 1024,
        max_sitemap_urls: int = 10_000,
        follow_links: bool = True,
        full_pass_hours: float = 0.0,
        user_agent: str = USER_AGENT,
        secrets: dict | None = None,
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"'{target}' is not a web address: give one like https://intranet.example/kb/.")
        if target.endswith(".xml") and sitemap is None:
            sitemap, target = target, target.rsplit("/", 1)[0] + "/"
        self.start = target
        self.prefix = prefix or (target if target.endswith("/") else target.rsplit("/", 1)[0] + "/")
        if not self.start.startswith(self.prefix) and not (sitemap or "").startswith(self.prefix):
            raise SourceError(f"The start address {target} is not under the prefix {self.prefix}.")
        self.sitemap = sitemap
        self.max_pages = int(max_pages)
        self.rate_delay = 1.0 / float(rate) if rate and float(rate) > 0 else 0.0
        self.delay = self.rate_delay  # seconds between requests: the rate's, or robots.txt's when longer
        self.full_pass_hours = float(full_pass_hours)
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.max_sitemap_urls = int(max_sitemap_urls)
        self.follow_links = bool(follow_links)
        self.user_agent = user_agent
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        if (secrets or {}).get("authorization"):  # an intranet behind a token: sent under the prefix only
            self.session.headers["Authorization"] = secrets["authorization"]
        self.cursor: dict = {}
        self.notes: list[str] = []  # what the admin should know about the whole crawl (a capped sitemap)
        self._robots: urllib.robotparser.RobotFileParser | None = None
        self._last_request = 0.0

    # -- the interface -------------------------------------------------------------------------

    def changes(self, cursor: dict | None) -> Iterator[Change]:
        """Crawl the site; yield pages added or changed (with their content), deleted, or failed."""
        before: dict[str, dict] = dict((cursor or {}).get("pages", {}))
        pages: dict[str, dict] = {}
        full, full_pass_at = self._full_pass(cursor)
        self._load_robots()
        lastmods: dict[str, str | None] = {}
        if self.sitemap:
            lastmods = self._sitemap_urls(self.sitemap)
        queue: deque[str] = deque()
        seen: set[str] = set()

        def enqueue(url: str) -> None:
            url = _normalise(url)
            if url not in seen and self.under_prefix(url):
                seen.add(url)
                queue.append(url)

        if not lastmods or self.follow_links:
            enqueue(self.start)
        for url in lastmods:
            enqueue(url)
        truncated = False
        first = True
        gone: set[str] = set()
        missing_before = set((cursor or {}).get("missing", ()))
        missing: set[str] = set()  # links that answered 404/410 (or 401/403): asked again at the full pass
        while queue:
            url = queue.popleft()
            if len(pages) >= self.max_pages:
                truncated = True
                self.notes.append(
                    f"Stopped at the page limit ({self.max_pages} pages); pages beyond it are neither read nor "
                    "deleted. Raise it with --max-pages."
                )
                break
            if not self._allowed(url):
                continue
            old = before.get(url) or {}
            lastmod = lastmods.get(url)
            if not full and url in missing_before and url not in lastmods:
                missing.add(url)  # a broken link last time, and the sitemap does not list it now
                continue
            if lastmod and old.get("lastmod") == lastmod and not full:
                # The sitemap says it has not changed: not requested until the next full pass.
                pages[url] = old
                for link in old.get("links", ()) if self.follow_links else ():
                    enqueue(link)
                continue
            try:
                result = self._get_page(url, old, strict=first)
            except _Gone as exc:
                missing.add(url)
                if url in before:
                    gone.add(url)
                    yield Change(url, deleted=True)
                    if str(exc):
                        yield Change(url, error=str(exc))
                continue
            except _Refused as exc:
                if old:
                    pages[url] = old  # the last good version keeps answering
                    for link in old.get("links", ()) if self.follow_links else ():
                        enqueue(link)
                yield Change(url, error=str(exc))
                continue
            finally:
                first = False
            final_url, entry, item = result
            if final_url != url:
                if final_url in pages or final_url in seen:
                    continue  # another address of a page read already
                seen.add(final_url)
            if lastmod:
                entry["lastmod"] = lastmod
            pages[final_url] = entry
            for link in entry.get("links", ()) if self.follow_links else ():
                enqueue(link)
            if item is not None and (entry["digest"] != (before.get(final_url) or {}).get("digest")):
                yield Change(final_url, item=item)
        if not truncated:
            for url in sorted(set(before) - set(pages) - gone):
                yield Change(url, deleted=True)  # no longer linked, nor in the sitemap
        else:
            for url in set(before) - set(pages):
                pages[url] = before[url]
        self.cursor = {"pages": pages, "missing": sorted(missing), "full_pass_at": full_pass_at}

    def _full_pass(self, cursor: dict | None) -> tuple[bool, str]:
        """(whether this sync asks every page, when the last full pass began): at the first sync, when the
        last full pass is `full_pass_hours` old, and always when `full_pass_hours` is 0."""
        now = dt.datetime.now(dt.UTC)
        last = (cursor or {}).get("full_pass_at")
        try:
            began = dt.datetime.fromisoformat(last) if last else None
        except (TypeError, ValueError):
            began = None
        due = (
            not (cursor or {}).get("pages")
            or self.full_pass_hours <= 0
            or began is None
            or now - began >= dt.timedelta(hours=self.full_pass_hours)
        )
        return due, now.isoformat() if due else last

    def fetch(self, item_id: str) -> Item:
        self._load_robots()
        if not self._allowed(item_id):
            raise _Refused("robots.txt does not allow reading this page.")
        _url, _entry, item = self._get_page(item_id, {}, strict=False)
        return item

    def ids(self) -> Iterable[str] | None:
        """The pages at the source now, when the sitemap alone says (links not followed); None otherwise: only
        a crawl can tell, and every sync's crawl already deletes the pages it no longer reaches."""
        self._load_robots()
        if self.sitemap and not self.follow_links:
            return [u for u in self._sitemap_urls(self.sitemap) if self._allowed(u)]
        return None

    # -- rules ---------------------------------------------------------------------------------

    def under_prefix(self, url: str) -> bool:
        """True when `url` may be requested: under the prefix (same scheme, host and path start)."""
        return _normalise(url).startswith(self.prefix)

    def _allowed(self, url: str) -> bool:
        return self._robots is None or self._robots.can_fetch(self.user_agent, url)

    def _load_robots(self) -> None:
        parts = urlsplit(self.prefix)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        try:
            response = self._request(robots_url, {})
        except requests.RequestException as exc:
            raise SourceUnavailable(f"The site did not answer ({robots_url}: {_reason(exc)}).") from None
        self._raise_if_unavailable(response, robots_url)
        parser = urllib.robotparser.RobotFileParser(robots_url)
        if response.status_code == 200:
            parser.parse(response.text.splitlines())
        else:
            parser.parse([])  # no robots.txt (4xx): everything may be read
        self._robots = parser
        waits = [self.rate_delay, float(parser.crawl_delay(self.user_agent) or 0)]
        if rate := parser.request_rate(self.user_agent):
            waits.append(rate.seconds / max(rate.requests, 1))
        self.delay = max(waits)
        if not self.sitemap:
            for sitemap in parser.site_maps() or ():
                if self.under_prefix(sitemap):
                    self.sitemap = sitemap
                    break

    def _raise_if_unavailable(self, response: requests.Response, url: str) -> None:
        if response.status_code == 429:
            retry = _retry_after(response.headers.get("Retry-After"))
            wait = f"; it asks to wait {retry:.0f} s" if retry is not None else ""
            raise SourceUnavailable(f"The site is rate-limiting Moment (429 at {url}{wait}).", retry_after=retry)
        if response.status_code in (401, 403) and url.endswith("/robots.txt"):
            raise SourceUnavailable(f"The site refuses Moment ({response.status_code} at {url}): check its access.")
        if response.status_code >= 500:
            raise SourceUnavailable(f"The site answered {response.status_code} at {url}.")

    # -- requests ------------------------------------------------------------------------------

    def _request(self, url: str, headers: dict) -> requests.Response:
        wait = self._last_request + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()
        return self.session.get(url, headers=headers, timeout=self.timeout, allow_redirects=False, stream=True)

    def _get_page(self, url: str, old: dict, *, strict: bool) -> tuple[str, dict, Item | None]:
        """One page: (its final URL, its cursor entry, the item, or None when unchanged). `strict`: a 5xx or
        a time-out means the site is down (the first request of a sync), not one page failing."""
        headers = {}
        if old.get("etag"):
            headers["If-None-Match"] = old["etag"]
        if old.get("last_modified"):
            headers["If-Modified-Since"] = old["last_modified"]
        visited = [url]
        current = url
        while True:
            try:
                response = self._request(current, headers if current == url else {})
            except requests.Timeout:
                if strict:
                    raise SourceUnavailable(f"The site did not answer within {self.timeout:g} s ({current}).") from None
                raise _Refused(f"No answer within {self.timeout:g} s.") from None
            except requests.RequestException as exc:
                if strict:
                    raise SourceUnavailable(f"The site could not be reached ({current}: {_reason(exc)}).") from None
                raise _Refused(f"Could not be read: {_reason(exc)}.") from None
            status = response.status_code
            if status in (301, 302, 303, 307, 308):
                _finish(response)
                target = _normalise(urljoin(current, response.headers.get("Location", "")))
                if not self.under_prefix(target):
                    raise _Refused(f"It redirects outside {self.prefix} (to {target}), which Moment does not follow.")
                if target in visited or len(visited) > MAX_REDIRECTS:
                    raise _Refused(f"Redirect loop: {' -> '.join([*visited, target])}.")
                if not self._allowed(target):
                    raise _Refused(f"It redirects to {target}, which robots.txt does not allow reading.")
                visited.append(target)
                current = target
                continue
            break
        if status == 304:
            _finish(response)
            return current, dict(old), None
        if status in (404, 410):
            _finish(response)
            raise _Gone()
        if status in (401, 403):
            _finish(response)
            if strict:
                raise SourceUnavailable(f"The site refuses Moment ({status} at {current}): check its credentials.")
            raise _Gone(f"Made private at the source ({status}): withdrawn, nobody is answered from it any more.")
        if status == 429 or (strict and status >= 500):
            _finish(response)
            self._raise_if_unavailable(response, current)
        if status != 200:
            _finish(response)
            raise _Refused(f"The site answered {status}.")
        media = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        kind = PAGE_TYPES.get(media)
        if kind is None:
            response.close()
            raise _Refused(f"Not a page Moment reads ({media or 'no content type'}).")
        data = self._read_body(response)
        if kind != "application/pdf" and b"\x00" in data[:65536]:
            raise _Refused(f"It says it is {media} but holds binary data (NUL bytes).")
        links: list[str] = []
        title = None
        if kind == "text/html":
            text = decode_html(data, response.headers.get("Content-Type"))
            links = [u for u in page_links(text, current) if self.under_prefix(u)] if self.follow_links else []
            data, title = main_content(text)
        elif kind in ("text/plain", "text/markdown"):
            data = data.decode(response.encoding or "utf-8", errors="replace").encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        entry = {
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
            "digest": digest,
            "links": links,
        }
        modified = None
        if entry["last_modified"]:
            try:
                modified = parsedate_to_datetime(entry["last_modified"])
            except (TypeError, ValueError):
                modified = None
        item = Item(
            id=current,
            title=title,
            link=current,
            modified=modified,
            media_type=kind,
            content=data,
            version=entry["etag"] or digest,
        )
        return current, entry, item

    def _read_body(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            size = int(declared) / 1_048_576
            raise _Refused(f"It is {size:.1f} MB; the limit is {self.max_bytes / 1_048_576:.0f} MB.")
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Refused(f"It is larger than the limit of {self.max_bytes / 1_048_576:.0f} MB.")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise _Refused(f"The page stopped arriving ({_reason(exc)}).") from None
        finally:
            response.close()
        return b"".join(chunks)

    # -- sitemaps ------------------------------------------------------------------------------

    def _sitemap_urls(self, sitemap: str) -> dict[str, str | None]:
        """{url: lastmod} of a sitemap or sitemap index, under the prefix, at most `max_sitemap_urls`."""
        from lxml import etree

        found: dict[str, str | None] = {}
        pending, done = [sitemap], set()
        total = 0
        while pending:
            url = pending.pop(0)
            if url in done or not self.under_prefix(url):
                continue
            done.add(url)
            try:
                response = self._request(url, {})
                data = self._read_body(response) if response.status_code == 200 else b""
            except (requests.RequestException, _Refused) as exc:
                raise SourceUnavailable(f"The sitemap {url} could not be read ({exc}).") from None
            if response.status_code != 200:
                self._raise_if_unavailable(response, url)
                raise SourceError(f"The sitemap {url} answered {response.status_code}: check the address.")
            try:
                root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
            except etree.XMLSyntaxError as exc:
                raise SourceError(f"The sitemap {url} is not valid XML ({exc}).") from None
            for node in root:
                tag = etree.QName(node).localname
                loc = next((c.text for c in node if etree.QName(c).localname == "loc" and c.text), None)
                lastmod = next((c.text for c in node if etree.QName(c).localname == "lastmod"), None)
                if not loc:
                    continue
                loc = _normalise(loc.strip())
                if tag == "sitemap":
                    pending.append(loc)
                elif tag == "url":
                    total += 1
                    if self.under_prefix(loc) and len(found) < self.max_sitemap_urls:
                        found[loc] = lastmod.strip() if lastmod else None
        if total > self.max_sitemap_urls:
            self.notes.append(
                f"The sitemap lists {total:,} addresses; only the first {self.max_sitemap_urls:,} are read "
                "(raise --max-sitemap-urls, or point the source at a smaller sitemap or prefix)."
            )
        return found


# -- HTML ----------------------------------------------------------------------------------------


def decode_html(data: bytes, content_type: str | None) -> str:
    """The page's text, decoded by the charset its header or its <meta> declares (UTF-8 otherwise)."""
    charset = None
    if content_type and "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
    if charset is None and (match := _META_CHARSET.search(data[:4096])):
        charset = match.group(1).decode("ascii", "ignore")
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def page_links(html: str, base: str) -> list[str]:
    """The links of a page, absolute, without fragments, in order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    out: list[str] = []
    for a in soup.find_all("a", href=True):
        href = a["href"].strip()
        if href.startswith(("mailto:", "javascript:", "tel:")):
            continue
        url = _normalise(urljoin(base, href))
        if url not in out:
            out.append(url)
    return out


def main_content(html: str) -> tuple[bytes, str | None]:
    """The page's main content as a small UTF-8 HTML document with its headings (their ids put back, so
    answers link to the heading), and its title. Falls back to the whole page when the extractor finds
    nothing (the build then reads it, dropping navigation itself)."""
    import trafilatura
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    extracted = trafilatura.extract(
        html, output_format="html", include_formatting=True, include_links=False, include_tables=True, favor_recall=True
    )
    if not extracted:
        return html.encode("utf-8"), title
    ids: dict[str, str] = {}
    for heading in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        anchor = heading.get("id") or (heading.find(id=True) or {}).get("id")
        if anchor is None and heading.parent is not None and heading.parent.name == "section":
            anchor = heading.parent.get("id")
        if anchor:
            ids.setdefault(_heading_key(heading.get_text(" ", strip=True)), anchor)
    out = BeautifulSoup(extracted, "lxml")
    for heading in out.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        anchor = ids.get(_heading_key(heading.get_text(" ", strip=True)))
        if anchor:
            heading["id"] = anchor
    head = out.head or out.new_tag("head")
    if out.head is None and out.html is not None:
        out.html.insert(0, head)
    meta = out.new_tag("meta", charset="utf-8")
    head.insert(0, meta)
    if title:
        tag = out.new_tag("title")
        tag.string = title
        head.append(tag)
    return str(out).encode("utf-8"), title


def _heading_key(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def _finish(response: requests.Response) -> None:
    """Done with an answer whose body is not read: its connection goes back to the pool for the next request
    when what is left is small (a 304, a redirect, a short error page); a longer body closes it."""
    length = response.headers.get("Content-Length", "")
    if response.status_code == 304 or (length.isdigit() and int(length) <= 65536):
        response.raw.drain_conn()
        response.raw.release_conn()
    else:
        response.close()


def _normalise(url: str) -> str:
    url, _fragment = urldefrag(url.strip())
    return url


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"
