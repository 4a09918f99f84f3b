"""Content gaps with owners (assistant/insights/gaps.py): clustering with the real model and scikit-learn, the
incremental refresh, owners told by DM through the Slack stand-in, re-asking after the content changed,
history, the CLI, forgetting a person, retention, `/moment gaps`.

Real model, FAISS, SQLite and PostgreSQL; Slack is the loopback stand-in (slackstub/)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from assistant import worker
from assistant.access.tenancy import DEFAULT_TEAM as TEAM
from assistant.answering.retrieval import Retriever
from assistant.cli import main
from assistant.db.database import Database
from assistant.db.gap_models import Gap, GapQuestion, QuestionVector
from assistant.db.models import Interaction, MentorRequest, Vote, utcnow
from assistant.insights.gaps import GapError, Gaps
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.store import IndexStore
from slackstub import payloads as P
from tests.gap_questions import ONE_OFFS, TOPICS
from tests.slack_fixtures import BOT_TOKEN, MODEL_CACHE

ASKER, OTHER, ADMIN, OWNER = "U0ASKER01", "U0ASKER02", "U0ADMIN001", "U0OWNER001"
NOW = dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.UTC)


def record(database: Database, question: str, *, user: str = ASKER, answered: bool = False, outcome: str | None = None,
           at: dt.datetime | None = None, team: str = TEAM, votes: tuple[bool, ...] = (), handed: bool = False,
           shown: dict | None = None) -> int:  # fmt: skip
    """A question as the log keeps it (what `MomentService.ask` writes), with its votes and hand-off."""
    with database.session() as session:
        row = Interaction(user_id=user, team_id=team, surface="dm", channel_id="D0ASKER01", question=question,
                          question_chars=len(question), answered=answered,
                          outcome=outcome or ("answered" if answered else "not_answered"), confidence=0.5,
                          latency_ms=10.0, created_at=at or utcnow(), answer=shown)  # fmt: skip
        session.add(row)
        session.flush()
        for n, helpful in enumerate(votes):
            session.add(Vote(team_id=team, interaction_id=row.id, user_id=f"U0VOTER{n:03d}", helpful=helpful))
        if handed:
            session.add(MentorRequest(interaction_id=row.id, asker_id=user, team_id=team, question=question,
                                      status="searching"))  # fmt: skip
        return row.id


def questions_of(gaps: Gaps, gap_id: int, team: str = TEAM) -> set[str]:
    return {q.question for q in gaps.detail(team, gap_id).questions}


def gap_of(gaps: Gaps, question: str, team: str = TEAM):
    """The gap holding `question`."""
    for gap in gaps.list(team, "all"):
        if question in questions_of(gaps, gap.id, team):
            return gap
    raise AssertionError(f"{question!r} is in no gap")


def test_paraphrases_make_one_gap_each_and_topics_stay_apart(database, embedder):
    for topic in TOPICS.values():
        for question in topic:
            record(database, question)
    for question in ONE_OFFS:
        record(database, question, user=OTHER)
    gaps = Gaps(database, embedder)
    made = gaps.refresh(TEAM)
    assert (made.new_questions, made.joined, made.new_gaps) == (sum(map(len, TOPICS.values())) + 2, 0, 8)
    listed = gaps.list(TEAM)
    assert len(listed) == 8 and all(g.status == "open" for g in listed)
    for name, topic in TOPICS.items():
        gap = gap_of(gaps, topic[0])
        assert questions_of(gaps, gap.id) == set(topic), name  # all its paraphrases, and nothing else
        assert gap.size == len(topic) and gap.recent == len(topic) and gap.trend == "new"
        assert gap.reasons == {"not_answered": len(topic)}
        assert len(gap.examples) == 3 and set(gap.examples) <= set(topic)
    labels = {name: gap_of(gaps, topic[0]).label for name, topic in TOPICS.items()}
    assert labels["parental leave"] == "parental leave"
    assert labels["smart meter"] == "smart meter"
    assert "asbestos" in labels["asbestos"] and "pension" in labels["pension"] and "tablet" in labels["cracked tablet"]
    assert "van" in labels["van charging"] and "electric" in labels["van charging"]
    for question in ONE_OFFS:  # a question alone is its own label
        assert gap_of(gaps, question).label == question and gap_of(gaps, question).size == 1
    assert gaps.refresh(TEAM).new_questions == 0  # nothing new: nothing done


def test_the_clustering_is_scikit_learns_agglomerative_partition(embedder):
    from sklearn.cluster import AgglomerativeClustering

    from assistant.insights.clustering import CLUSTER_DISTANCE, clusters

    texts = [q for topic in TOPICS.values() for q in topic] + ONE_OFFS
    rng = np.random.default_rng(3)
    noisy = rng.normal(size=(300, 384)).astype(np.float32) + np.repeat(rng.normal(size=(6, 384)), 50, axis=0) * 1.3
    for vectors in (embedder.encode(texts), noisy / np.linalg.norm(noisy, axis=1, keepdims=True)):
        reference = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                            distance_threshold=CLUSTER_DISTANCE).fit_predict(vectors)  # fmt: skip
        expected = sorted(sorted(np.flatnonzero(reference == label).tolist()) for label in set(reference))
        assert sorted(clusters(vectors)) == expected
        assert 1 < len(expected) < len(vectors)  # neither one group nor all apart: a real test of the threshold


def test_new_questions_join_their_gap_a_closed_gap_opens_again_and_the_rest_make_new_gaps(database, embedder):
    last_week = NOW - dt.timedelta(days=9)
    for name in ("parental leave", "asbestos", "pension"):
        for question in TOPICS[name]:
            record(database, question, at=last_week)
    gaps = Gaps(database, embedder)
    gaps.refresh(TEAM, now=last_week)
    leave, asbestos = gap_of(gaps, TOPICS["parental leave"][0]), gap_of(gaps, TOPICS["asbestos"][0])
    gaps.close(TEAM, asbestos.id, ADMIN, "the safety team is writing it")
    record(database, "is there paid leave when my baby is born", at=NOW - dt.timedelta(hours=1))
    record(database, "asbestos risk at a customer's property", at=NOW - dt.timedelta(hours=1))
    record(database, "when is the christmas party", user=OTHER, at=NOW - dt.timedelta(hours=1))
    record(database, "where is the office christmas party this year", at=NOW - dt.timedelta(hours=1))

    made = gaps.refresh(TEAM, now=NOW)
    assert (made.new_questions, made.joined, made.new_gaps, made.reopened) == (4, 2, 1, [asbestos.id])
    grown = gaps.detail(TEAM, leave.id, now=NOW)
    assert "is there paid leave when my baby is born" in {q.question for q in grown.questions}
    assert (grown.gap.size, grown.gap.recent, grown.gap.previous, grown.gap.trend) == (6, 1, 5, "down")
    assert [e.action for e in grown.history] == ["created", "grew"] and grown.history[1].detail == "+1 question"
    again = gaps.detail(TEAM, asbestos.id, now=NOW)
    assert again.gap.status == "open"
    assert [(e.actor, e.action) for e in again.history] == [("moment", "created"), (ADMIN, "closed"),
                                                            ("moment", "reopened")]  # fmt: skip
    assert again.history[1].detail == "the safety team is writing it"
    record(database, "parental leave for new dads: how long", at=NOW - dt.timedelta(minutes=30))
    record(database, "how long is parental leave for dads", at=NOW - dt.timedelta(minutes=20))
    assert gaps.refresh(TEAM, now=NOW + dt.timedelta(minutes=10)).joined == 2
    history = gaps.detail(TEAM, leave.id).history
    assert [(e.action, e.detail) for e in history] == [("created", "5 questions"), ("grew", "+3 questions")]  # a day
    party = gap_of(gaps, "when is the christmas party")
    assert party.size == 2 and "christmas party" in party.label
    assert [g.id for g in gaps.list(TEAM, now=NOW)][:2] == [leave.id, party.id]  # the busiest this week first


def test_declined_voted_down_and_handed_off_questions_make_gaps_and_nothing_else(database, embedder):
    declined = record(database, "how many weeks of parental leave do I get")
    voted_down = record(database, "how long is paternity leave", answered=True, votes=(False,))
    handed = record(database, "can I take shared parental leave", answered=True, handed=True)
    record(database, "what is the maternity leave policy", answered=True, votes=(False, True))  # 👍 too: helped
    record(database, "parental leave entitlement for new dads", answered=True)  # answered, no complaint
    record(database, "parental leave weeks", outcome="error")  # never searched: not a gap in the content
    record(database, "", outcome="empty")
    record(database, "parental leave for dads", team="T0ELSEWHERE")  # another workspace's
    gaps = Gaps(database, embedder)
    assert gaps.refresh(TEAM).new_questions == 3
    gap = gaps.detail(TEAM, gaps.list(TEAM)[0].id)
    assert {q.interaction_id: q.reason for q in gap.questions} == {
        declined: "not_answered", voted_down: "not_helpful", handed: "handed_off"}  # fmt: skip
    assert gap.gap.reasons == {"not_answered": 1, "not_helpful": 1, "handed_off": 1}
    with pytest.raises(GapError, match="No gap"):
        gaps.detail("T0ELSEWHERE", gap.gap.id)  # not that workspace's


def test_assign_close_reopen_keep_the_history_and_bad_input_is_refused(database, embedder):
    for question in TOPICS["pension"]:
        record(database, question)
    gaps = Gaps(database, embedder)
    gaps.refresh(TEAM)
    gap_id = gaps.list(TEAM)[0].id
    assigned = gaps.assign(TEAM, gap_id, OWNER, ADMIN)
    assert (assigned.gap.status, assigned.gap.owner_id) == ("assigned", OWNER)
    assert [g.id for g in gaps.list(TEAM, "assigned")] == [gap_id] and gaps.list(TEAM, "open") == []
    closed = gaps.close(TEAM, gap_id, ADMIN, "pension page published")
    assert closed.gap.status == "closed" and gaps.list(TEAM) == [] and len(gaps.list(TEAM, "closed")) == 1
    reopened = gaps.reopen(TEAM, gap_id, ADMIN)
    assert reopened.gap.status == "assigned"  # back with its owner
    assert [(e.actor, e.action, e.detail) for e in reopened.history] == [
        ("moment", "created", "4 questions"), (ADMIN, "assigned", OWNER), (ADMIN, "closed", "pension page published"),
        (ADMIN, "reopened", None)]  # fmt: skip

    for call, says in [
        (lambda: gaps.detail(TEAM, 999), "No gap 999"),
        (lambda: gaps.detail(TEAM, "x1"), "not a gap id"),
        (lambda: gaps.assign(TEAM, gap_id, "@pat", ADMIN), "not a Slack user id"),
        (lambda: gaps.assign("T0ELSEWHERE", gap_id, OWNER, ADMIN), "No gap"),
        (lambda: gaps.reopen(TEAM, gap_id, ADMIN), "is not closed"),
        (lambda: gaps.list(TEAM, "pending"), "Unknown gap status"),
    ]:
        with pytest.raises(GapError, match=says):
            call()
    gaps.close(TEAM, gap_id, ADMIN)
    with pytest.raises(GapError, match="closed already"):
        gaps.close(TEAM, gap_id, ADMIN)
    with pytest.raises(GapError, match="reopen it first"):
        gaps.assign(TEAM, gap_id, OWNER, ADMIN)
    assert len(gaps.detail(TEAM, gap_id).history) == 5  # nothing refused was written


def test_the_cli_lists_shows_and_assigns_gaps_and_the_owner_is_told_by_dm(database, embedder, slack_api, tmp_path):
    hostile = "<!channel> can I expense a *pizza* & <script>alert(1)</script> for the team"
    for question in (hostile, "can I expense a pizza for the team", "expense pizza for team lunch"):
        record(database, question)
    Gaps(database, embedder).refresh(TEAM)
    env = {"MOMENT_HOME": str(tmp_path / "home"), "DATABASE_URL": database.url, "SLACK_BOT_TOKEN": BOT_TOKEN,
           "SLACK_API_URL": slack_api.api_url, "MOMENT_MODEL_CACHE": str(MODEL_CACHE)}  # fmt: skip

    def moment(*args, **extra):
        return CliRunner().invoke(main, [str(a) for a in args], env={**env, **extra})

    listed = moment("gaps", "--json")
    assert listed.exit_code == 0, listed.output
    (gap,) = json.loads(listed.output)["gaps"]
    assert gap["size"] == 3 and gap["status"] == "open" and "pizza" in gap["label"] and gap["trend"] == "new"
    assert set(gap) >= {"id", "label", "status", "owner", "size", "examples", "recent", "previous", "trend",
                        "reasons", "answered_now", "checked"}  # fmt: skip
    shown = json.loads(moment("gaps", "show", gap["id"], "--json").output)
    assert hostile in {q["question"] for q in shown["questions"]} and shown["history"][0]["action"] == "created"

    slack_api.clear()
    assigned = moment("gaps", "assign", gap["id"], "--owner", OWNER, "--user", ADMIN)
    assert assigned.exit_code == 0, assigned.output
    dm = slack_api.wait_for("chat.postMessage")
    assert slack_api.calls("conversations.open")[0].params["users"] == OWNER
    text = dm.params["text"]
    assert f"<@{ADMIN}> gave you a content gap (gap {gap['id']})" in text
    assert "&lt;!channel&gt; can I expense a *pizza* &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<!channel>" not in text and "<script>" not in text

    text_listing = moment("gaps", "--status", "assigned")
    assert f"#{gap['id']}" in text_listing.output and f"→ {OWNER}" in text_listing.output
    closed = moment("gaps", "close", gap["id"], "--note", "a page on team meals")
    assert closed.exit_code == 0 and "is closed" in closed.output
    assert json.loads(moment("gaps", "--json").output)["gaps"] == []
    assert json.loads(moment("gaps", "--json", "--status", "closed").output)["gaps"][0]["id"] == gap["id"]

    unknown = moment("gaps", "show", "999")
    assert unknown.exit_code == 1 and "No gap 999 in this workspace" in unknown.output
    assert "Traceback" not in unknown.output
    assert moment("gaps", "--status", "pending").exit_code == 1  # not a status
    no_slack = moment("gaps", "reopen", gap["id"])
    assert no_slack.exit_code == 0
    untold = moment("gaps", "assign", gap["id"], "--owner", "U0OTHER002", SLACK_BOT_TOKEN=None)
    assert untold.exit_code == 2 and "was not told: SLACK_BOT_TOKEN is not set" in untold.output
    assert json.loads(moment("gaps", "--json").output)["gaps"][0]["owner"] == "U0OTHER002"  # assigned all the same


def test_forgetting_a_person_takes_their_questions_out_of_the_gaps(database, embedder, tmp_path):
    for question in TOPICS["smart meter"][:3]:
        record(database, question, user=ASKER)
    record(database, TOPICS["smart meter"][3], user=OTHER)
    record(database, "can I bring my dog to the depot", user=ASKER)
    gaps = Gaps(database, embedder)
    gaps.refresh(TEAM)
    meter = gap_of(gaps, TOPICS["smart meter"][0])
    gaps.assign(TEAM, meter.id, ASKER, ASKER)  # they own a gap too, and gave it to themselves
    forgot = CliRunner().invoke(
        main,
        ["forget", ASKER, "--yes"],
        env={  # `moment forget`, as an operator types it
            "MOMENT_HOME": str(tmp_path / "home"),
            "DATABASE_URL": database.url,
            "MOMENT_MODEL_CACHE": str(MODEL_CACHE),
        },
    )
    assert forgot.exit_code == 0, forgot.output
    assert "Deleted 4 interactions" in forgot.output  # the dog question's gap went with it:
    assert "1 content gap left without questions deleted." in forgot.output
    (left,) = gaps.list(TEAM, "all")
    detail = gaps.detail(TEAM, left.id)
    assert [q.question for q in detail.questions] == [TOPICS["smart meter"][3]]
    assert left.owner_id is None and left.status == "open" and left.label == TOPICS["smart meter"][3]
    assert {e.actor for e in detail.history} == {"moment", "forgotten"} and ASKER not in json.dumps(detail.to_dict())
    with database.session() as session:
        assert session.scalar(select(GapQuestion).where(GapQuestion.interaction_id.in_(
            select(Interaction.id).where(Interaction.user_id == ASKER)))) is None  # fmt: skip


def test_the_admin_pages_privacy_hides_question_text_and_askers(database, embedder):
    from assistant.insights import Privacy
    from assistant.records.xapi import pseudonym

    for question in TOPICS["pension"][:2]:
        record(database, question)
    record(database, "can I bring my dog to the depot", user=OTHER)
    gaps = Gaps(database, embedder)
    gaps.refresh(TEAM)
    hidden = Privacy(show_text=False, pseudonymise=True, key=b"salt")
    listed = {g.size: g for g in gaps.list(TEAM, privacy=hidden)}
    assert listed[1].label == "one question (its text is hidden)" and listed[1].examples == ()
    assert "pension" in listed[2].label and listed[2].examples == ()  # a label of shared terms stays
    detail = gaps.detail(TEAM, listed[2].id, privacy=hidden)
    assert {(q.user_id, q.question) for q in detail.questions} == {(pseudonym(b"salt", ASKER), None)}
    shown = gaps.detail(TEAM, listed[2].id, privacy=Privacy())
    assert {q.question for q in shown.questions} == set(TOPICS["pension"][:2])


def test_retention_takes_old_questions_and_empty_gaps_away(database, embedder, tmp_path):
    old = utcnow() - dt.timedelta(days=60)
    for question in TOPICS["asbestos"]:
        record(database, question, at=old)
    record(database, TOPICS["pension"][0], at=old)
    record(database, TOPICS["pension"][1])
    gaps = Gaps(database, embedder)
    gaps.refresh(TEAM)
    assert len(gaps.list(TEAM)) == 2
    settings = load_settings(home=tmp_path / "home", retention_days=30)
    service = MomentService(settings, database, Retriever(IndexStore(tmp_path / "none"), embedder))
    assert service.retention.apply() == 5
    (pension,) = gaps.list(TEAM, "all")
    assert pension.size == 1
    with database.session() as session:
        assert session.scalar(select(Gap).where(Gap.label.contains("asbestos"))) is None


def test_a_declined_questions_embedding_is_kept_when_it_is_answered_and_not_made_again(
    database, embedder, corpus, tmp_path
):
    service = MomentService(load_settings(home=tmp_path / "home", index_dir_override=corpus.root), database,
                            Retriever(corpus, embedder))  # fmt: skip
    for question in TOPICS["asbestos"]:
        assert not service.asking.ask(question, _asker()).answered
    mileage = service.asking.ask("mileage rate for my own car", _asker())
    assert mileage.answered
    service.records.vote(mileage.interaction_id, OTHER, helpful=False)
    made = service.gaps.refresh(TEAM)
    assert (made.new_questions, made.new_gaps, made.embedded) == (5, 2, 1)  # only the answered one embedded now
    with database.session() as session:
        kept = {i.question: session.get(QuestionVector, i.id) for i in session.scalars(select(Interaction))}
    assert kept["mileage rate for my own car"] is None  # answered: nothing kept
    vector = np.frombuffer(kept[TOPICS["asbestos"][0]].embedding, dtype=np.float32)
    assert float(vector @ embedder.encode([TOPICS["asbestos"][0]])[0]) > 0.999


def test_a_declined_question_spooled_while_the_database_is_down_keeps_its_embedding(corpus, embedder, tmp_path):
    down = Database("postgresql+psycopg://postgres@127.0.0.1:9/moment?connect_timeout=2")  # nothing listens there
    service = MomentService(load_settings(home=tmp_path / "home"), down, Retriever(corpus, embedder))
    assert not service.asking.ask(TOPICS["pension"][0], _asker()).answered and service.records.spool.pending() == 1
    up = Database(f"sqlite:///{tmp_path / 'moment.db'}")
    up.upgrade()
    service.records.database = up
    assert service.records.spool.replay(up) == 1
    made = Gaps(up, embedder).refresh(TEAM)
    assert (made.new_questions, made.embedded) == (1, 0)
    up.dispose()


# -- re-asking after the content changed ------------------------------------------------------------------

LEAVE_PAGE = """
# Parental leave
## How many weeks
Every parent gets 26 weeks of paid parental leave: maternity, paternity and shared parental leave alike.
New dads and mums book it in the HR portal under Absence > Parental leave, at least 8 weeks ahead.
## How long paternity leave is
Paternity leave is 26 weeks long, the same as maternity leave, and is paid in full.
"""


@pytest.mark.slow
def test_after_the_content_changed_the_worker_reasks_the_questions_and_closes_the_answered_gap(
    database, embedder, content, slack_api, tmp_path
):
    content.vpn_token_page()
    settings = load_settings(home=tmp_path / "home", content_dir=content.root, index_dir_override=tmp_path / "index",
                             slack_bot_token=SecretStr(BOT_TOKEN), slack_api_url=slack_api.api_url)  # fmt: skip
    service = MomentService(settings, database, Retriever(IndexStore(tmp_path / "index"), embedder, reload_interval=0))
    service.operations.indexing.index()
    leave = ["how many weeks of parental leave do I get", "how long is paternity leave",
             "parental leave for new dads"]  # fmt: skip
    for question in [*leave, "what is on the canteen menu today"]:
        assert not service.asking.ask(question, _asker()).answered
    before = len(_interactions(database))
    worker.setup(settings, service)
    try:
        assert worker.content_gaps()["new_gaps"] == 2
        gap = gap_of(service.gaps, leave[0])
        assert (gap.answered_now, gap.checked, gap.now_answered) == (0, 3, "now answered 0 of 3")
        assert worker.content_gaps() == {"new_questions": 0, "new_gaps": 0, "rechecked": 0, "closed": 0}
        service.gaps.assign(TEAM, gap.id, OWNER, ADMIN)
        slack_api.clear()

        content.markdown("hr/parental-leave.md", "Parental leave", LEAVE_PAGE, type_="reference")
        service.operations.indexing.index()
        done = worker.content_gaps()
        assert done["rechecked"] == 4 and done["closed"] == 1
    finally:
        worker._context = None
    answered = service.gaps.detail(TEAM, gap.id)
    assert answered.gap.status == "closed" and answered.gap.now_answered == "now answered 3 of 3"
    assert all(q.answered_now for q in answered.questions)
    assert [(e.actor, e.action, e.detail) for e in answered.history][-2:] == [
        ("moment", "rechecked", "now answered 3 of 3"),
        ("moment", "closed", "all 3 questions answered by the content now")]  # fmt: skip
    told = slack_api.wait_for("chat.postMessage")
    assert slack_api.calls("conversations.open")[0].params["users"] == OWNER
    assert "*parental leave* (gap" in told.params["text"] and "now answered 3 of 3" in told.params["text"]
    assert len(slack_api.calls("chat.postMessage")) == 1  # the canteen gap has no owner, and was not closed
    canteen = gap_of(service.gaps, "what is on the canteen menu today")
    assert canteen.status == "open" and canteen.now_answered == "now answered 0 of 1"
    assert len(_interactions(database)) == before  # re-asking records nothing


def _asker():
    return Asker(user_id=ASKER, surface="dm", channel_id="D0ASKER01")


def _interactions(database):
    with database.session() as session:
        return session.scalars(select(Interaction.id)).all()


# -- Slack ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_slack_admins_list_the_gaps_and_anyone_else_is_refused(moment_app, slack_api, database_url, embedder):
    app = moment_app(database_url, env={"MOMENT_ADMINS": ADMIN})
    database = Database(database_url)
    try:
        for question in ("<!here> how long is paternity leave", "how many weeks of parental leave do I get"):
            record(database, question)
        Gaps(database, embedder).refresh(TEAM)
    finally:
        database.dispose()

    def command(user: str, text: str = "gaps"):
        url = slack_api.response_url()
        started = time.monotonic()
        fields = P.slash_command(text, user=user, channel="C0LANDD001", response_url=url, command="/moment")
        assert app.sender.command(fields).status_code == 200 and time.monotonic() - started < 3
        return slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == url.rsplit("/", 1)[-1])

    listing = command(ADMIN).text()
    assert "Content gaps" in listing and "parental leave" in listing and "2 asked" in listing
    assert "<!here>" not in listing
    gap_id = re.search(r"• \*(\d+)\* ", listing).group(1)  # the one gap
    shown = command(ADMIN, f"gaps show {gap_id}").text()
    assert "&lt;!here&gt; how long is paternity leave" in shown and "<!here>" not in shown and "created" in shown
    slack_api.clear()
    assigned = command(ADMIN, f"gaps assign {gap_id} <@{OWNER}|olive>").text()
    assert f"is assigned to <@{OWNER}>; I've sent them its questions" in assigned
    dm = slack_api.wait_for("chat.postMessage")
    assert slack_api.calls("conversations.open")[0].params["users"] == OWNER
    assert "&lt;!here&gt; how long is paternity leave" in dm.params["text"] and "<!here>" not in dm.params["text"]
    assert "is closed" in command(ADMIN, f"gaps close {gap_id} the HR page covers it now").text()
    assert "No gap 999 in this workspace" in command(ADMIN, "gaps show 999").text()
    assert "Use `/moment gaps`" in command(ADMIN, "gaps assign 1").text()  # nobody named
    for text in ("gaps", f"gaps close {gap_id}", f"gaps assign {gap_id} <@{ASKER}>"):
        refusal = command(ASKER, text).text()
        assert "for Moment admins" in refusal and "parental" not in refusal
    database = Database(database_url)
    try:
        history = Gaps(database).detail(TEAM, int(gap_id)).history
    finally:
        database.dispose()
    assert [(e.actor, e.action, e.detail) for e in history][1:] == [
        (ADMIN, "assigned", OWNER),
        (ADMIN, "closed", "the HR page covers it now"),
    ]  # fmt: skip  (nothing refused)
