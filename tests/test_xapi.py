"""xAPI statements through the outbox to a real LRS (Ralph on loopback), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from assistant.answering.retrieval import Retriever
from assistant.db.models import XapiStatement
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings

ASKER = Asker(user_id="U0ASKER01", surface="dm", channel_id="D0ASKER01")
WORKSPACE = "https://northwind.slack.com"


@pytest.fixture
def settings(tmp_path, corpus, lrs_server):
    return load_settings(
        home=tmp_path / "home",
        index_dir_override=corpus.root,
        lrs_endpoint=lrs_server.endpoint,
        lrs_username=lrs_server.username,
        lrs_password=SecretStr(lrs_server.password),
        workspace_url=WORKSPACE,
    )


@pytest.fixture
def service(settings, corpus, database, embedder) -> MomentService:
    return MomentService(settings, database, Retriever(corpus, embedder))


def queued(service) -> list[XapiStatement]:
    with service.database.session() as session:
        return list(session.scalars(select(XapiStatement).order_by(XapiStatement.created_at)).all())


def in_lrs(lrs_server, ids) -> Counter:
    """How many times each of `ids` is stored in the LRS."""
    stored = Counter(s["id"] for s in lrs_server.statements(limit=500))
    return Counter({i: stored[i] for i in ids})


def test_a_question_and_a_vote_become_statements_in_the_same_transaction(service):
    answer = service.asking.ask("my vpn token keeps failing how do i reset it", ASKER)
    service.records.vote(answer.interaction_id, "U0ASKER01", helpful=True)
    rows = queued(service)
    assert [r.verb for r in rows] == ["asked", "answered", "rated"]
    asked, answered, rated = (r.statement for r in rows)
    assert asked["actor"] == {"objectType": "Agent", "account": {"homePage": WORKSPACE, "name": "U0ASKER01"}}
    assert asked["verb"]["id"] == "http://adlnet.gov/expapi/verbs/asked"
    assert asked["object"]["id"].endswith(f"/questions/{answer.interaction_id}")
    assert answered["result"]["score"]["scaled"] == pytest.approx(answer.confidence, abs=1e-4)
    assert answered["result"]["success"] is True
    others = answered["context"]["contextActivities"]["other"]
    assert others[0]["id"].endswith("/content/it/vpn-token.md")  # stable IRI of the content item
    assert answered["context"]["statement"]["id"] == asked["id"]
    assert rated["verb"]["id"] == "http://id.tincanapi.com/verb/rated" and rated["result"]["success"] is True


def test_flush_delivers_to_the_lrs_and_the_lrs_stores_each_once(service, lrs_server):
    service.asking.ask("how do i lock out a machine before maintenance", ASKER)
    ids = [r.id for r in queued(service)]
    assert service.xapi.flush() == {"sent": 2, "rejected": 0, "deferred": 0}
    assert in_lrs(lrs_server, ids) == Counter({i: 1 for i in ids})
    assert service.xapi.flush() == {"sent": 0, "rejected": 0, "deferred": 0}
    status = service.xapi.status()
    assert (status.queued, status.sent, status.rejected) == (0, 2, 0)


@pytest.mark.slow
def test_lrs_down_then_up_everything_arrives_once(service, lrs_server):
    lrs_server.stop()
    try:
        service.asking.ask("mileage rate for my own car", ASKER)
        service.asking.ask("van inspection tyres", ASKER)
        ids = [r.id for r in queued(service)]
        counts = service.xapi.flush()
        assert counts["deferred"] == 4 and counts["sent"] == 0
        rows = queued(service)
        assert all(r.status == "queued" and r.attempts == 1 and "LRS" in r.error for r in rows)
        assert service.xapi.flush()["deferred"] == 0  # backing off: not due yet, nothing sent, nothing lost
    finally:
        lrs_server.start()
    service.xapi.retry_now()
    assert service.xapi.flush()["sent"] == 4
    assert in_lrs(lrs_server, ids) == Counter({i: 1 for i in ids})


def test_a_statement_the_lrs_rejects_is_set_aside_with_the_reason(service, lrs_server):
    service.asking.ask("reset vpn token", ASKER)
    with service.database.session() as session:
        bad = XapiStatement(id="7d3f6c1e-0000-4000-8000-000000000001", user_id="U0X", team_id="default", verb="broken",
                            statement={"id": "7d3f6c1e-0000-4000-8000-000000000001",
                                       "actor": {"mbox": "mailto:someone@example.com"},
                                       "object": {"id": "https://example.com/activity"}},  # no verb
                            next_attempt_at=queued(service)[0].created_at)  # fmt: skip
        session.add(bad)
    counts = service.xapi.flush()
    assert counts == {"sent": 2, "rejected": 1, "deferred": 0}
    rejected = service.xapi.rejected()
    assert [r.id for r in rejected] == [bad.id] and rejected[0].error
    assert service.xapi.flush() == {"sent": 0, "rejected": 0, "deferred": 0}  # not retried forever


def test_pseudonymised_actors(service):
    service.settings.xapi_pseudonymise = True
    service.settings.xapi_salt = SecretStr("pepper")
    from assistant.records.xapi import Statements

    statements = Statements(service.settings)
    actor = statements.actor("U0ASKER01")
    assert actor["account"]["name"] != "U0ASKER01" and len(actor["account"]["name"]) == 32
    assert actor == statements.actor("U0ASKER01")  # stable, so the LRS can still group a person's records


def test_forget_voids_what_was_sent_and_drops_what_was_not(service, lrs_server):
    first = service.asking.ask("reset vpn token", ASKER)
    service.xapi.flush()
    sent_ids = [r.id for r in queued(service)]
    service.asking.ask("mileage own car", ASKER)  # still queued when forgotten
    counts = service.retention.forget("U0ASKER01")
    assert counts["interactions"] == 2 and counts["voided"] == 2
    assert service.records.interaction(first.interaction_id) is None
    rows = queued(service)
    assert [r.verb for r in rows] == ["voided", "voided"]
    assert service.xapi.flush() == {"sent": 2, "rejected": 0, "deferred": 0}, [r.error for r in service.xapi.rejected()]
    voided = {
        s["object"]["id"]
        for s in lrs_server.statements(limit=500)
        if s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/voided"
    }
    assert set(sent_ids) <= voided


@pytest.mark.slow
def test_cli_xapi_status_and_flush(settings, service, tmp_path):
    service.asking.ask("reset vpn token", ASKER)
    env = {
        "MOMENT_HOME": str(tmp_path / "home"),
        "DATABASE_URL": service.database.url,
        "LRS_ENDPOINT": settings.lrs_endpoint,
        "LRS_USERNAME": settings.lrs_username,
        "LRS_PASSWORD": settings.lrs_password.get_secret_value(),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
    }
    run = lambda *args: subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)  # fmt: skip
    status = run("xapi", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["queued"] == 2
    flushed = run("xapi", "flush")
    assert flushed.returncode == 0, flushed.stderr
    assert (
        "Sent 2" in flushed.stdout and settings.lrs_password.get_secret_value() not in flushed.stdout + flushed.stderr
    )


def test_a_content_review_becomes_a_reviewed_statement(tmp_path, corpus, database, embedder, lrs_server):
    """The owner moves `reviewed:` forward; the next re-index records that they reviewed the item."""
    import shutil

    from assistant.operations.operations import IndexOperations
    from indexer.store import IndexStore

    content = tmp_path / "content"
    shutil.copytree(corpus.root.parent / "content", content)
    store = IndexStore(tmp_path / "index")
    settings = load_settings(home=tmp_path / "home", content_dir=content, index_dir_override=store.root,
                        lrs_endpoint=lrs_server.endpoint, lrs_username=lrs_server.username,
                        lrs_password=SecretStr(lrs_server.password), workspace_url=WORKSPACE)  # fmt: skip
    ops = IndexOperations(settings, database, store, embedder)
    ops.request(None, None)
    ops.run_queued()  # the first build: nothing was reviewed
    page = content / "it" / "vpn-token.md"
    page.write_text(page.read_text().replace("reviewed: 2026-09-01", "reviewed: 2026-11-20"))
    ops.request(None, None)
    ops.run_queued()
    with database.session() as session:
        rows = session.scalars(select(XapiStatement)).all()
    assert [r.verb for r in rows] == ["reviewed"]
    statement = rows[0].statement
    assert statement["actor"]["account"]["name"] == "U0TESTOWN1"
    assert statement["object"]["id"].endswith("/content/it/vpn-token.md")
