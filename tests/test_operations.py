"""Re-index runs, index publication through the database, reports, and the worker's jobs.

Real model, FAISS, SQLite and PostgreSQL; Slack is the loopback stand-in (slackstub/).
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from assistant import worker
from assistant.access.tenancy import DEFAULT_TEAM as TEAM
from assistant.answering.retrieval import Retriever
from assistant.db.models import IndexRun, Interaction, PublishedIndex
from assistant.operations.operations import IndexOperations
from assistant.records.interactions import Asker
from assistant.records.reports import build_report, chart_png, to_csv, to_json, to_markdown
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.store import IndexStore
from tests.slack_fixtures import BOT_TOKEN, MODEL_CACHE

ASKER = Asker(user_id="U0ASKER01", surface="dm", channel_id="D0ASKER01")
OTHER = Asker(user_id="U0ASKER02", surface="mention", channel_id="C0GENERAL")


@pytest.fixture
def content_copy(corpus, tmp_path):
    """A content folder of our own (the session corpus's files), to change freely."""
    from conftest import ContentFolder

    source = corpus.root.parent / "content"
    target = tmp_path / "content"
    shutil.copytree(source, target)
    return ContentFolder(target)


def make_settings(tmp_path, content_dir, index_dir, **extra):
    return load_settings(home=tmp_path / "home", content_dir=content_dir, index_dir_override=index_dir, **extra)


# -- re-index runs and publication -------------------------------------------------------------------------


def test_two_reindex_requests_run_one_after_the_other(tmp_path, content_copy, database, embedder):
    store = IndexStore(tmp_path / "index")
    ops = IndexOperations(make_settings(tmp_path, content_copy.root, store.root), database, store, embedder)
    first, ahead = ops.request("U0ADMIN001", "C0ADMINS")
    second, ahead2 = ops.request("U0ADMIN002", "C0ADMINS")
    assert (ahead, ahead2) == (0, 1)
    done: list[IndexRun] = []
    threads = [threading.Thread(target=lambda: done.extend(ops.run_queued())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    runs = sorted(done, key=lambda r: r.id)
    assert [r.id for r in runs] == [first.id, second.id]  # each built once
    assert all(r.status == "done" for r in runs)
    assert runs[1].started_at >= runs[0].finished_at  # not over each other
    assert runs[0].report["published"] and not runs[1].report["published"]  # nothing changed the second time
    assert len(runs[0].report["added"]) == runs[0].report["documents"] > 0


def test_a_failed_run_is_reported_not_lost(tmp_path, database, embedder):
    store = IndexStore(tmp_path / "index")
    ops = IndexOperations(make_settings(tmp_path, tmp_path / "no-such-folder", store.root), database, store, embedder)
    ops.request("U0ADMIN001", None)
    (run,) = ops.run_queued()
    assert run.status == "failed" and "does not exist" in run.error


def test_a_new_version_reaches_another_host_through_the_database(tmp_path, content_copy, database, embedder):
    """Host A (the worker) builds; host B (a web process) shares nothing with it but the database."""
    store_a, store_b = IndexStore(tmp_path / "a" / "index"), IndexStore(tmp_path / "b" / "index")
    settings_a = make_settings(tmp_path / "a", content_copy.root, store_a.root)
    host_a = IndexOperations(settings_a, database, store_a, embedder)
    host_b = IndexOperations(make_settings(tmp_path / "b", tmp_path / "b" / "nothing", store_b.root), database,
                             store_b, embedder)  # fmt: skip
    reader_b = Retriever(store_b, embedder, reload_interval=0)
    assert host_b.sync() is None  # nothing published yet

    host_a.request("U0ADMIN001", None)
    (run,) = host_a.run_queued()
    v1 = run.report["version"]
    assert host_b.sync() == v1 and store_b.current() == v1
    assert host_b.sync() is None  # already current
    assert reader_b.version().version == v1

    content_copy.markdown(
        "hr/parental-leave.md",
        "Parental leave",
        "## How long\nParents get 26 weeks of parental leave on full pay, then 13 weeks unpaid.\n",
        type_="reference",
    )
    host_a.request("U0ADMIN001", None)
    (run,) = host_a.run_queued()
    v2 = run.report["version"]
    assert v2 > v1 and host_b.sync() == v2
    hit = reader_b.search("how many weeks of parental leave do i get").hits[0]
    assert hit.doc.path == "hr/parental-leave.md"  # B answers from the new version, without a restart
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(PublishedIndex)) == 2


def test_a_corrupt_publication_is_not_installed(tmp_path, content_copy, database, embedder):
    store_a, store_b = IndexStore(tmp_path / "a"), IndexStore(tmp_path / "b")
    host_a = IndexOperations(make_settings(tmp_path, content_copy.root, store_a.root), database, store_a, embedder)
    host_a.request(None, None)
    host_a.run_queued()
    with database.session() as session:
        row = session.scalars(select(PublishedIndex)).one()
        row.archive = row.archive[:-100] + b"x" * 100
    host_b = IndexOperations(make_settings(tmp_path, content_copy.root, store_b.root), database, store_b, embedder)
    assert host_b.sync() is None and store_b.current() is None


# -- an approved job aid reaches the index whichever host approved it ------------------------------------------


@pytest.fixture
def approved_answer(database):
    """A mentor's answer approved on a web host: it lives in the shared database, not on that host's disk."""
    from assistant.mentoring.drafts import Drafts

    drafts = Drafts(database)
    answer = "Hold the power and volume-down buttons together for 20 seconds until the tablet restarts."
    draft = drafts.save(TEAM, author_id="U0MENTOR01", title="Unfreeze a field tablet", body=answer)
    return drafts.decide(TEAM, draft.id, "U0ADMIN001", approve=True)


def _second_host_content(corpus, tmp_path, name: str):
    from conftest import ContentFolder

    target = tmp_path / name / "content"
    shutil.copytree(corpus.root.parent / "content", target)
    return ContentFolder(target)


def test_an_answer_approved_on_a_web_host_is_indexed_by_the_worker_on_another(
    corpus, tmp_path, database, embedder, approved_answer
):
    worker_content = _second_host_content(corpus, tmp_path, "worker")
    store = IndexStore(tmp_path / "worker" / "index")
    ops = IndexOperations(make_settings(tmp_path, worker_content.root, store.root), database, store, embedder)
    ops.request("U0ADMIN001")
    (run,) = ops.run_queued()
    assert approved_answer.path in run.report["added"]
    hit = Retriever(store, embedder).search("my field tablet is frozen", k=1).hits[0]
    assert hit.doc.path == approved_answer.path


@pytest.mark.slow
def test_moment_index_on_the_indexing_host_writes_and_indexes_approved_answers(
    corpus, tmp_path, database, approved_answer
):
    import json
    import os
    import subprocess
    import sys

    host = _second_host_content(corpus, tmp_path, "cli-host")
    env = {**os.environ, "MOMENT_HOME": str(tmp_path / "cli-host"), "MOMENT_CONTENT_DIR": str(host.root),
           "DATABASE_URL": database.url, "MOMENT_MODEL_CACHE": str(MODEL_CACHE), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "index", "--json"], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert approved_answer.path in json.loads(done.stdout)["added"]
    assert "Unfreeze a field tablet" in (host.root / approved_answer.path).read_text()


# -- reports ----------------------------------------------------------------------------------------------------


@pytest.fixture
def service(corpus, database, embedder, tmp_path) -> MomentService:
    return MomentService(load_settings(home=tmp_path / "home", index_dir_override=corpus.root), database,
                         Retriever(corpus, embedder))  # fmt: skip


def test_the_report_counts_and_groups_the_content_gaps(service):
    good = service.asking.ask("my vpn token keeps failing how do i reset it", ASKER)
    service.records.vote(good.interaction_id, "U0ASKER01", helpful=True)
    also = service.asking.ask("mileage rate for my own car", OTHER)
    service.records.vote(also.interaction_id, "U0ASKER02", helpful=False, comment="wanted the van rate")
    for question in ("parental leave how many weeks", "how long is paternity leave", "maternity leave weeks",
                     "recommend a pizza place"):  # fmt: skip
        service.asking.ask(question, OTHER)
    report = build_report(service.database, 7, service.retriever.embedder)
    assert report.questions == 6 and report.askers == 2
    assert report.votes == 2 and report.helpful == 1 and report.helpful_rate == 0.5
    assert good.answered and report.answered >= 1 and report.answered_rate == report.answered / 6
    leave = report.gaps[0]  # the workspace's gaps (assistant/insights/gaps.py), made before the report
    assert leave.recent == 3 and "leave" in leave.label.lower()  # three ways to ask one missing thing
    assert {g.recent for g in report.gaps[1:]} <= {1}
    assert sum(g.recent for g in report.gaps) == 5  # and the pizza, and the mileage answer voted down
    uses = {u.path: u for u in report.top_content}
    assert (uses["it/vpn-token.md"].top, uses["it/vpn-token.md"].helpful) == (1, 1)
    assert (uses["hr/mileage.md"].top, uses["hr/mileage.md"].not_helpful) == (1, 1)
    assert sum(d["questions"] for d in report.per_day) == 6

    md = to_markdown(report)
    assert "## Content gaps" in md and f"| {leave.id} | 3 | 0 | open |" in md and "it/vpn-token.md" in md
    assert to_csv(report).startswith("kind,date,question,questions,answered,not_answered")
    assert '"gaps"' in to_json(report)
    png = chart_png(report)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_the_report_of_an_empty_period(service):
    report = build_report(service.database, 7, service.retriever.embedder)
    assert report.questions == 0 and report.answered_rate is None and report.gaps == []
    assert "None in this period." in to_markdown(report)
    assert chart_png(report)[:4] == b"\x89PNG"


# -- the worker's jobs ---------------------------------------------------------------------------------------


@pytest.fixture
def worker_context(tmp_path, corpus, database, embedder, slack_api):
    settings = load_settings(
        home=tmp_path / "home",
        index_dir_override=corpus.root,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_api_url=slack_api.api_url,
        admin_channel="C0LANDD001",
        retention_days=30,
    )
    service = MomentService(settings, database, Retriever(corpus, embedder))
    ctx = worker.setup(settings, service)
    slack_api.clear()
    yield ctx
    worker._context = None


def test_the_weekly_digest_posts_the_report_and_the_chart_once(worker_context, slack_api):
    worker_context.service.asking.ask("my vpn token keeps failing", ASKER)
    now = dt.datetime.now(dt.UTC)
    assert worker.weekly_digest(now=now)
    assert not worker.weekly_digest(now=now)  # a second worker, or a retry, the same day: nothing more
    post = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "C0LANDD001")
    assert "*1* question from 1 person" in post.text()
    uploads = {u["filename"]: u for u in slack_api.uploads.values()}
    chart = uploads[f"moment-{now:%Y-%m-%d}.png"]
    assert chart["bytes"][:8] == b"\x89PNG\r\n\x1a\n" and chart["channel"] == "C0LANDD001"
    assert b"# Moment report" in uploads[f"moment-report-{now:%Y-%m-%d}.md"]["bytes"]


def test_a_digest_that_fails_to_post_is_sent_by_the_next_run(worker_context, slack_api):
    now = dt.datetime.now(dt.UTC)
    uploaded = len(slack_api.uploads)
    slack_api.fail_next("chat.postMessage", error="not_in_channel", channel="C0LANDD001")
    assert not worker.weekly_digest(now=now)  # failed: the day's claim is given back
    assert len(slack_api.uploads) == uploaded
    assert worker.weekly_digest(now=now)  # the next hourly run posts it
    assert not worker.weekly_digest(now=now)
    posts = slack_api.calls("chat.postMessage", lambda c: c.params.get("channel") == "C0LANDD001")
    assert [c.ok for c in posts] == [False, True]
    assert len(slack_api.uploads) == uploaded + 2


def test_the_worker_answers_a_help_channel_queue_a_stopped_process_left(worker_context, slack_api):
    from assistant.helpchannels.helpchannels import ChannelScope

    channels = worker_context.service.help_channels.of()
    channels.configure("C0HELPDESK", "help-desk", ChannelScope(), by="U0ADMIN001")
    assert channels.enqueue("C0HELPDESK", "1700000000.000100", "U0ASKER01", "my vpn token keeps failing")
    assert worker.help_channel_queues() == 1
    # Answered in the message's thread: in the channel when sure enough, else privately to the asker.
    replies = [
        c
        for c in slack_api.calls()
        if c.method in ("chat.postMessage", "chat.postEphemeral") and c.params.get("channel") == "C0HELPDESK"
    ]
    assert [c.params.get("thread_ts") for c in replies] == ["1700000000.000100"]
    assert not channels.has_queued("C0HELPDESK") and worker.help_channel_queues() == 0


def test_a_queued_message_waits_at_most_the_settling_time_whatever_the_queuers_clock():
    import datetime as dt

    from assistant.db.models import HelpQueueItem
    from assistant.helpchannels.helpchannels import SETTLE, settling

    now = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)

    def queued(seconds_ago: float) -> HelpQueueItem:
        return HelpQueueItem(created_at=now - dt.timedelta(seconds=seconds_ago))

    assert settling(queued(0.2), now) == pytest.approx(SETTLE.total_seconds() - 0.2)
    assert settling(queued(5), now) == 0.0
    assert settling(queued(-30), now) == SETTLE.total_seconds()  # queued by a host whose clock is 30 s ahead


def test_review_reminders_one_dm_per_owner_once_a_week(worker_context, slack_api):
    today = dt.date(2027, 6, 1)  # everything with a review cycle is past due by then
    sent = worker.review_reminders(today)
    assert sent == 1  # the corpus has one owner
    opened = slack_api.calls("conversations.open")
    assert [c.params["users"] for c in opened] == ["U0TESTOWN1"]
    dm = slack_api.calls("chat.postMessage")[0]
    assert "past their review date" in dm.text() and "vpn-token.md" in dm.text()
    assert worker.review_reminders(today) == 0  # once a week
    assert worker.review_reminders(today + dt.timedelta(days=7)) == 1


def test_retention_deletes_old_interactions_only(worker_context):
    service = worker_context.service
    old = service.asking.ask("reset vpn token", ASKER)
    new = service.asking.ask("mileage own car", ASKER)
    service.records.vote(old.interaction_id, "U0ASKER01", helpful=True)
    with service.database.session() as session:
        session.get(Interaction, old.interaction_id).created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    assert worker.retention() == 1
    assert (
        service.records.interaction(old.interaction_id) is None
        and service.records.interaction(new.interaction_id) is not None
    )


def test_the_schedule_lives_in_the_database_and_survives_a_restart(tmp_path, database_url):
    settings = load_settings(home=tmp_path / "home", database_url_override=database_url)
    first = worker.scheduler(settings, blocking=False)
    first.start(paused=True)
    ids = sorted(job.id for job in first.get_jobs())
    first.shutdown(wait=False)
    again = worker.scheduler(settings, blocking=False)  # a restarted worker registers the same jobs again
    again.start(paused=True)
    assert sorted(job.id for job in again.get_jobs()) == ids == sorted(worker.JOBS)
    again.shutdown(wait=False)
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar() == len(worker.JOBS)
    engine.dispose()


@pytest.mark.slow
def test_cli_report_and_export_for_admins_outside_slack(service, tmp_path):
    import csv
    import io
    import json
    import os
    import subprocess
    import sys

    service.asking.ask("my vpn token keeps failing", ASKER)
    service.asking.ask("parental leave how many weeks", OTHER)
    env = {**os.environ, "MOMENT_HOME": str(tmp_path / "home"), "DATABASE_URL": service.database.url,
           "MOMENT_INDEX_DIR": str(service.retriever.store.root), "HF_HUB_OFFLINE": "1"}  # fmt: skip

    def moment(*args):
        done = subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    report = json.loads(moment("report", "--days", "7", "--format", "json", "--chart", str(tmp_path / "c.png")))
    assert report["questions"] == 2 and report["gaps"][0]["label"] == "parental leave how many weeks"  # one question
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert "# Moment report" in moment("report")
    rows = list(csv.DictReader(io.StringIO(moment("export"))))
    assert [r["question"] for r in rows] == ["my vpn token keeps failing", "parental leave how many weeks"]
    assert rows[0]["top_source"] == "it/vpn-token.md" and rows[1]["answered"] == "0"
