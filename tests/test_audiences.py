"""Content audiences: items for some Slack user groups only, kept from everyone else before ranking.

Real components throughout: the real embedding model, FAISS (flat and HNSW), BM25, SQLite and PostgreSQL
(with TEST_DATABASE_URL). The Slack side (user groups read over HTTP, events, the answer in Slack) is in
tests/test_slack_audiences.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3

import pytest

from assistant.access.audiences import WITHHELD_NOTICE, GroupDirectory, UserGroupInfo, Viewer
from assistant.answering.retrieval import RetrievalParams, Retriever
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from assistant.slack.usergroups import SlackUserGroups
from indexer.build import build_index
from indexer.documents import group_name
from slackstub.api import SlackAPIStub

TOKEN = "xoxb-audience-test"

MANAGERS, PEOPLE_OPS = "S0MANAGERS1", "S0PEOPLEOP1"
BOSS, WORKER, HR = "U0BOSS0001", "U0WORKER01", "U0HRPERSON"
TEAM = "T0MOMENT1"  # the workspace the stand-in's auth.test names
GRIEVANCE_QUESTION = "how do i handle a formal grievance raised by someone in my team"
MANAGERS_TITLE = "Handle a formal grievance as a manager"
PUBLIC_TITLE = "Raise a grievance"


def write_grievance_content(content, *, audience: str = "[managers, people-ops]") -> None:
    content.markdown(
        "hr/handle-grievance.md",
        MANAGERS_TITLE,
        """
        ## Steps
        1. Acknowledge the formal grievance in writing within 5 working days.
        2. Hold a grievance meeting with the employee from your team; they may bring a companion.
        3. Investigate, then write the outcome and the right of appeal to the employee.
        """,
        type_="procedure",
        audience=audience,
    )
    content.markdown(
        "hr/raise-grievance.md",
        PUBLIC_TITLE,
        """
        ## How to raise a grievance
        Talk to your manager first. If that does not settle it, write to People Ops with what happened,
        and they will arrange a formal grievance meeting.
        """,
        type_="procedure",
    )
    content.vpn_token_page()


def viewer(*groups: str, user: str = "U0SOMEONE1") -> Viewer:
    return Viewer(user, frozenset(groups))


def titles(result) -> list[str]:
    return [h.doc.meta.title for h in result.hits]


# -- the content format ------------------------------------------------------------------------------


def test_group_names_are_ids_or_handles():
    assert group_name("@People-Ops") == "people-ops"
    assert group_name("S0123ABCD") == "S0123ABCD"
    assert group_name("<!subteam^S0123ABCD|@managers>") == "S0123ABCD"
    assert group_name("managers team") is None
    assert group_name("") is None


def test_audience_from_front_matter_and_from_a_sidecar(content, store, embedder):
    write_grievance_content(content, audience='"@Managers, S0PEOPLEOP1"')
    content.write("hr/policy.txt", "The grievance policy in full.\n\nAppeals go to a director.\n")
    content.write("hr/policy.yml", "title: Grievance policy\nowner: U0TESTOWN1\naudience: [people-ops]\n")
    report = build_index(content.root, store, embedder)
    assert report.ok, report.failed
    version = store.open()
    assert version.by_path["hr/handle-grievance.md"].meta.audience == ("managers", PEOPLE_OPS)
    assert version.by_path["hr/policy.txt"].meta.audience == ("people-ops",)
    assert version.by_path["hr/raise-grievance.md"].meta.audience == ()
    assert sorted(version.restricted) == sorted(
        [version.by_path["hr/handle-grievance.md"].number, version.by_path["hr/policy.txt"].number]
    )


def test_malformed_audience_names_the_file_and_loses_nothing_else(content, store, embedder):
    write_grievance_content(content, audience='[managers, "line managers", 42]')
    content.markdown("hr/secret.md", "Salary bands", "Band C starts at 41,000.", audience="{managers: yes}")
    content.markdown("hr/empty.md", "Exit interviews", "Ask why they leave.", audience="[]")
    report = build_index(content.root, store, embedder)
    failed = {f.path: f.reason for f in report.failed}
    assert set(failed) == {"hr/secret.md", "hr/empty.md"}
    assert "audience" in failed["hr/secret.md"] and "audience" in failed["hr/empty.md"]
    warned = [w.reason for w in report.warnings if w.path == "hr/handle-grievance.md"]
    assert any("'line managers'" in w for w in warned) and any("42" in w for w in warned)
    version = store.open()
    # The good value is kept (the item is shown to fewer people, never to more); every other file is indexed.
    assert version.by_path["hr/handle-grievance.md"].meta.audience == ("managers",)
    assert {"hr/raise-grievance.md", "it/vpn-token.md"} <= set(version.by_path)
    assert "hr/secret.md" not in version.by_path


def test_an_audience_made_unreadable_withdraws_the_indexed_version(content, store, embedder):
    content.markdown("hr/bands.md", "Salary bands", "Band C starts at 41,000.")
    content.vpn_token_page()
    build_index(content.root, store, embedder)
    assert "hr/bands.md" in store.open().by_path
    # The owner meant to restrict it and made a typo: the old, public version must not keep serving.
    content.markdown("hr/bands.md", "Salary bands", "Band C starts at 41,000.", audience="[]")
    report = build_index(content.root, store, embedder)
    assert [f.path for f in report.failed] == ["hr/bands.md"]
    assert "withdrawn" in report.failed[0].reason
    assert "hr/bands.md" not in store.open().by_path
    # A typo elsewhere still keeps the earlier version serving, as before.
    content.markdown("it/vpn-token.md", "Reset a VPN hardware token", "Steps.", type_="nonsense")
    report = build_index(content.root, store, embedder)
    failed = {f.path: f.reason for f in report.failed}
    assert "stays in the index" in failed["it/vpn-token.md"] and "it/vpn-token.md" in store.open().by_path


def test_an_index_of_the_old_format_loads_without_audiences_and_is_read_again(content, store, embedder):
    write_grievance_content(content)
    build_index(content.root, store, embedder)
    version = store.open()
    directory = version.directory
    version.close()
    # Make it what the previous release wrote: format 2, no audience column.
    meta = json.loads((directory / "meta.json").read_text())
    meta["format"] = 2
    (directory / "meta.json").write_text(json.dumps(meta))
    with sqlite3.connect(directory / "catalog.sqlite") as db:
        db.execute("ALTER TABLE documents DROP COLUMN audience")
    db.close()
    old = store.open()
    assert old.restricted == {} and old.by_path["hr/handle-grievance.md"].meta.audience == ()
    # The next build reads every file again (an unchanged file's audience is not taken from the old index).
    report = build_index(content.root, store, embedder)
    assert report.published and not report.unchanged
    assert store.open().by_path["hr/handle-grievance.md"].meta.audience == ("managers", "people-ops")


# -- retrieval -------------------------------------------------------------------------------------


@pytest.mark.parametrize("faiss_kind", ["flat", "hnsw"])
def test_member_gets_the_restricted_procedure_and_a_non_member_the_next_allowed_one(
    content, store, embedder, faiss_kind
):
    write_grievance_content(content)
    build_index(content.root, store, embedder, faiss_kind=faiss_kind)
    retriever = Retriever(store, embedder)
    assert titles(retriever.search(GRIEVANCE_QUESTION, viewer=viewer("managers")))[0] == MANAGERS_TITLE
    assert titles(retriever.search(GRIEVANCE_QUESTION, viewer=viewer("people-ops", PEOPLE_OPS)))[0] == MANAGERS_TITLE
    for outsider in (viewer("finance"), viewer(), Viewer.public(), Viewer.unknown(WORKER, "Slack is down")):
        result = retriever.search(GRIEVANCE_QUESTION, viewer=outsider)
        assert MANAGERS_TITLE not in titles(result), outsider
        assert titles(result)[0] == PUBLIC_TITLE
        assert result.hidden_documents == 1
    # Without a viewer (evaluation, benchmarks) the whole index is searched.
    assert titles(retriever.search(GRIEVANCE_QUESTION))[0] == MANAGERS_TITLE


@pytest.mark.parametrize("faiss_kind", ["flat", "hnsw"])
def test_restricted_items_take_no_place_among_the_candidates(content, store, embedder, faiss_kind):
    """Filtering before ranking: twelve restricted near-copies closer to the question than the one allowed
    item fill every candidate place (3 here) when filtered afterwards; filtered before, the allowed item is
    found, by both the dense and the keyword side."""
    for region in range(12):
        content.markdown(
            f"hr/regions/grievance-{region}.md",
            f"Handle a formal grievance in region {region}",
            """
            ## Steps for managers
            1. Acknowledge the formal grievance from your team member within 5 working days.
            2. Hold the formal grievance meeting and write the outcome.
            """,
            type_="procedure",
            audience="[managers]",
        )
    content.markdown(
        "hr/complaints.md",
        "Complaints at work",
        """
        When a formal grievance reaches People Ops, they keep the record.
        The office kitchen is cleaned on Fridays, parking permits are renewed in January, the library lends
        laptops for a week, visitors sign in at reception, the lifts are serviced monthly, lost property goes
        to the front desk, and the canteen serves breakfast from seven until half past nine every weekday.
        """,
        type_="reference",
    )
    build_index(content.root, store, embedder, faiss_kind=faiss_kind)
    params = dataclasses.replace(RetrievalParams.load(), candidates=3)
    retriever = Retriever(store, embedder, params)
    # Unfiltered, the near-copies take every candidate place on both sides.
    version = store.open()
    public = version.by_path["hr/complaints.md"].chunk_start
    _, dense = version.dense.search(embedder.encode([GRIEVANCE_QUESTION]), 3)
    keyword, _ = version.keywords.search(GRIEVANCE_QUESTION, 3)
    assert public not in dense[0].tolist() and public not in keyword.tolist()
    outsider = retriever.search(GRIEVANCE_QUESTION, viewer=viewer())
    assert titles(outsider) == ["Complaints at work"]
    assert outsider.hits[0].dense_rank == 0 and outsider.hits[0].keyword_rank == 0


def test_an_index_without_restrictions_never_asks_who_is_looking(corpus, embedder):
    retriever = Retriever(corpus, embedder)

    def lookup():
        raise AssertionError("groups looked up for an index with nothing restricted")

    result = retriever.search("how do i reset my vpn token", viewer=lookup)
    assert result.viewer is None and result.hidden_documents == 0
    assert titles(result)[0] == "Reset a VPN hardware token"


# -- the group cache ---------------------------------------------------------------------------------


def test_group_cache_is_shared_fresh_and_fails_closed(database):
    now = dt.datetime.now(dt.UTC)
    directory = GroupDirectory(database, max_age=dt.timedelta(minutes=60))
    assert not directory.viewer(BOSS).known  # never read from Slack
    directory.failed("T1", "Slack could not be reached (URLError)", now=now)
    unknown = directory.viewer(BOSS, "T1", now=now)
    assert not unknown.known and "URLError" in unknown.why_unknown
    directory.replace(
        "T1",
        [
            UserGroupInfo(MANAGERS, "managers", "Managers", frozenset({BOSS, HR})),
            UserGroupInfo(PEOPLE_OPS, "people-ops", "People Ops", frozenset({HR})),
            UserGroupInfo("S0SALES001", "sales", "Sales", None),
        ],
        now=now,
    )
    boss = directory.viewer(BOSS, "T1", now=now)
    assert boss.known and boss.groups == {MANAGERS, "managers"}
    assert boss.may_see(("managers",)) and boss.may_see((MANAGERS,)) and not boss.may_see(("people-ops",))
    assert directory.viewer(HR, now=now).groups == {MANAGERS, "managers", PEOPLE_OPS, "people-ops"}
    assert directory.viewer(WORKER, "T1", now=now).known and not directory.viewer(WORKER, now=now).groups
    # Another process (a second directory on the same database) sees the same.
    assert GroupDirectory(database).viewer(BOSS, "T1", now=now).groups == boss.groups
    # Membership changes announced by Slack.
    directory.change_members("T1", MANAGERS, added=[WORKER], removed=[BOSS])
    assert directory.viewer(WORKER, "T1", now=now).may_see(("managers",))
    assert not directory.viewer(BOSS, "T1", now=now).may_see(("managers",))
    directory.update_group("T1", UserGroupInfo(MANAGERS, "line-managers", "Line managers", frozenset({BOSS})))
    assert directory.viewer(BOSS, "T1", now=now).groups == {MANAGERS, "line-managers"}
    directory.remove_group("T1", MANAGERS)
    assert not directory.viewer(BOSS, "T1", now=now).groups
    # A failed read leaves the cache as it was until it is too old: then nobody's groups are known.
    directory.failed("T1", "Slack said ratelimited", now=now + dt.timedelta(minutes=30))
    assert directory.viewer(HR, "T1", now=now + dt.timedelta(minutes=30)).known
    late = directory.viewer(HR, "T1", now=now + dt.timedelta(minutes=61))
    assert not late.known and not late.may_see(("people-ops",)) and "ratelimited" in late.why_unknown
    assert late.may_see(())
    status = directory.status("T1", {"people-ops", "finance"}, now=now)
    assert status.fresh and status.groups == 2 and status.unknown_names == ["finance"]


# -- the service: answers, App Home, a mentor's context, reports ---------------------------------------------


@pytest.fixture
def slack():
    with SlackAPIStub(token=TOKEN) as stub:
        stub.set_usergroup(MANAGERS, "managers", [BOSS, HR])
        stub.set_usergroup(PEOPLE_OPS, "people-ops", [HR])
        stub.set_usergroup("S0SALES001", "sales", [WORKER])
        yield stub


@pytest.fixture
def service(content, store, embedder, database, tmp_path, slack) -> MomentService:
    from slack_sdk import WebClient

    write_grievance_content(content)
    build_index(content.root, store, embedder)
    settings = load_settings(home=tmp_path / "home", index_dir_override=store.root)
    service = MomentService(settings, database, Retriever(store, embedder))
    client = WebClient(token=TOKEN, base_url=slack.api_url)
    service.access.group_source = SlackUserGroups(client, service.access.groups, service.access.audience_names)
    return service


def shown_titles(answer) -> list[str]:
    return [s.title for s in answer.sources]


def dm_asker(user: str) -> Asker:
    return Asker(user_id=user, surface="dm", team_id=TEAM, channel_id="D0" + user[2:])


def test_only_members_are_answered_from_restricted_content_wherever_it_would_show(service, slack):
    boss = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(BOSS))
    assert (
        boss.answered
        and shown_titles(boss)[0] == MANAGERS_TITLE
        and boss.sources[0].audience == ["managers", "people-ops"]
    )
    assert WITHHELD_NOTICE not in boss.notices
    # Read from Slack once (the cache was empty), and only the members of the groups content names.
    assert {c.params["usergroup"] for c in slack.calls("usergroups.users.list")} == {MANAGERS, PEOPLE_OPS}
    worker = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(WORKER))
    assert MANAGERS_TITLE not in shown_titles(worker)  # neither the answer nor "Also see"
    assert not worker.answered or shown_titles(worker)[0] == PUBLIC_TITLE
    # In a channel's thread everyone reads the answer: content for everyone only, whoever asked.
    in_channel = service.asking.ask(GRIEVANCE_QUESTION, Asker(BOSS, "mention", "T0MOMENT1", "C0GENERAL", "1.0"))
    assert MANAGERS_TITLE not in shown_titles(in_channel)
    assert len(slack.calls("usergroups.list")) == 1  # the cache served the rest

    # App Home: the boss's history shows the item while they are a manager, not after they leave the group.
    home = service.records.recent_interactions(BOSS, team_id=TEAM)
    assert MANAGERS_TITLE in [s.title for row in home for s in row.sources]
    slack.set_usergroup(MANAGERS, "managers", [HR])
    assert service.access.group_source.refresh()
    assert MANAGERS_TITLE not in [
        s.title for row in service.records.recent_interactions(BOSS, team_id=TEAM) for s in row.sources
    ]
    assert (
        service.records.recent_interactions(BOSS, team_id=TEAM)[0].question == GRIEVANCE_QUESTION
    )  # their question stays

    # A mentor's context: what the asker was shown, as far as asker and mentor may both see it.
    stored = service.records.answer_for(boss.interaction_id, TEAM).to_dict()["sources"]
    assert MANAGERS_TITLE in [s["title"] for s in stored]
    both = service.access.visible_sources(stored, [HR, HR], TEAM)
    assert MANAGERS_TITLE in [s["title"] for s in both]
    assert MANAGERS_TITLE not in [s["title"] for s in service.access.visible_sources(stored, [HR, WORKER], TEAM)]

    # Reports: an admin's names the item; the digest, read by a channel of non-admins, does not.
    assert MANAGERS_TITLE in [u.title for u in service.operations.report(1, team_id=TEAM).top_content]
    digest = service.operations.report(1, team_id=TEAM, for_everyone=True)
    assert MANAGERS_TITLE not in [u.title for u in digest.top_content] and digest.restricted_items == 1


def test_a_mentor_is_shown_what_the_asker_saw_only_as_far_as_both_may_see_it(service, slack):
    """The hand-off decides, per mentor, what of the asker's answer goes with an offer and into the
    conversation; the notifier (here a recorder) gets it ready-made."""
    from assistant.mentoring.handoff import Handoff
    from tests.test_mentors import RecordingNotifier

    boss = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(BOSS))
    assert boss.answered and shown_titles(boss)[0] == MANAGERS_TITLE
    for mentor, name in ((HR, "Hana Ruiz"), (WORKER, "Wes Orr")):  # HR is a manager, the worker is not
        service.mentors.add(TEAM, mentor, ["grievances", "formal complaints"], by="U0ADMIN001", name=name)
        service.mentors.vet(TEAM, mentor, by="U0ADMIN001")
    notifier = RecordingNotifier()
    handoff = service.mentoring.handoff(notifier, TEAM)
    request = handoff.request(asker_id=BOSS, question=GRIEVANCE_QUESTION, interaction_id=boss.interaction_id)
    handoff.decline(request.id, notifier.of("offer")[0][2])
    offered = {mentor: shown for _, _, mentor, _, shown in notifier.of("offer")}
    # Both managers: the passage the boss was answered with. The worker gets the rest.
    assert offered[HR][0]["title"] == MANAGERS_TITLE and offered[HR][0]["snippet"]
    assert offered[WORKER] and MANAGERS_TITLE not in [s["title"] for s in offered[WORKER]]

    handoff.accept(request.id, WORKER)
    (_, _, _, owner, owner_name, shown) = notifier.of("connect")[0]
    assert (owner, owner_name) == (WORKER, "Wes Orr") and MANAGERS_TITLE not in [s["title"] for s in shown]
    assert handoff.get(request.id).shown == ()  # a view not made for a mentor shows nothing
    handoff.cancel(request.id, BOSS)

    # Without a way to tell who may see what, an item for some groups only goes to no mentor at all.
    blind = RecordingNotifier()
    Handoff(service.database, service.mentors, blind, team_id=TEAM).request(
        asker_id=BOSS, question=GRIEVANCE_QUESTION, interaction_id=boss.interaction_id
    )
    (_, _, mentor, _, shown) = blind.of("offer")[0]
    assert mentor == HR and shown and MANAGERS_TITLE not in [s["title"] for s in shown]


def test_when_slack_cannot_be_asked_restricted_items_are_withheld_and_the_asker_told(service, slack):
    slack.fail_next("usergroups.list", status=503, times=20)
    answer = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(BOSS))
    assert MANAGERS_TITLE not in shown_titles(answer)
    assert WITHHELD_NOTICE in answer.notices
    status = service.access.groups.status()
    assert status.synced_at is None and status.error.startswith("Slack")
    # `/moment status` tells the admins why.
    from assistant.slack.admin_blocks import status_blocks

    shown = json.dumps([b.to_dict() for b in status_blocks(service.operations.status())])
    assert "1 items for some user groups only" in shown and "never read" in shown and "withheld" in shown
    # A question about unrestricted content is answered as usual (nothing it needs was withheld).
    vpn = service.asking.ask("how do i reset my vpn token", dm_asker(BOSS))
    assert vpn.answered and shown_titles(vpn)[0] == "Reset a VPN hardware token"
    # ... and says nothing about withheld content: none would have been among what it shows.
    assert WITHHELD_NOTICE not in vpn.notices


def test_a_process_keeps_groups_briefly_and_forgets_them_when_it_writes(database):
    """Groups are kept in the process for `cache_seconds`: a write through this directory (an event this
    process handled) is seen at once; one by another process (its own directory) once the time is up."""
    here = GroupDirectory(database, cache_seconds=0.5)
    elsewhere = GroupDirectory(database, cache_seconds=0.5)  # another process on the same database
    here.replace("T1", [UserGroupInfo(MANAGERS, "managers", "Managers", frozenset({BOSS}))])
    assert here.viewer(BOSS, "T1").may_see(("managers",))
    elsewhere.change_members("T1", MANAGERS, added=[], removed=[BOSS])
    assert here.viewer(BOSS, "T1").may_see(("managers",))  # kept: at most cache_seconds late
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    while here.viewer(BOSS, "T1").may_see(("managers",)) and dt.datetime.now() < deadline:
        pass
    assert not here.viewer(BOSS, "T1").may_see(("managers",))
    # A change written here is seen here at once, whatever was kept.
    assert not here.viewer(HR, "T1").may_see(("managers",))
    here.change_members("T1", MANAGERS, added=[HR], removed=[])
    assert here.viewer(HR, "T1").may_see(("managers",))
    here.remove_group("T1", MANAGERS)
    assert not here.viewer(HR, "T1").may_see(("managers",))
    # The cache never outlives the freshness rule: 0 reads every time.
    assert GroupDirectory(database, cache_seconds=0).viewer(HR, "T1").known


def test_a_mentors_draft_keeps_the_audience_of_what_the_question_was_answered_from(service, slack, tmp_path):
    from assistant.db.models import MentorRequest
    from assistant.slack.mentor_blocks import drafts_blocks
    from indexer.store import IndexStore

    boss = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(BOSS))
    worker = service.asking.ask(GRIEVANCE_QUESTION, dm_asker(WORKER))
    assert boss.sources[0].title == MANAGERS_TITLE and MANAGERS_TITLE not in shown_titles(worker)
    with service.database.session() as session:
        requests = [
            MentorRequest(
                team_id=TEAM,
                asker_id=who,
                question=GRIEVANCE_QUESTION,
                status="accepted",
                owner_id=HR,
                interaction_id=i,
            )
            for who, i in ((BOSS, boss.interaction_id), (WORKER, worker.interaction_id))
        ]
        session.add_all(requests)
        session.flush()
        ids = [r.id for r in requests]
    restricted = service.drafts.save(
        TEAM, author_id=HR, title="Formal grievances", body="1. Write back.", request_id=ids[0]
    )
    public = service.drafts.save(
        TEAM, author_id=HR, title="Raising a grievance", body="1. Talk to us.", request_id=ids[1]
    )
    assert restricted.audience == ("managers", "people-ops") and not public.audience
    # The review shows it, and the job aid written on approval keeps it: once indexed, members only.
    review = json.dumps([b.to_dict() for b in drafts_blocks(service.drafts.pending(TEAM))])
    assert review.count(":lock: For @managers, @people-ops only") == 1
    service.drafts.decide(TEAM, restricted.id, "U0ADMIN001", approve=True)
    service.drafts.decide(TEAM, public.id, "U0ADMIN001", approve=True)
    content_dir = tmp_path / "approved"
    service.drafts.write_approved(content_dir)
    store = IndexStore(tmp_path / "approved-index")
    assert build_index(content_dir, store, service.retriever.embedder).ok
    indexed = store.open().by_path
    assert indexed[restricted.path].meta.audience == ("managers", "people-ops")
    assert indexed[public.path].meta.audience == ()


def test_with_oauth_installs_a_stale_cache_is_read_with_the_workspaces_own_token(database, slack):
    """A web process serving many workspaces has no token of its own: the group refresh a question
    triggers goes with the asker's workspace's token, and not at all for a workspace without one."""
    from slack_sdk import WebClient

    tokenless = WebClient(base_url=slack.api_url)
    clients = {TEAM: WebClient(token=TOKEN, base_url=slack.api_url)}
    directory = GroupDirectory(database, max_age=dt.timedelta(hours=1))
    source = SlackUserGroups(tokenless, directory, lambda: {"managers"}, client_for=clients.get)
    assert source.refresh(TEAM)
    listed = slack.calls("usergroups.list")
    assert len(listed) == 1 and listed[0].token == TOKEN
    assert "managers" in directory.viewer(BOSS, TEAM).groups
    assert source.refresh("T0GONE0001") is False  # uninstalled: no token, so Slack is not asked
    assert len(slack.calls("usergroups.list")) == 1
