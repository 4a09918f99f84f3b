"""A real intranet on 127.0.0.1 for the web source: the CivicActions Guidebook pages rendered to HTML.

The pages come from ../shared/corpora/civicactions-guidebook/ ("CivicActions Guidebook" © 2017-2024
CivicActions, CC BY 4.0; every page served carries that notice, and /kb/LICENSE.html serves the licence).
The site has what real intranets have: navigation and a footer around the content, heading ids, a
robots.txt (one folder disallowed, the sitemap named), a sitemap index with two sitemaps and lastmod dates,
ETag and Last-Modified with 304s, a redirect, a redirect loop, a redirect out of the prefix, a page that
answers too slowly, malformed HTML, a page in ISO-8859-1, binary data under an .html name, a huge page, and
pages outside the prefix that must never be requested. Tests change pages (`set_page`, `delete`) and read
what was requested (`hits`).

    with WebSite(pages=20) as site:
        site.url("/kb/index.html")
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "civicactions-guidebook"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpora/civicactions-guidebook")
NOTICE = (
    '<p class="licence">From the "CivicActions Guidebook" © 2017-2024 CivicActions, licensed under '
    '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>; converted to HTML.</p>'
)


LUNCH = "# Team lunches\n\nThe expense limit for team lunches is 25 dollars per person, receipts in Expensify."
LUNCH_EDITED = "# Team lunches\n\nThe expense limit for team lunches is now 40 dollars per person, since March."


@contextlib.contextmanager
def lunch_site(pages: int = 10):
    """A site of `pages` guidebook pages and /kb/lunch.html (`LUNCH`), started and stopped."""
    with WebSite(pages=pages) as site:
        site.set_page("/kb/lunch.html", LUNCH)
        site.page_paths.append("/kb/lunch.html")
        yield site


def slug(text: str) -> str:
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def render(markdown: str, title: str | None = None, links: list[str] = ()) -> str:
    """A guidebook page as an intranet would serve it: navigation, the content with heading ids, a footer."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    body = re.sub(r'href="([^"#:]+)\.md(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)

    def with_id(match: re.Match) -> str:
        level, text = match.group(1), match.group(2)
        plain = re.sub(r"<[^>]+>", "", text)
        return f'<h{level} id="{slug(plain)}">{text}</h{level}>'

    body = re.sub(r"<h([1-6])>(.*?)</h\1>", with_id, body)
    title = title or (re.search(r"^# (.+)$", markdown, re.MULTILINE) or [None, "Page"])[1]
    nav = " | ".join(f'<a href="{link}">{link.rsplit("/", 1)[-1]}</a>' for link in links)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<header><nav><a href='/kb/index.html'>Home</a> | <a href='/kb/search'>Search</a> {nav}</nav></header>"
        f"<main><article>{body}</article></main><footer>{NOTICE}<p>Intranet footer: contact IT.</p></footer>"
        "</body></html>"
    )


def guidebook_pages(limit: int | None = None) -> dict[str, str]:
    """{relative .md path: Markdown} of the guidebook, sorted."""
    root = CORPUS / "corpus"
    files = sorted(root.rglob("*.md"))
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in files[:limit]}


class WebSite:
    """The site: `pages` guidebook pages under /kb/ (or `markdown`, {path: text}), plus the special pages."""

    def __init__(self, pages: int | None = 20, markdown: dict[str, str] | None = None, slow_seconds: float = 3.0):
        self.lock = threading.Lock()
        self.files: dict[str, tuple[bytes, str, float]] = {}  # path -> (body, content type, modified)
        self.redirects: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.not_modified: dict[str, int] = {}  # path -> 304 answers
        self.requested: list[tuple[float, str]] = []  # (time.monotonic(), path) of every request, in order
        self.connections = 0  # TCP connections accepted
        self.outside_hits: list[str] = []
        self.slow_seconds = slow_seconds
        self.robots = "User-agent: *\nDisallow: /kb/private/\n"
        self.sitemap_enabled = True
        self.status_override: dict[str, tuple[int, dict]] = {}  # path -> (status, headers): 5xx, 429
        self.unlisted: set[str] = set()  # pages left out of the sitemap (made private)
        markdown = markdown if markdown is not None else guidebook_pages(pages)
        self.page_paths = []
        for rel, text in markdown.items():
            path = "/kb/" + rel[:-3] + ".html"
            self.page_paths.append(path)
            self.files[path] = (render(text).encode("utf-8"), "text/html; charset=utf-8", time.time() - 86400)
        index_links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in self.page_paths)
        head = "<html><head><title>Knowledge base</title></head><body><main><h1>Knowledge base</h1>"
        self._put("/kb/index.html", f"{head}<p>The guidebook.</p><ul>{index_links}</ul></main>{NOTICE}</body></html>")
        self._put("/kb/LICENSE.html", render((CORPUS / "LICENSE.md").read_text(encoding="utf-8"), "Licence"))
        self._put("/kb/private/salaries.html", render("# Salaries\n\nSecret salary bands for everyone."))
        self._put("/outside/secret.html", render("# Outside\n\nNever read this."))
        self.server: ThreadingHTTPServer | None = None

    # -- changing the site ---------------------------------------------------------------------------

    def _put(self, path: str, html: str | bytes, content_type: str = "text/html; charset=utf-8") -> None:
        data = html.encode("utf-8") if isinstance(html, str) else html
        with self.lock:
            self.files[path] = (data, content_type, time.time())

    def set_page(self, path: str, markdown: str) -> None:
        """Create or edit a page (its ETag and Last-Modified change)."""
        self._put(path, render(markdown))

    def set_page_keeping_lastmod(self, path: str, markdown: str) -> None:
        """Edit a page but keep its modified time (its sitemap lastmod and Last-Modified lie; the ETag changes)."""
        modified = self.files[path][2]
        self.set_page(path, markdown)
        with self.lock:
            body, ctype, _ = self.files[path]
            self.files[path] = (body, ctype, modified)

    def make_private(self, path: str, listed: bool = False) -> None:
        """The page now answers 403 to Moment. A CMS's sitemap lists only the pages its reader may see (WordPress
        core sitemaps, Drupal's xmlsitemap): it leaves the sitemap too, unless `listed` (a static sitemap)."""
        with self.lock:
            self.status_override[path] = (403, {})
            if not listed:
                self.unlisted.add(path)

    def make_public(self, path: str) -> None:
        with self.lock:
            self.status_override.pop(path, None)
            self.unlisted.discard(path)

    def delete(self, path: str) -> None:
        with self.lock:
            self.files.pop(path, None)

    def add_specials(self) -> None:
        """The pages a real site gets wrong, linked from the index."""
        self.redirects["/kb/old-name.html"] = "/kb/renamed.html"
        self.set_page("/kb/renamed.html", "# Renamed page\n\nThe travel booking tool moved to Navan in 2024.")
        self.redirects["/kb/loop-a.html"] = "/kb/loop-b.html"
        self.redirects["/kb/loop-b.html"] = "/kb/loop-a.html"
        self.redirects["/kb/leaves.html"] = "/outside/secret.html"
        self._put("/kb/slow.html", render("# Slow\n\nThis page answers too late."))
        self._put("/kb/broken.html", "<html><head><title>Broken markup</title><body><h1>Broken markup<h2 id=kit>"
                  "Laptop kit</h2><p>Every new starter receives a laptop bag and a privacy screen<p>Unclosed "
                  "<b>bold <i>tags</div></span> everywhere<table><tr><td>cell</body>")  # fmt: skip
        latin = render("# Café opening hours\n\nThe café in the Zürich office opens at 08:00; crème brûlée "
                       "on Fridays.").replace("charset='utf-8'", "charset='iso-8859-1'")  # fmt: skip
        self._put("/kb/latin1.html", latin.encode("iso-8859-1"), "text/html; charset=ISO-8859-1")
        self._put("/kb/binary.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
        self._put("/kb/huge.html", b"<html><body><p>" + b"big " * (3 * 1024 * 1024 // 4) + b"</p></body></html>")
        links = ["old-name", "loop-a", "leaves", "slow", "broken", "latin1", "binary", "huge", "private/salaries"]
        extra = "".join(f'<li><a href="/kb/{name}.html">{name}</a></li>' for name in links)
        body, ctype, _ = self.files["/kb/index.html"]
        self._put("/kb/index.html", body.replace(b"</ul>", extra.encode() + b"<li><a href='/outside/secret.html'>"
                  b"out</a></li></ul>"), ctype)  # fmt: skip

    # -- serving -------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def sitemap_xml(self, paths: list[str]) -> bytes:
        entries = "".join(
            f"<url><loc>{self.url(p)}</loc><lastmod>{_iso(self.files[p][2])}</lastmod></url>"
            for p in paths
            if p in self.files
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{entries}</urlset>"
        ).encode()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            self.requested.append((time.monotonic(), path))
        if path.startswith("/outside/"):
            self.outside_hits.append(path)
        if path in self.status_override:
            status, headers = self.status_override[path]
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path == "/robots.txt":
            sitemap = f"Sitemap: {self.url('/kb/sitemap.xml')}\n" if self.sitemap_enabled else ""
            return self._send(handler, 200, (self.robots + sitemap).encode(), "text/plain")
        if path == "/kb/sitemap.xml" and self.sitemap_enabled:
            index = (
                '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9"><sitemap><loc>{self.url("/kb/sitemap-1.xml")}</loc></sitemap><sitemap><loc>'
                f"{self.url('/kb/sitemap-2.xml')}</loc></sitemap></sitemapindex>"
            )
            return self._send(handler, 200, index.encode(), "application/xml")
        if path in ("/kb/sitemap-1.xml", "/kb/sitemap-2.xml") and self.sitemap_enabled:
            with self.lock:
                pages = [p for p in self.page_paths if p in self.files and p not in self.unlisted] + [
                    p for p in self.files if p not in self.page_paths and p.startswith("/kb/renamed")
                ]
            half = len(pages) // 2
            chosen = pages[:half] if path.endswith("1.xml") else pages[half:]
            return self._send(handler, 200, self.sitemap_xml(chosen), "application/xml")
        if path in self.redirects:
            handler.send_response(301)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path == "/kb/slow.html":
            time.sleep(self.slow_seconds)
        with self.lock:
            found = self.files.get(path)
        if found is None:
            return self._send(handler, 404, b"<html><body><h1>Not found</h1></body></html>", "text/html")
        body, ctype, modified = found
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        last_modified = email.utils.formatdate(modified, usegmt=True)
        if handler.headers.get("If-None-Match") == etag:
            with self.lock:
                self.not_modified[path] = self.not_modified.get(path, 0) + 1
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        self._send(handler, 200, body, ctype, {"ETag": etag, "Last-Modified": last_modified})

    @staticmethod
    def _send(handler, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def start(self) -> WebSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers do: keep-alive answers are not held back 40 ms

            def do_GET(self):
                site._answer(self)

            def handle(self):
                with site.lock:
                    site.connections += 1
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()  # a client may stop reading (a page over its size limit)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> WebSite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset_hits(self) -> None:
        with self.lock:
            self.hits.clear()
            self.not_modified.clear()
            self.requested.clear()
            self.connections = 0
            self.outside_hits.clear()


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(timestamp))
