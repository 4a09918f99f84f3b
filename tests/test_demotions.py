"""Not helpful demotes a passage for the questions it was voted on: real index, real model, real SQLite and
PostgreSQL, the real CLI."""

from __future__ import annotations

import json

from sqlalchemy import select

from assistant.db.models import AuditEvent, PassageDemotion
from assistant.records.interactions import Asker
from assistant.records.privacy import forget_user
from tests import test_verified
from tests.test_cli import in_process

service = test_verified.service  # the fixture: the bolts page (M10, M12, Spares), a grievance, ladders
SPARES = "where are the spare bracket bolts kept in the van"
PARAPHRASE = "where do we keep the spare bracket bolts in the van"


def _asker(user: str, team: str | None = None) -> Asker:
    return Asker(user_id=user, surface="cli", team_id=team)


def _shown(answer) -> tuple | None:
    return (answer.sources[0].path, tuple(answer.sources[0].heading_path)) if answer.sources else None


def test_not_helpful_keeps_the_section_from_that_question_and_its_paraphrases_only(service, database):
    unrelated = service.asking.ask("what torque for an M10 bracket bolt", _asker("U0ASKER09"))
    first = service.asking.ask(SPARES, _asker("U0ASKER01"))
    assert first.answered and _shown(first) == ("install/bolts.md", ("Spares",))
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    service.records.vote(first.interaction_id, "U0ASKER01", False, "I wanted the torque")  # its comment (Slack)
    again = service.asking.ask(SPARES, _asker("U0ASKER02"))
    assert _shown(again) != ("install/bolts.md", ("Spares",))  # the next best passage, or declined
    assert all(s.heading_path != ["Spares"] for s in again.sources if s.path == "install/bolts.md")
    assert all(e.heading_path != ["Spares"] for e in again.outline)  # not one click away either
    paraphrase = service.asking.ask(PARAPHRASE, _asker("U0ASKER03"))
    assert _shown(paraphrase) != ("install/bolts.md", ("Spares",))
    after = service.asking.ask("what torque for an M10 bracket bolt", _asker("U0ASKER09"))
    assert (_shown(after), after.sources[0].snippet, after.confidence) == (
        _shown(unrelated),
        unrelated.sources[0].snippet,
        unrelated.confidence,
    )
    elsewhere = service.asking.ask(SPARES, _asker("U0ASKER01", team="T0OTHER"))  # another workspace
    assert _shown(elsewhere) == ("install/bolts.md", ("Spares",))
    with database.session() as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "demote"))
    assert event.user_id == "U0ASKER01" and "Spares" in event.detail


def test_an_m12_demotion_leaves_the_m10_question_alone(service):
    m12 = service.asking.ask("what torque for an M12 bracket bolt", _asker("U0ASKER01"))
    m10 = service.asking.ask("what torque for an M10 bracket bolt", _asker("U0ASKER02"))
    service.records.vote(m12.interaction_id, "U0ASKER01", False)
    assert _shown(service.asking.ask("what torque for an M12 bracket bolt", _asker("U0ASKER03"))) != _shown(m12)
    m10_after = service.asking.ask("what torque for an M10 bracket bolt", _asker("U0ASKER02"))
    assert (_shown(m10_after), m10_after.sources[0].snippet) == (_shown(m10), m10.sources[0].snippet)


def test_helpful_votes_from_more_people_outweigh_one_not_helpful(service):
    answers = {u: service.asking.ask(SPARES, _asker(u)) for u in ("U0ASKER01", "U0ASKER02", "U0ASKER03")}
    assert all(_shown(a) == ("install/bolts.md", ("Spares",)) for a in answers.values())
    service.records.vote(answers["U0ASKER02"].interaction_id, "U0ASKER02", True)
    service.records.vote(answers["U0ASKER01"].interaction_id, "U0ASKER01", False)
    assert _shown(service.asking.ask(SPARES, _asker("U0ASKER04"))) != ("install/bolts.md", ("Spares",))  # 1 : 1
    service.records.vote(answers["U0ASKER03"].interaction_id, "U0ASKER03", True)
    assert service.verified.pairs() == []  # two Helpful votes teach nothing (three would)
    assert _shown(service.asking.ask(SPARES, _asker("U0ASKER04"))) == ("install/bolts.md", ("Spares",))  # 2 : 1


def test_a_changed_vote_or_a_forgotten_voter_takes_the_demotion_away(service, database):
    first = service.asking.ask(SPARES, _asker("U0ASKER01"))
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    assert len(service.asking.demotions_of()) == 1
    service.records.vote(first.interaction_id, "U0ASKER01", True)  # changed their mind
    assert service.asking.demotions_of() == []
    assert _shown(service.asking.ask(SPARES, _asker("U0ASKER02"))) == ("install/bolts.md", ("Spares",))
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    other = service.asking.ask(PARAPHRASE, _asker("U0ASKER05"))
    service.records.vote(other.interaction_id, "U0ASKER06", False)  # someone else's vote on U0ASKER05's question
    assert len(service.asking.demotions_of()) == 2
    assert forget_user(database, service.xapi, "U0ASKER01")["demotions"] == 1  # their own vote's
    assert forget_user(database, service.xapi, "U0ASKER05")["demotions"] == 1  # the one that held their question
    with database.session() as session:
        assert session.scalars(select(PassageDemotion)).all() == []
    assert _shown(service.asking.ask(SPARES, _asker("U0ASKER02"))) == ("install/bolts.md", ("Spares",))


def test_an_admin_lists_and_removes_demotions_from_the_cli(service, database):
    first = service.asking.ask(SPARES, _asker("U0ASKER01"))
    assert "No demotions" in in_process(service, "demotions", "list").output
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    (row,) = json.loads(in_process(service, "demotions", "list", "--json").output)["demotions"]
    assert (row["question"], row["path"], row["heading_path"], row["voted_by"]) == (
        SPARES,
        "install/bolts.md",
        ["Spares"],
        "U0ASKER01",
    )
    assert f"#{row['id']} “{SPARES}” -/-> install/bolts.md › Spares" in in_process(service, "demotions", "list").output
    assert in_process(service, "demotions", "remove", str(row["id"]), "--team", "T0OTHER").exit_code == 1
    gone = in_process(service, "demotions", "remove", str(row["id"]))
    assert gone.exit_code == 0 and service.asking.demotions_of() == []
    assert _shown(service.asking.ask(SPARES, _asker("U0ASKER02"))) == ("install/bolts.md", ("Spares",))
    missing = in_process(service, "demotions", "remove", "999")
    assert missing.exit_code == 1 and "No demotion #999" in missing.output
    with database.session() as session:
        actions = [(e.action, e.allowed) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [
        ("demote", True),
        ("demotion_remove", False),
        ("demotion_remove", True),
        ("demotion_remove", False),
    ]


def test_a_page_with_nothing_else_gives_way_to_the_next_or_the_question_is_declined(service):
    first = service.asking.ask("what do i check before i climb a ladder", _asker("U0ASKER01"))
    assert first.answered and _shown(first) == ("safety/ladders.md", ("Before you climb",))
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    again = service.asking.ask("what do i check before i climb a ladder", _asker("U0ASKER02"))
    assert all(s.path != "safety/ladders.md" for s in again.sources)  # its only section: the page gives way
    assert again.confidence < first.confidence and not again.answered  # nothing else is good enough
    assert again.outcome == "not_answered" and again.offer_mentor


def test_retention_takes_the_demotions_of_the_interactions_it_deletes(service, database):
    import datetime as dt

    from assistant.records.retention import Retention

    first = service.asking.ask(SPARES, _asker("U0ASKER01"))
    service.records.vote(first.interaction_id, "U0ASKER01", False)
    assert len(service.asking.demotions_of()) == 1
    Retention(database, service.xapi, 30).apply(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    with database.session() as session:
        assert session.scalars(select(PassageDemotion)).all() == []
