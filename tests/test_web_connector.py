"""The web kind against a real HTTP server on loopback serving the CivicActions Guidebook as an intranet
(sourcestub/web.py): robots.txt, sitemaps, links under the prefix only, redirects, conditional requests,
deletions, time-outs and the pages real sites get wrong. No model, no database: the connector alone."""

from __future__ import annotations

import pytest

from indexer.connectors import SourceError, SourceUnavailable, open_connector
from sourcestub.web import WebSite


@pytest.fixture
def site():
    with WebSite(pages=12, slow_seconds=2.5) as s:
        s.add_specials()
        yield s


def crawl(site, cursor=None, **options):
    options = {"rate": 0, "timeout": 1.0, "max_bytes": 1024 * 1024, **options}
    connector = open_connector("web", site.url("/kb/index.html"), options)
    changes = list(connector.changes(cursor))
    return connector, changes


def by_kind(changes):
    items = {c.id: c.item for c in changes if c.item is not None}
    errors = {c.id: c.error for c in changes if c.error}
    deleted = [c.id for c in changes if c.deleted]
    return items, errors, deleted


def test_a_first_crawl_reads_every_page_under_the_prefix_and_refuses_the_bad_ones_each_with_a_reason(site):
    _connector, changes = crawl(site)
    items, errors, deleted = by_kind(changes)
    for path in site.page_paths:
        assert site.url(path) in items, path
    assert site.url("/kb/renamed.html") in items  # reached through the redirect and the sitemap, once
    assert site.url("/kb/old-name.html") not in items
    assert "Redirect loop" in errors[site.url("/kb/loop-a.html")]
    assert "outside" in errors[site.url("/kb/leaves.html")]
    assert "No answer within 1 s" in errors[site.url("/kb/slow.html")]
    assert "binary data" in errors[site.url("/kb/binary.html")]
    assert "limit" in errors[site.url("/kb/huge.html")] and "1 MB" in errors[site.url("/kb/huge.html")]
    assert deleted == []
    # Never outside the prefix, never what robots.txt disallows.
    assert site.outside_hits == []
    assert "/kb/private/salaries.html" not in site.hits
    # Malformed HTML and a page in ISO-8859-1 are read, as UTF-8 text with their headings.
    broken = items[site.url("/kb/broken.html")].content.decode("utf-8")
    assert "privacy screen" in broken
    latin = items[site.url("/kb/latin1.html")].content.decode("utf-8")
    assert "crème brûlée" in latin and "Zürich" in latin
    # The main content without the navigation and the footer, headings with the page's ids.
    page = items[site.url(site.page_paths[0])].content.decode("utf-8")
    assert "Intranet footer" not in page and "Search</a>" not in page
    assert 'id="guidebook-purpose"' in page
    assert items[site.url(site.page_paths[0])].title == "CivicActions Guidebook"


def test_a_full_pass_asks_every_page_conditionally_and_reports_only_the_edit_and_the_deletion(site):
    connector, _ = crawl(site, full_pass_hours=0)  # 0: every sync is a full pass
    cursor = connector.cursor
    site.reset_hits()
    again, changes = crawl(site, cursor, full_pass_hours=0)
    items, _errors, deleted = by_kind(changes)
    assert items == {} and deleted == []
    # Every page is asked for conditionally and answers 304 (nothing is transferred again).
    assert all(site.not_modified.get(p, 0) == site.hits.get(p) == 1 for p in site.page_paths)
    assert site.connections < len(site.requested) / 3  # 304s, redirects and 404s leave the connection open
    assert site.hits.get("/kb/index.html") == 1

    edited, gone = site.page_paths[3], site.page_paths[5]
    site.set_page(edited, "# Edited page\n\nThe expense limit for team lunches is now 40 dollars per person.")
    site.delete(gone)
    site.reset_hits()
    _, changes = crawl(site, again.cursor, full_pass_hours=0)
    items, _errors, deleted = by_kind(changes)
    assert list(items) == [site.url(edited)]
    assert deleted == [site.url(gone)]
    assert site.hits[edited] == 1 and edited not in site.not_modified
    assert all(site.not_modified.get(p) == 1 for p in site.page_paths if p not in (edited, gone))


def test_a_resync_does_not_request_the_pages_whose_sitemap_lastmod_stayed_and_reads_the_edit_and_the_deletion(site):
    connector, _ = crawl(site, full_pass_hours=24)
    edited, gone = site.page_paths[3], site.page_paths[5]
    site.set_page(edited, "# Edited page\n\nThe expense limit for team lunches is now 40 dollars per person.")
    site.delete(gone)  # out of the sitemap; still linked from the index, which answers 304
    private = site.page_paths[7]
    site.make_private(private)  # 403, and out of the sitemap
    site.reset_hits()
    again, changes = crawl(site, connector.cursor, full_pass_hours=24)
    items, errors, deleted = by_kind(changes)
    assert list(items) == [site.url(edited)] and "40 dollars" in items[site.url(edited)].content.decode()
    assert deleted == [site.url(gone), site.url(private)] and "Made private" in errors[site.url(private)]
    assert [p for p in site.page_paths if p in site.hits] == [edited, gone, private]  # not the other 9
    assert site.not_modified.get("/kb/index.html") == 1  # pages outside the sitemap are still asked
    unchanged = site.url(site.page_paths[0])
    assert again.cursor["pages"][unchanged] == connector.cursor["pages"][unchanged]  # kept, links and all
    assert again.cursor["full_pass_at"] == connector.cursor["full_pass_at"]  # not a full pass
    # A link that led nowhere (every page links /kb/search, a 404) is not asked again before the full pass,
    # unless the sitemap lists it: then it is a new page.
    assert "/kb/search" not in site.hits and site.url("/kb/search") in again.cursor["missing"]
    site.set_page("/kb/search", "# Search tips\n\nUse quotes for exact phrases.")
    site.page_paths.append("/kb/search")
    items, _errors, _deleted = by_kind(crawl(site, again.cursor, full_pass_hours=24)[1])
    assert list(items) == [site.url("/kb/search")]


def test_a_page_edited_or_made_private_without_its_lastmod_moving_is_caught_by_the_next_full_pass(site):
    import datetime as dt

    connector, _ = crawl(site, full_pass_hours=24)
    quiet, private = site.page_paths[1], site.page_paths[2]
    site.set_page_keeping_lastmod(quiet, "# Quietly edited\n\nThe laptop refresh cycle is now four years.")
    site.make_private(private, listed=True)  # a static sitemap that still lists it, lastmod and all
    site.reset_hits()
    _, changes = crawl(site, connector.cursor, full_pass_hours=24)
    items, _errors, deleted = by_kind(changes)
    assert items == {} and deleted == []  # the sitemap says nothing changed: not asked until the full pass
    assert quiet not in site.hits and private not in site.hits

    cursor = dict(connector.cursor)
    cursor["full_pass_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)).isoformat()  # a day later
    site.reset_hits()
    full, changes = crawl(site, cursor, full_pass_hours=24)
    items, errors, deleted = by_kind(changes)
    assert list(items) == [site.url(quiet)] and "four years" in items[site.url(quiet)].content.decode()
    assert deleted == [site.url(private)] and "Made private" in errors[site.url(private)]
    assert all(site.hits.get(p) == 1 for p in [*site.page_paths, "/kb/search"])  # every page and link asked
    assert dt.datetime.fromisoformat(full.cursor["full_pass_at"]) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


def test_by_default_every_sync_is_a_full_pass_so_a_page_made_private_goes_at_the_next_sync(site):
    connector, _ = crawl(site)
    private = site.page_paths[2]
    site.make_private(private, listed=True)  # a static sitemap that still lists it, lastmod and all
    _, changes = crawl(site, connector.cursor)
    _items, errors, deleted = by_kind(changes)
    assert deleted == [site.url(private)] and "Made private" in errors[site.url(private)]


@pytest.mark.slow
def test_robots_crawl_delay_and_request_rate_slow_the_crawl_below_the_configured_rate(site):
    site.robots = "User-agent: *\nCrawl-delay: 1\nDisallow: /kb/private/\n"
    site.page_paths[:] = site.page_paths[:2]
    site.reset_hits()
    connector, _ = crawl(site, rate=0, follow_links=False)  # rate 0: as fast as the site allows
    assert connector.delay == 1.0
    times = [t for t, _path in site.requested]
    assert len(times) >= 5  # robots.txt, the sitemap index, its two sitemaps, the pages
    assert (times[-1] - times[1]) / (len(times) - 2) >= 0.95  # one a second once robots.txt is read
    site.robots = "User-agent: *\nRequest-rate: 1/2\n"
    site.reset_hits()
    connector = open_connector("web", site.url("/kb/index.html"), {"rate": 10})
    assert connector.fetch(site.url(site.page_paths[0])).content
    assert connector.delay == 2.0  # one request every 2 s, though the source allows 10 a second
    assert site.requested[1][0] - site.requested[0][0] >= 1.95


def test_a_page_that_is_no_longer_linked_nor_listed_is_deleted(site):
    connector, _ = crawl(site, follow_links=False)
    gone = site.page_paths[2]
    site.delete(gone)
    _, changes = crawl(site, connector.cursor, follow_links=False)
    assert [c.id for c in changes if c.deleted] == [site.url(gone)]


def test_a_site_that_is_down_rate_limits_or_answers_slowly_fails_as_a_whole(site):
    site.status_override["/robots.txt"] = (503, {})
    with pytest.raises(SourceUnavailable, match="503"):
        crawl(site)
    site.status_override["/robots.txt"] = (429, {"Retry-After": "120"})
    with pytest.raises(SourceUnavailable, match="120 s") as raised:
        crawl(site)
    assert raised.value.retry_after == 120
    del site.status_override["/robots.txt"]
    site.status_override["/kb/index.html"] = (502, {})
    site.sitemap_enabled = False
    with pytest.raises(SourceUnavailable, match="502"):
        crawl(site)


def test_a_huge_sitemap_is_capped_with_a_clear_message(site):
    site.page_paths += [f"/kb/generated/{n}.html" for n in range(30)]
    for n in range(30):
        site.set_page(f"/kb/generated/{n}.html", f"# Generated {n}\n\nText {n}.")
    connector, changes = crawl(site, follow_links=False, max_sitemap_urls=10)
    assert len([c for c in changes if c.item]) <= 10
    assert any("only the first 10 are read" in note for note in connector.notes)


def test_a_target_that_is_not_a_web_address_or_outside_its_prefix_is_refused():
    with pytest.raises(SourceError, match="not a web address"):
        open_connector("web", "intranet/kb", {})
    with pytest.raises(SourceError, match="not under the prefix"):
        open_connector("web", "http://127.0.0.1:1/kb/", {"prefix": "http://127.0.0.1:1/other/"})
