"""The `confluence` kind against a stand-in on loopback that answers Confluence Cloud's REST v1 as documented
(sourcestub/confluence.py): paging, credentials, rate limits, restrictions (inherited from ancestors too)
carried over as audiences through `users.lookupByEmail` on the Slack stand-in, deletions and restriction
changes reflected at the next sync. Real model, FAISS, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from assistant.access.audiences import Viewer
from assistant.answering.retrieval import Retriever
from assistant.operations import IndexOperations
from assistant.settings import load_settings
from assistant.sources import Sources
from assistant.sources.people import PeopleDirectory
from indexer.connectors import SourceUnavailable, open_connector
from indexer.store import IndexStore
from sourcestub.confluence import EMAIL, TOKEN, ConfluenceStub, Page
from tests.slack_fixtures import BOT_TOKEN

SECRETS = {"email": EMAIL, "api_token": TOKEN}
HR_BODY = "<h2>Grievance steps</h2><p>File a grievance with your HR partner within 10 working days of the event.</p>"
PAY_BODY = "<h2>Salary bands</h2><p>Salary band B3 runs from 61,000 to 74,000 dollars a year.</p>"
ANA, BEN, CHEN = "U0ANA00001", "U0BEN00001", "U0CHEN0001"


@pytest.fixture
def wiki():
    with ConfluenceStub() as stub:
        stub.add(Page("100", "HR", "HR handbook", "<p>Welcome to the HR handbook.</p>"))
        stub.add(Page("101", "HR", "Raise a grievance", HR_BODY, parent="100"))
        stub.add(Page("102", "HR", "Pay", "<p>Pay overview.</p>", parent="100", groups=["hr-team"]))
        stub.add(
            Page("103", "HR", "Salary bands", PAY_BODY, parent="102", users=["ana@example.com", "ben@example.com"])
        )
        stub.add(Page("200", "IT", "Printers", "<p>Printers are on every floor.</p>"))
        stub.groups["hr-team"] = ["ana@example.com", "chen@example.com", "dora@example.com"]
        yield stub


def test_pages_are_listed_page_by_page_and_restrictions_are_the_intersection_of_every_level(wiki):
    for n in range(60):  # more than one page of results (the connector asks for 50)
        wiki.add(Page(str(300 + n), "HR", f"Policy {n}", f"<p>Policy text {n}.</p>", parent="100"))
    connector = open_connector("confluence", wiki.url, {"spaces": "HR"}, SECRETS)
    items = {c.id: c.item for c in connector.changes(None) if c.item}
    assert len(items) == 64 and "200" not in items
    assert sum("start=50" in r for r in wiki.requests) == 1  # _links.next followed
    assert items["101"].access.public and items["101"].link == f"{wiki.url}/spaces/HR/pages/101"
    assert items["101"].owner == "ana.lopez@example.com" and items["101"].modified.year == 2026
    assert items["102"].access.readers() == ("ana@example.com", "chen@example.com", "dora@example.com")
    # Salary bands: its own users, and the hr-team of its parent: only Ana passes both.
    assert items["103"].access.readers() == ("ana@example.com",)
    assert b'id="Grievance-steps"' in items["101"].content
    tree = open_connector("confluence", wiki.url, {"page": "102"}, SECRETS)
    assert sorted(c.id for c in tree.changes(None) if c.item) == ["102", "103"]


def test_bad_credentials_rate_limits_and_outages_fail_the_source_as_a_whole(wiki):
    with pytest.raises(SourceUnavailable, match="credentials"):
        list(
            open_connector("confluence", wiki.url, {"spaces": "HR"}, {"email": EMAIL, "api_token": "expired"}).changes(
                None
            )
        )
    wiki.fail_next(429, {"Retry-After": "30"})
    with pytest.raises(SourceUnavailable, match="429") as raised:
        list(open_connector("confluence", wiki.url, {"spaces": "HR"}, SECRETS).changes(None))
    assert raised.value.retry_after == 30
    wiki.fail_next(503)
    with pytest.raises(SourceUnavailable, match="503"):
        list(open_connector("confluence", wiki.url, {"spaces": "HR"}, SECRETS).changes(None))


@pytest.fixture
def deployment(tmp_path, content, database, embedder, slack_api, monkeypatch):
    content.vpn_token_page()
    slack_api.clear()
    slack_api.emails.update({"ana@example.com": ANA, "ben@example.com": BEN, "chen@example.com": CHEN})
    settings = load_settings(home=tmp_path / "home", content_dir=content.root, index_dir_override=tmp_path / "index")
    store = IndexStore(tmp_path / "index")
    operations = IndexOperations(settings, database, store, embedder)
    people = PeopleDirectory(database, WebClient(token=BOT_TOKEN, base_url=slack_api.api_url))
    monkeypatch.setenv("CONFLUENCE_TEST_TOKEN", TOKEN)
    return Sources(operations, people), Retriever(store, embedder, reload_interval=0)


def paths_for(retriever, question: str, viewer: Viewer) -> list[str]:
    return [h.doc.path for h in retriever.search(question, k=3, viewer=viewer).hits]


@pytest.mark.slow
def test_restrictions_become_audiences_and_changes_reach_the_next_sync(deployment, wiki, slack_api):
    sources, retriever = deployment
    sources.add(
        "confluence",
        "wiki",
        wiki.url,
        options={"spaces": ["HR"], "email": EMAIL, "api_token_env": "CONFLUENCE_TEST_TOKEN"},
    )
    result = sources.sync("wiki")
    assert result.status == "ok", result.failures
    assert result.added == 4
    salary = "what is the salary band B3 range"
    docs = {d.meta.title: d for d in retriever.version().documents}
    assert docs["Salary bands"].meta.audience == (ANA,)  # Ana alone is in Slack and passes both levels
    assert set(docs["Pay"].meta.audience) == {ANA, CHEN}  # dora@ has no Slack account: left out
    assert docs["Raise a grievance"].meta.audience == ()
    assert docs["Raise a grievance"].meta.url == f"{wiki.url}/spaces/HR/pages/101"
    assert paths_for(retriever, salary, Viewer(ANA))[0] == docs["Salary bands"].path
    assert docs["Salary bands"].path not in paths_for(retriever, salary, Viewer(BEN))  # not in hr-team
    assert docs["Salary bands"].path not in paths_for(retriever, salary, Viewer.public())
    looked_up = [c.params["email"] for c in slack_api.calls("users.lookupByEmail")]
    assert len(looked_up) == len(set(looked_up))  # each once, then from the cache
    assert {"ana@example.com", "chen@example.com", "dora@example.com"} <= set(looked_up)  # ben: not in hr-team

    # Restrictions changed at the source (the page's version does not move): Chen now may read it too.
    wiki.pages["103"].users.append("chen@example.com")
    wiki.edit("101", HR_BODY.replace("10 working days", "15 working days"))
    result = sources.sync("wiki")
    assert (result.added, result.changed, result.deleted) == (0, 2, 0)
    docs = {d.meta.title: d for d in retriever.version().documents}
    assert set(docs["Salary bands"].meta.audience) == {ANA, CHEN}
    assert paths_for(retriever, salary, Viewer(CHEN))[0] == docs["Salary bands"].path
    hits = retriever.search("how long do I have to file a grievance", k=1, viewer=Viewer(BEN)).hits
    assert "15 working days" in hits[0].chunk.text

    # Restricted to someone Moment cannot find in Slack: withheld from everyone, and said why.
    wiki.pages["103"].users = ["nobody@example.com"]
    wiki.pages["103"].version += 1
    result = sources.sync("wiki")
    assert result.deleted == 1 and "none of whom Moment can find in Slack" in result.failures[0]["reason"]
    assert "Salary bands" not in {d.meta.title for d in retriever.version().documents}

    del wiki.pages["101"]  # deleted at the source
    assert sources.sync("wiki").deleted == 1
    assert "Raise a grievance" not in {d.meta.title for d in retriever.version().documents}


def test_a_missing_token_fails_the_sync_with_a_clear_message_and_is_never_stored(
    deployment, wiki, monkeypatch, database
):
    from assistant.db.models import ContentSource

    sources, _ = deployment
    sources.add(
        "confluence",
        "wiki",
        wiki.url,
        options={"spaces": "HR", "email": EMAIL, "api_token_env": "CONFLUENCE_TEST_TOKEN"},
    )
    with database.session() as session:
        assert TOKEN not in repr(session.get(ContentSource, "wiki").settings)
    monkeypatch.delenv("CONFLUENCE_TEST_TOKEN")
    result = sources.sync("wiki")
    assert result.status == "failed" and "CONFLUENCE_TEST_TOKEN" in result.error and TOKEN not in result.error
