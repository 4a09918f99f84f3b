"""SharePoint/OneDrive and Google Drive sources end to end: added and synced through `Sources` (the lease, the
items folder, the one indexing path) from the stand-ins on loopback (sourcestub/graph.py, sourcestub/gdrive.py),
then asked through `MomentService`: the answer links to the file at its source; an edit changes the answer, a
deletion stops it, a sharing change decides who is answered, and a file that breaks, a rate limit or an
expired token never loses the last good items. Real model, FAISS, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from slack_sdk import WebClient

from assistant.answering.retrieval import Retriever
from assistant.db.models import ContentSource
from assistant.operations import IndexOperations
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from assistant.sources import Sources
from assistant.sources.people import PeopleDirectory
from indexer.store import IndexStore
from sourcestub.gdrive import DriveStub
from sourcestub.graph import CLIENT_SECRET, GraphStub
from sourcestub.web import LUNCH, LUNCH_EDITED, render
from tests.slack_fixtures import BOT_TOKEN

pytestmark = pytest.mark.slow  # each syncs and builds with the real model

ANA, BEN = "U0ANA00001", "U0BEN00001"
LUNCH_QUESTION = "what is the expense limit for team lunches"
PAY = "# Salary bands\n\nSalary band B3 runs from 61,000 to 74,000 dollars a year."
PAY_QUESTION = "what is the salary band B3 range"
CULTURE_QUESTION = "How does transparency work at CivicActions?"


@pytest.fixture
def deployment(tmp_path, content, database, embedder, slack_api, monkeypatch):
    content.vpn_token_page()
    slack_api.clear()
    slack_api.emails.update({"ana@contoso.com": ANA, "ben@contoso.com": BEN})
    settings = load_settings(home=tmp_path / "home", content_dir=content.root, index_dir_override=tmp_path / "index")
    store = IndexStore(tmp_path / "index")
    operations = IndexOperations(settings, database, store, embedder)
    people = PeopleDirectory(database, WebClient(token=BOT_TOKEN, base_url=slack_api.api_url))
    retriever = Retriever(store, embedder, reload_interval=0)
    return Sources(operations, people), MomentService(settings, database, retriever), retriever


def ask(service: MomentService, question: str, user: str = BEN):
    return service.asking.ask(question, Asker(user_id=user, surface="cli"))


def answered_from(service, question: str, title: str, user: str = BEN):
    """The answer's source titled `title`, or None when the answer does not come from it."""
    answer = ask(service, question, user)
    best = answer.sources[0] if answer.answered and answer.sources else None
    return best if best is not None and best.title == title else None


def titles(retriever) -> set[str]:
    return {d.meta.title for d in retriever.version().documents}


def test_a_sharepoint_library_syncs_answers_with_its_links_and_follows_edits_sharing_and_deletions(
    deployment, database, monkeypatch
):
    sources, service, retriever = deployment
    with GraphStub(page_size=5) as graph:
        pages = graph.add_guidebook(8)
        graph.add_file("lunch", "Team lunches.html", render(LUNCH))
        graph.add_file("pay", "Salary bands.html", render(PAY))
        graph.share("pay", users=["ana@contoso.com"])
        monkeypatch.setenv("GRAPH_TEST_SECRET", CLIENT_SECRET)
        sources.add(
            "sharepoint",
            "hrdocs",
            graph.site_url,
            options=graph.options(client_secret_env="GRAPH_TEST_SECRET", max_wait=3, max_bytes=200_000),
        )
        with database.session() as session:
            assert CLIENT_SECRET not in json.dumps(session.get(ContentSource, "hrdocs").settings)
        result = sources.sync("hrdocs")
        assert (result.status, result.added, result.items) == ("ok", 10, 10), result.failures

        culture = answered_from(service, CULTURE_QUESTION, "Culture")
        assert culture is not None
        web_url = f"{graph.site_url}/Shared%20Documents/Guidebook/about-civicactions/culture.html"
        assert culture.url.startswith(web_url + "#")  # the file at its source, at the heading
        assert pages["about-civicactions/culture.md"].id == "gb0003"
        lunch = answered_from(service, LUNCH_QUESTION, "Team lunches")
        assert lunch is not None and "25 dollars" in lunch.snippet
        assert answered_from(service, PAY_QUESTION, "Salary bands", ANA) is not None
        assert answered_from(service, PAY_QUESTION, "Salary bands", BEN) is None  # not shared with Ben

        # An edit, a sharing change (now Ben alone), an expired token: one sync.
        graph.edit("lunch", render(LUNCH_EDITED))
        graph.share("pay", users=["ben@contoso.com"])
        graph.expire_tokens()
        result = sources.sync("hrdocs")
        assert (result.status, result.added, result.changed, result.deleted) == ("ok", 0, 2, 0)
        assert "40 dollars" in answered_from(service, LUNCH_QUESTION, "Team lunches").snippet
        assert answered_from(service, PAY_QUESTION, "Salary bands", BEN) is not None
        assert answered_from(service, PAY_QUESTION, "Salary bands", ANA) is None

        # A file that grew past the limit and one that is binary under a text name: each listed with its
        # reason; the last good copy of the first keeps answering.
        graph.edit("lunch", render(LUNCH_EDITED + "\n\n" + "More detail. " * 20_000))
        graph.add_file("fake", "notes.txt", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)))
        result = sources.sync("hrdocs")
        assert result.status == "partial"
        reasons = {f["id"]: f["reason"] for f in result.failures}
        assert "the limit is" in reasons["lunch"] and "binary data" in reasons["fake"]
        assert "40 dollars" in answered_from(service, LUNCH_QUESTION, "Team lunches").snippet

        # Throttled for longer than Moment waits: the sync fails as a whole and changes nothing.
        graph.delete("lunch")
        graph.fail_next(429, {"Retry-After": "120"})
        result = sources.sync("hrdocs")
        assert result.status == "failed" and "429" in result.error and "keep answering" in result.error
        assert "Team lunches" in titles(retriever)
        assert sources.show("hrdocs").next_run_at is not None

        # The next sync: the deletion reaches the answers.
        result = sources.sync("hrdocs")
        assert (result.status, result.deleted) == ("ok", 1)
        assert "Team lunches" not in titles(retriever)
        assert answered_from(service, LUNCH_QUESTION, "Team lunches") is None

        # The delta link expired (410): everything is listed again, nothing unchanged is fetched or embedded.
        graph.expire_deltas()
        downloads = len(graph.calls("/download/"))
        result = sources.sync("hrdocs")
        assert (result.status, result.added, result.changed, result.deleted) == ("partial", 0, 0, 0)
        assert [f["id"] for f in result.failures] == ["fake"]  # still binary at its source, and still said
        assert any("410" in note for note in result.notes)
        assert [r.path for r in graph.calls("/download/")[downloads:]] == ["/download/fake"]  # no good copy yet
        assert sources.prune("hrdocs").deleted == 0


def test_a_google_drive_folder_syncs_answers_with_its_links_and_follows_edits_sharing_and_deletions(
    deployment, tmp_path
):
    sources, service, retriever = deployment
    with DriveStub(page_size=5) as drive:
        drive.add_guidebook(8)
        drive.add_doc("lunch", "Team lunches", LUNCH)
        drive.add_doc("pay", "Salary bands", PAY)
        drive.share("pay", users=["ana@contoso.com"])
        key = tmp_path / "service-account.json"
        key.write_text(json.dumps(drive.service_account()))
        sources.add(
            "gdrive",
            "ld-drive",
            drive.folder_url,
            options={"drive_url": drive.base, "service_account_file": str(key), "max_wait": 3},
        )
        result = sources.sync("ld-drive")
        assert (result.status, result.added) == ("ok", 10), result.failures

        culture = answered_from(service, CULTURE_QUESTION, "Culture")
        assert culture is not None and culture.url.startswith("https://docs.google.com/document/d/doc0003/edit#")
        assert "25 dollars" in answered_from(service, LUNCH_QUESTION, "Team lunches").snippet
        assert answered_from(service, PAY_QUESTION, "Salary bands", ANA) is not None
        assert answered_from(service, PAY_QUESTION, "Salary bands", BEN) is None

        drive.edit("lunch", LUNCH_EDITED)
        drive.share("pay", users=["ben@contoso.com"])
        drive.expire_tokens()
        result = sources.sync("ld-drive")
        assert (result.status, result.changed) == ("ok", 2)
        assert "40 dollars" in answered_from(service, LUNCH_QUESTION, "Team lunches").snippet
        assert answered_from(service, PAY_QUESTION, "Salary bands", BEN) is not None
        assert answered_from(service, PAY_QUESTION, "Salary bands", ANA) is None

        drive.trash("lunch")
        drive.expire_page_tokens()  # and the saved changes token is refused: the folder is listed again
        result = sources.sync("ld-drive")
        assert (result.status, result.deleted, result.changed) == ("ok", 1, 0)
        assert answered_from(service, LUNCH_QUESTION, "Team lunches") is None
        assert "Team lunches" not in titles(retriever)


def test_moment_source_add_sharepoint_then_sync_and_show(deployment):
    sources, _service, _retriever = deployment
    operations = sources.operations
    settings = operations.settings
    env = {**os.environ, "MOMENT_HOME": str(settings.home), "DATABASE_URL": operations.database.url,
           "MOMENT_INDEX_DIR": str(operations.store.root), "MOMENT_CONTENT_DIR": str(settings.content_dir),
           "HF_HUB_OFFLINE": "1", "GRAPH_TEST_SECRET": CLIENT_SECRET}  # fmt: skip

    def moment(*args, status=0):
        done = subprocess.run([sys.executable, "-m", "assistant.cli", "source", *args], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == status, done.stdout + done.stderr
        assert CLIENT_SECRET not in done.stdout + done.stderr
        return done.stdout if status == 0 else done.stderr

    with GraphStub() as graph:
        graph.add_guidebook(3)
        options = [f"{k}={v}" for k, v in graph.options(client_secret_env="GRAPH_TEST_SECRET").items()]
        add = ["add", "sharepoint", "hrdocs", graph.site_url, *(x for o in options for x in ("--option", o))]
        assert "never stored" in moment(*add, "--option", f"client_secret={CLIENT_SECRET}", status=1)
        assert "Added sharepoint source hrdocs" in moment(*add)
        synced = json.loads(moment("sync", "hrdocs", "--json"))
        assert (synced["status"], synced["added"]) == ("ok", 3)
        assert "added 3" in moment("show", "hrdocs")


def test_a_source_of_one_workspace_is_never_answered_in_another(deployment, monkeypatch):
    sources, service, _retriever = deployment
    with GraphStub() as graph:
        graph.add_file("lunch", "Team lunches.html", render(LUNCH))
        monkeypatch.setenv("GRAPH_TEST_SECRET", CLIENT_SECRET)
        options = graph.options(client_secret_env="GRAPH_TEST_SECRET")
        sources.add("sharepoint", "acme-docs", graph.site_url, options=options, team_id="T0ACME001")
        assert sources.sync("acme-docs").added == 1

    def answered_in(team: str) -> bool:
        answer = service.asking.ask(LUNCH_QUESTION, Asker(user_id=BEN, surface="cli", team_id=team))
        return any(s.path.startswith("acme-docs/") for s in answer.sources)

    assert answered_in("T0ACME001")
    assert not answered_in("T0OTHER01")
    assert not answered_in(None)  # the default workspace is another one too
