"""Verified answers taught by people: real index, real model, real SQLite and PostgreSQL, the real CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from assistant.access.audiences import Viewer
from assistant.answering.retrieval import Retriever
from assistant.answering.verified import MATCH_COSINE, VerifyError, digit_keys
from assistant.cli.render_text import render_answer
from assistant.db.models import AuditEvent
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from assistant.slack.blocks import answer_blocks
from indexer.build import build_index
from tests.test_cli import in_process

ASKER = Asker(user_id="U0ASKER01", surface="cli")
BOLTS = """
# Bracket bolt torques
Use a calibrated torque wrench for every bracket bolt.
## M10 bolts
Tighten M10 bracket bolts to 45 Nm, in two passes.
## M12 bolts
Tighten M12 bracket bolts to 80 Nm, in two passes, then mark them with paint.
## Spares
Spare bolts are in the van's left-hand drawer.
"""


def _content(content):
    content.markdown("install/bolts.md", "Bracket bolt torques", BOLTS, url="https://i.example/bolts")
    content.markdown(
        "hr/grievance.md",
        "Raising a grievance",
        "## Formal grievance\nWrite to the people team within 20 days; a hearing follows within 5 days.\n",
        audience="[managers]",
    )
    content.markdown("safety/ladders.md", "Ladders", "## Before you climb\nCheck the feet and the rungs.\n")


@pytest.fixture
def service(content, store, embedder, database, tmp_path) -> MomentService:
    _content(content)
    build_index(content.root, store, embedder)
    settings = load_settings(home=tmp_path / "home", index_dir_override=store.root)
    return MomentService(settings, database, Retriever(store, embedder, reload_interval=0))


def test_a_taught_question_and_its_paraphrase_are_answered_from_the_section_whole(service):
    pair = service.asking.teach("what torque for an M12 bracket bolt", "install/bolts.md", "m12 BOLTS", "U0MENTOR1")
    assert pair.heading_path == ["M12 bolts"] and len(pair.embedding) == 384
    answer = service.asking.ask("M12 bracket bolt torque setting?", ASKER)
    assert answer.answered and answer.verified is not None
    assert answer.verified["id"] == pair.id and answer.verified["by"] == "U0MENTOR1"
    assert not answer.verified["needs_review"]
    best = answer.sources[0]
    assert best.snippet == "Tighten M12 bracket bolts to 80 Nm, in two passes, then mark them with paint."
    assert best.url == "https://i.example/bolts#m12-bolts" and best.heading_path == ["M12 bolts"]
    assert json.loads(json.dumps(answer.to_dict()))["verified"]["id"] == pair.id  # moment ask --json
    assert render_answer(answer).startswith("Verified by U0MENTOR1, ")
    facts = [b.to_dict() for b in answer_blocks(answer, owner_names={"U0MENTOR1": "Dana <ops>"})]
    assert any("Verified by Dana &lt;ops&gt;, " in json.dumps(b) for b in facts)  # the name escaped
    assert service.records.answer_for(answer.interaction_id).verified == answer.verified  # the stored answer


def test_m10_never_takes_m12s_answer_and_other_questions_are_answered_as_before(service):
    service.asking.teach("what torque for an M12 bracket bolt", "install/bolts.md", "M12 bolts", "U0MENTOR1")
    assert digit_keys("torque for M10 bolt") != digit_keys("torque for M12 bolt")
    m10 = service.asking.ask("what torque for an M10 bracket bolt", ASKER)
    assert m10.verified is None and "45 Nm" in m10.sources[0].snippet
    other = service.asking.ask("where are the spare bolts kept", ASKER)
    assert other.verified is None


def test_a_heading_or_item_that_does_not_exist_is_a_clear_error_naming_what_does(service, database):
    with pytest.raises(VerifyError) as error:
        service.asking.teach("torque for M12", "install/bolts.md", "M14 bolts", "U0ADMIN01")
    assert "has no heading 'M14 bolts'" in str(error.value)
    assert "'M10 bolts'; 'M12 bolts'; 'Spares'" in str(error.value)
    with pytest.raises(VerifyError, match=r"No indexed item at 'install/nuts\.md'"):
        service.asking.teach("torque for M12", "install/nuts.md", "M12", "U0ADMIN01")
    with database.session() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "verify")))
    assert [e.allowed for e in events] == [False, False]  # refused attempts are audited too


def test_a_taught_section_the_asker_may_not_see_is_never_shown(service):
    service.asking.teach("how do I raise a formal grievance", "hr/grievance.md", "Formal grievance", "U0ADMIN01")
    outsider = service.asking.ask("how do I raise a formal grievance", ASKER, viewer=Viewer("U0ASKER01", frozenset()))
    assert outsider.verified is None and all(s.path != "hr/grievance.md" for s in outsider.sources)
    manager = service.asking.ask(
        "how do I raise a formal grievance", ASKER, viewer=Viewer("U0ASKER01", frozenset({"managers"}))
    )
    assert manager.verified is not None and manager.sources[0].path == "hr/grievance.md"


def test_a_changed_section_is_flagged_for_review_until_taught_again_and_a_removed_one_answers_nothing(
    service, content, store, embedder
):
    pair = service.asking.teach("what torque for an M12 bracket bolt", "install/bolts.md", "M12 bolts", "U0MENTOR1")
    content.markdown("install/bolts.md", "Bracket bolt torques", BOLTS.replace("80 Nm", "85 Nm"))
    build_index(content.root, store, embedder)
    version = service.retriever.version()
    assert service.verified.status(service.verified.pairs()[0], version) == "needs review"
    flagged = service.asking.ask("what torque for an M12 bracket bolt", ASKER)
    assert flagged.verified["needs_review"] and "85 Nm" in flagged.sources[0].snippet
    assert any("changed since it was verified" in n for n in flagged.notices)
    again = service.asking.teach("what torque for an M12 bracket bolt", "install/bolts.md", "M12 bolts", "U0MENTOR2")
    assert again.id == pair.id  # re-confirmed, not a second pair
    assert not service.asking.ask("what torque for an M12 bracket bolt", ASKER).verified["needs_review"]
    content.remove("install/bolts.md")
    build_index(content.root, store, embedder)
    assert service.verified.status(service.verified.pairs()[0], service.retriever.version()) == "missing"
    assert service.asking.ask("what torque for an M12 bracket bolt", ASKER).verified is None


def test_the_cli_teaches_lists_and_removes(service, database):
    bad = in_process(service, "verify", "torque for M12", "install/bolts.md", "--heading", "M14")
    assert bad.exit_code == 1 and "Its headings: 'M10 bolts'; 'M12 bolts'; 'Spares'" in bad.output
    done = in_process(
        service, "verify", "what torque for an M12 bracket bolt", "install/bolts.md", "--heading", "M12 bolts"
    )
    assert done.exit_code == 0 and "answered from install/bolts.md › M12 bolts" in done.output
    listed = json.loads(in_process(service, "verified", "list", "--json").output)["verified"]
    assert [(r["question"], r["heading_path"], r["status"]) for r in listed] == [
        ("what torque for an M12 bracket bolt", ["M12 bolts"], "verified")
    ]
    assert "#1 “what torque for an M12 bracket bolt”" in in_process(service, "verified", "list").output
    gone = in_process(service, "verified", "remove", str(listed[0]["id"]))
    assert gone.exit_code == 0 and service.verified.pairs() == []
    missing = in_process(service, "verified", "remove", "999")
    assert missing.exit_code == 1 and "No verified answer #999" in missing.output
    with database.session() as session:
        actions = [(e.action, e.allowed) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [("verify", False), ("verify", True), ("verified_remove", True), ("verified_remove", False)]


def test_the_mentors_of_a_question_are_those_who_took_its_requests(service, database):
    from assistant.db.models import MentorRequest

    answer = service.asking.ask("what torque for an M12 bracket bolt", ASKER)
    with database.session() as session:
        session.add(
            MentorRequest(
                interaction_id=answer.interaction_id,
                asker_id=ASKER.user_id,
                team_id=service.workspaces.team(None),
                question=answer.question,
                status="resolved",
                owner_id="U0MENTOR1",
            )
        )
    assert service.mentoring.mentors_of_interaction(answer.interaction_id) == {"U0MENTOR1"}
    assert service.mentoring.mentors_of_interaction(answer.interaction_id, "T0OTHER") == set()  # another workspace's
    assert service.asking.sections_of("install/bolts.md")[1:] == [("M10 bolts",), ("M12 bolts",), ("Spares",)]


def test_helpful_votes_from_three_people_on_one_section_confirm_it_for_near_identical_questions(service, database):
    asked = [
        ("U0ASKER01", "where are spare bracket bolts kept in the van?"),
        ("U0ASKER02", "where are the spare bracket bolts kept in our van"),
        ("U0ASKER03", "where are the spare bracket bolts kept in the van"),
    ]
    answers = [service.asking.ask(q, Asker(user_id=u, surface="cli")) for u, q in asked]
    assert all(a.answered and a.sources[0].heading_path == ["Spares"] for a in answers), [
        (a.answered, a.confidence, a.sources[0].heading_path if a.sources else None) for a in answers
    ]
    service.records.vote(answers[0].interaction_id, "U0ASKER01", True)
    service.records.vote(answers[1].interaction_id, "U0ASKER02", False)  # Not helpful counts for nothing here
    service.records.vote(answers[1].interaction_id, "U0ASKER01", True)  # the same person twice is one person
    assert service.verified.pairs() == []
    service.records.vote(answers[1].interaction_id, "U0ASKER02", True)
    assert service.verified.pairs() == []  # two people
    service.records.vote(answers[2].interaction_id, "U0ASKER03", True)
    (pair,) = service.verified.pairs()
    assert pair.taught_by == "votes" and pair.heading_path == ["Spares"] and pair.question == asked[2][1]
    later = service.asking.ask("where do we keep the spare bracket bolts in the van", ASKER)
    assert later.verified is not None and later.verified["by"] == "votes"


def test_a_question_close_in_meaning_that_does_not_say_what_ties_the_taught_one_to_its_section_is_not_matched(
    service, content, store, embedder
):
    content.markdown(
        "it/tablet-vpn.md",
        "Connect to the VPN on a field tablet",
        "Your tablet connects to the VPN through the VPN app; FieldPro needs it to download new jobs.\n"
        "## Connect\n1. Make sure the tablet has signal. On customer Wi-Fi, accept any sign-in page in Chrome first.\n"
        "2. Open the VPN app and tap Connect.\n"
        "## If it will not connect\n1. Turn flight mode on for 10 seconds, then off again.\n"
        "2. Still failing? Call the IT Service Desk and quote the tablet asset number.\n",
    )
    build_index(content.root, store, embedder)
    taught = "at a customers house on their wifi and the tablet vpn just wont connect"
    service.asking.teach(taught, "it/tablet-vpn.md", "Connect", "U0MENTOR1")
    other = "tablet wont connect to vpn cant get my new jobs"
    vectors = embedder.encode([taught, other])
    assert float(vectors[0] @ vectors[1]) >= MATCH_COSINE and digit_keys(taught) == digit_keys(other)
    assert service.asking.ask(other, ASKER).verified is None  # "customer" ties the taught question to Connect
    paraphrase = service.asking.ask("on a customer's wifi at their house and the tablet vpn won't connect", ASKER)
    assert paraphrase.verified is not None and paraphrase.verified["heading_path"] == ["Connect"]
