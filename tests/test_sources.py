"""Content sources that stay in sync: the registry in the database, the folder and web kinds synced through
the one indexing path, deletions, a source that fails as a whole, the lease, the CLI.

Real model, FAISS, SQLite and PostgreSQL; the web source reads a real HTTP server on loopback serving the
CivicActions Guidebook (sourcestub/web.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import update

from assistant.answering.retrieval import Retriever
from assistant.db.models import ContentSource, utcnow
from assistant.operations import IndexOperations
from assistant.settings import load_settings
from assistant.sources import DEFAULT_SOURCE, SourceBusy, SourceError, Sources
from indexer.store import IndexStore
from sourcestub.web import LUNCH_EDITED, lunch_site

pytestmark = pytest.mark.slow  # each syncs and builds with the real model


@pytest.fixture
def site():
    with lunch_site(10) as s:
        yield s


@pytest.fixture
def deployment(tmp_path, content, database, embedder):
    content.vpn_token_page()
    settings = load_settings(home=tmp_path / "home", content_dir=content.root, index_dir_override=tmp_path / "index")
    store = IndexStore(tmp_path / "index")
    operations = IndexOperations(settings, database, store, embedder)
    return operations, Sources(operations), Retriever(store, embedder, reload_interval=0)


def top(retriever, question, viewer=None):
    hits = retriever.search(question, k=3, viewer=viewer).hits
    return [h.doc.path for h in hits], hits


def test_the_content_folder_is_the_default_source_and_syncing_it_builds_it_as_moment_index_does(deployment):
    _operations, sources, retriever = deployment
    names = [(s.name, s.kind) for s in sources.list()]
    assert names == [(DEFAULT_SOURCE, "folder")]
    result = sources.sync(DEFAULT_SOURCE)
    assert (result.status, result.added, result.items) == ("ok", 1, 1)
    assert [d.path for d in retriever.version().documents] == ["it/vpn-token.md"]  # paths as before
    again = sources.sync(DEFAULT_SOURCE)
    assert (again.added, again.changed, again.deleted, again.published) == (0, 0, 0, False)
    with pytest.raises(SourceError, match="cannot be removed"):
        sources.remove(DEFAULT_SOURCE)


def test_a_folder_source_is_indexed_under_its_name_and_a_file_deleted_there_stops_answering(deployment, tmp_path):
    from conftest import ContentFolder

    _operations, sources, retriever = deployment
    handbook = ContentFolder(tmp_path / "handbook")
    handbook.markdown(
        "travel.md", "Book travel", "Flights are booked in Navan; economy class for flights under 6 hours.\n"
    )
    handbook.markdown("parking.md", "Office parking", "Parking permits are issued by facilities each January.\n")
    sources.add("folder", "handbook", str(handbook.root))
    result = sources.sync("handbook")
    assert (result.status, result.added, result.items) == ("ok", 2, 2)
    paths, _ = top(retriever, "which class do I book for flights under 6 hours")
    assert paths[0] == "handbook/travel.md"
    handbook.remove("travel.md")
    result = sources.sync("handbook")
    assert (result.deleted, result.items) == (1, 1)
    assert "handbook/travel.md" not in {d.path for d in retriever.version().documents}
    sources.remove("handbook")
    assert {d.path for d in retriever.version().documents} == {"it/vpn-token.md"}


def test_a_web_source_syncs_edits_and_deletions_and_embeds_only_what_changed(deployment, site):
    _operations, sources, retriever = deployment
    # full_pass_hours 24: between full passes, pages whose sitemap lastmod stayed are not requested
    sources.add("web", "intranet", site.url("/kb/index.html"), options={"rate": 0, "timeout": 5, "full_pass_hours": 24})
    first = sources.sync("intranet")
    assert first.status == "ok", first.failures
    read = {d.meta.url for d in retriever.version().documents}
    assert {site.url(p) for p in site.page_paths} | {site.url("/kb/index.html")} <= read
    assert first.added == len(read) - 1  # every page read but the content folder's
    paths, hits = top(retriever, "what is the expense limit for team lunches")
    lunch = next(p for p in paths if p.startswith("intranet/lunch-"))
    assert paths[0] == lunch
    doc = retriever.version().by_path[lunch]
    assert doc.meta.url == site.url("/kb/lunch.html") and doc.meta.reviewed is not None
    assert "25 dollars" in hits[0].chunk.text

    site.set_page("/kb/lunch.html", LUNCH_EDITED)
    site.reset_hits()
    second = sources.sync("intranet")
    assert (second.added, second.changed, second.deleted) == (0, 1, 0)
    assert site.hits.get("/kb/lunch.html") == 1 and "/kb/lunch.html" not in site.not_modified
    assert sum(site.hits.get(p, 0) - site.not_modified.get(p, 0) for p in site.page_paths) == 1  # one page sent
    assert [p for p in site.page_paths if p in site.hits] == ["/kb/lunch.html"]  # the others: same sitemap lastmod
    paths, hits = top(retriever, "what is the expense limit for team lunches")
    assert paths[0] == lunch and "40 dollars" in hits[0].chunk.text

    site.delete("/kb/lunch.html")
    third = sources.sync("intranet")
    assert third.deleted == 1
    assert lunch not in {d.path for d in retriever.version().documents}
    view = sources.show("intranet")
    assert view.last_status == "ok" and view.items == first.items - 1
    assert view.next_run_at is not None and view.next_run_at > utcnow()


def test_a_source_that_fails_as_a_whole_keeps_its_last_good_items_answering_and_says_so(deployment, site):
    _operations, sources, retriever = deployment
    sources.add("web", "intranet", site.url("/kb/index.html"), options={"rate": 0})
    sources.sync("intranet")
    version = retriever.version().version
    cursor_before = sources.show("intranet").last_good_at
    site.status_override["/robots.txt"] = (429, {"Retry-After": "600"})
    result = sources.sync("intranet")
    assert result.status == "failed" and "429" in result.error and "keep answering" in result.error
    assert retriever.version().version == version  # nothing rebuilt
    paths, _ = top(retriever, "what is the expense limit for team lunches")
    assert paths[0].startswith("intranet/lunch-"), paths
    view = sources.show("intranet")
    assert view.last_status == "failed" and view.last_good_at == cursor_before
    assert view.next_run_at >= utcnow() + dt.timedelta(seconds=590)  # no sooner than the site asked
    del site.status_override["/robots.txt"]
    assert sources.sync("intranet").status == "ok"


def test_one_item_that_fails_never_stops_the_others_and_is_listed_with_its_reason(deployment, site):
    _operations, sources, retriever = deployment
    site.add_specials()
    sources.add("web", "intranet", site.url("/kb/index.html"), options={"rate": 0, "timeout": 1, "max_bytes": 1 << 20})
    result = sources.sync("intranet")
    assert result.status == "partial"
    reasons = {f["id"].rsplit("/", 1)[-1]: f["reason"] for f in result.failures}
    assert set(reasons) >= {"loop-a.html", "leaves.html", "slow.html", "binary.html", "huge.html"}
    assert any(d.path.startswith("intranet/latin1-") for d in retriever.version().documents)
    assert sources.show("intranet").last_failures == result.failures


def test_two_syncs_of_one_source_never_run_at_once(deployment, site, database):
    operations, sources, _retriever = deployment
    sources.add("web", "intranet", site.url("/kb/index.html"), options={"rate": 0})
    other_host = Sources(operations)
    other_host._claim("intranet")  # another process holds the lease
    with pytest.raises(SourceBusy, match="already syncing"):
        sources.sync("intranet")
    with database.session() as session:  # its lease runs out (the process died)
        session.execute(
            update(ContentSource)
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
            .where(ContentSource.name == "intranet")
        )
    assert sources.sync("intranet").status == "ok"


def test_credentials_are_never_stored_with_a_source_and_bad_names_are_refused(deployment, tmp_path):
    _operations, sources, _retriever = deployment
    with pytest.raises(SourceError, match="never stored"):
        sources.add("web", "intranet", "https://intranet.example/kb/", options={"api_token": "s3cret"})
    with pytest.raises(SourceError, match="cannot name a source"):
        sources.add("web", "Intra Net", "https://intranet.example/kb/")
    with pytest.raises(SourceError, match="already has it/"):
        sources.add("web", "it", "https://intranet.example/kb/")
    with pytest.raises(SourceError, match="does not exist"):
        sources.add("folder", "elsewhere", str(tmp_path / "nowhere"))
    sources.add("web", "intranet", "https://intranet.example/kb/")
    with pytest.raises(SourceError, match="already a source"):
        sources.add("web", "intranet", "https://intranet.example/other/")


def test_the_worker_syncs_due_sources_and_runs_the_prune_pass(deployment, site, database):
    _operations, sources, retriever = deployment
    sources.add("web", "intranet", site.url("/kb/index.html"), options={"rate": 0, "follow_links": False})
    assert [r.name for r in sources.run_due()] == ["intranet"]
    assert sources.run_due() == []  # next run in an hour
    site.delete("/kb/lunch.html")
    with database.session() as session:
        session.execute(update(ContentSource).values(last_prune_at=None))
    pruned = sources.prune_due()
    assert [(r.name, r.deleted) for r in pruned] == [("intranet", 1)]
    assert not any(d.path.startswith("intranet/lunch-") for d in retriever.version().documents)


def test_moment_source_commands(deployment, site, tmp_path):
    operations, _sources, _retriever = deployment
    settings = operations.settings
    env = {**os.environ, "MOMENT_HOME": str(settings.home), "DATABASE_URL": operations.database.url,
           "MOMENT_INDEX_DIR": str(operations.store.root), "MOMENT_CONTENT_DIR": str(settings.content_dir),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip

    def moment(*args, status=0):
        done = subprocess.run([sys.executable, "-m", "assistant.cli", "source", *args], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == status, done.stdout + done.stderr
        return done.stdout

    out = moment("add", "web", "intranet", site.url("/kb/index.html"), "--rate", "0", "--schedule", "30")
    assert "Added web source intranet" in out
    moment("add", "web", "bad", "https://x.example/", "--option", "password=hunter2", status=1)
    assert "Syncing" not in moment("sync", "intranet", "--json")
    listed = json.loads(moment("list", "--json"))["sources"]
    assert [(s["name"], s["last_status"]) for s in listed] == [("content", None), ("intranet", "ok")]
    shown = moment("show", "intranet")
    assert "last sync" in shown and "added 1" in shown and "next run" in shown and "every 30 min" in shown
    moment("show", "nothing", status=1)
    moment("remove", "intranet")
    assert [s["name"] for s in json.loads(moment("list", "--json"))["sources"]] == ["content"]
