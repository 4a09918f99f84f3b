"""Interactions, votes and hand-offs written into a real database for the insights and admin-page tests: what
the service records, with known figures (`seed_workspace`), and another workspace's records beside them."""

from __future__ import annotations

import datetime as dt

from assistant.db.models import (
    Course,
    CourseSuggestion,
    Interaction,
    InteractionSource,
    Mentor,
    MentorOffer,
    MentorRequest,
    Vote,
)

SCRIPT_QUESTION = "<script>alert('pwned')</script> how do I reset my VPN token?"
FORMULA_QUESTION = '=HYPERLINK("http://evil.example") mileage rate?'
OTHER_TEAM_QUESTION = "What is the other workspace's secret merger plan?"
GAP_SCRIPT = "<script>alert('gap')</script> can I expense a pizza for the team"
PIZZA = [GAP_SCRIPT, "can I expense a pizza for the team", "expense pizza for team lunch"]
OTHER_GAP = "where is the other workspace's parking policy"


def interaction(team, user, question, at, *, answered=True, outcome=None, sources=(), confidence=0.8):
    row = Interaction(
        created_at=at,
        user_id=user,
        team_id=team,
        surface="dm",
        question=question,
        question_chars=len(question),
        answered=answered,
        outcome=outcome or ("answered" if answered else "declined"),
        confidence=confidence if answered else 0.2,
        latency_ms=120.0,
    )
    row.sources = [
        InteractionSource(rank=n, path=path, title=title, type="job-aid", score=0.9 - n / 10, stale=False)
        for n, (path, title) in enumerate(sources, start=1)
    ]
    return row


VPN = ("it/vpn-token.md", "Reset a VPN hardware token")
MILEAGE = ("finance/mileage.md", "Mileage and travel expenses")


def seed_workspace(session, team: str, now: dt.datetime, *, other_team: str = "T0OTHERWS") -> dict:
    """Records of `team` in the last 28 days and the 28 before, and one of `other_team`; returns their ids."""
    day = dt.timedelta(days=1)
    rows = [
        # this period: 6 questions (1 system error), 5 askers, 3 answered of 5 searched
        interaction(team, "U0ASKER01", SCRIPT_QUESTION, now - 2 * day, sources=[VPN, MILEAGE]),
        interaction(team, "U0ASKER02", "How do I claim mileage?", now - 3 * day, sources=[MILEAGE, VPN]),
        interaction(team, "U0ASKER03", FORMULA_QUESTION, now - 4 * day, sources=[MILEAGE]),
        interaction(team, "U0ASKER04", "Where is the parental leave policy?", now - 5 * day, answered=False),
        interaction(team, "U0ASKER04", "parental leave form?", now - 6 * day, answered=False),
        interaction(team, "U0ASKER05", "anything", now - 7 * day, answered=False, outcome="error"),
        interaction(team, "U0ASKER05", "", now - 7 * day, answered=False, outcome="empty"),  # not a question
        # the period before: 2 questions, both answered
        interaction(team, "U0ASKER01", "vpn token again", now - 40 * day, sources=[VPN]),
        interaction(team, "U0ASKER06", "mileage rate", now - 41 * day, sources=[MILEAGE]),
        # another workspace: never shown to this one's admins
        interaction(other_team, "U0OTHER01", OTHER_TEAM_QUESTION, now - 2 * day, sources=[VPN]),
    ]
    session.add_all(rows)
    session.flush()
    script, claim, formula, leave = rows[0], rows[1], rows[2], rows[3]
    session.add_all(
        [
            Vote(team_id=team, interaction_id=script.id, user_id="U0ASKER01", helpful=True),
            Vote(team_id=team, interaction_id=claim.id, user_id="U0ASKER02", helpful=False),
            Vote(team_id=team, interaction_id=formula.id, user_id="U0ASKER03", helpful=False),
            Vote(team_id=team, interaction_id=rows[7].id, user_id="U0ASKER01", helpful=True),
        ]
    )
    session.add(Mentor(team_id=team, slack_id="U0MENTOR1", name="Mina Mentor", topics=["expenses"]))
    accepted = MentorRequest(
        team_id=team, interaction_id=claim.id, asker_id="U0ASKER02", question=claim.question, status="resolved",
        created_at=now - 3 * day, accepted_at=now - 3 * day + dt.timedelta(minutes=12),
        owner_id="U0MENTOR1", resolved_at=now - 2 * day,
    )  # fmt: skip
    waiting = MentorRequest(
        team_id=team, interaction_id=leave.id, asker_id="U0ASKER04", question=leave.question, status="offered",
        created_at=now - 5 * day,
    )  # fmt: skip
    session.add_all([accepted, waiting])
    session.flush()
    session.add_all(
        [
            MentorOffer(team_id=team, request_id=accepted.id, mentor_id="U0MENTOR1", offered_at=now - 3 * day,
                        expires_at=now - 2 * day, outcome="accepted",
                        responded_at=now - 3 * day + dt.timedelta(minutes=12)),
            MentorOffer(team_id=team, request_id=waiting.id, mentor_id="U0MENTOR1", offered_at=now - 5 * day,
                        expires_at=now - 4 * day, outcome="declined",
                        responded_at=now - 5 * day + dt.timedelta(minutes=4)),
            MentorOffer(team_id=team, request_id=waiting.id, mentor_id="U0MENTOR2", offered_at=now - 4 * day,
                        expires_at=now - 3 * day, outcome="timeout"),
        ]
    )  # fmt: skip
    return {"script": script.id, "claim": claim.id, "formula": formula.id, "leave": leave.id}


COURSE_TITLE = "<b>Expenses</b> & travel 101"


def seed_courses(session, team: str, now: dt.datetime) -> None:
    """A catalogue of three courses (one title with markup), two of them suggested: to three people and to one,
    with clicks, a Not now and a completion; and one suggestion older than 28 days."""

    def course(n: int, title: str, topics: list[str]) -> Course:
        return Course(team_id=team, activity_id=f"https://lms.example/courses/{n}", url=f"https://lms.example/c/{n}",
                      title=title, description="", topics=topics, duration_minutes=30 + n, origin="file",
                      text_hash=f"{n:064d}")  # fmt: skip

    expenses, vpn, leave = (
        course(1, COURSE_TITLE, ["expenses"]),
        course(2, "VPN basics", ["vpn"]),
        course(3, "Leave", []),
    )
    session.add_all([expenses, vpn, leave])
    session.flush()
    day = dt.timedelta(days=1)
    session.add_all(
        [
            CourseSuggestion(team_id=team, user_id="U0ASKER01", course_id=expenses.id, surface="dm",
                             created_at=now - 2 * day, clicked_at=now - 2 * day, clicks=2, completed_at=now - day),
            CourseSuggestion(team_id=team, user_id="U0ASKER02", course_id=expenses.id, surface="dm",
                             created_at=now - 3 * day, clicked_at=now - 3 * day, clicks=1),
            CourseSuggestion(team_id=team, user_id="U0ASKER03", course_id=expenses.id, surface="dm",
                             created_at=now - 4 * day, dismissed_at=now - 4 * day),
            CourseSuggestion(team_id=team, user_id="U0ASKER04", course_id=vpn.id, surface="dm",
                             created_at=now - 5 * day),
            CourseSuggestion(team_id=team, user_id="U0ASKER05", course_id=vpn.id, surface="dm",
                             created_at=now - 60 * day),
        ]
    )  # fmt: skip


def seed_gaps(url: str, embedder, team: str = "default", other_team: str = "T0OTHERWS") -> dict[str, int]:
    """Three declined questions about pizza in `team` and one in `other_team`, and every declined, voted-down
    and handed-off question of both made into content gaps by the real model (`Gaps.refresh`): the ids of the
    pizza gap ("pizza") and of the other workspace's gap ("other")."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from assistant.db.database import Database
    from assistant.db.models import utcnow
    from assistant.insights.gaps import Gaps

    engine, now = create_engine(url), utcnow()
    declined = {"answered": False, "outcome": "not_answered"}
    with Session(engine) as session, session.begin():
        session.add_all([interaction(team, f"U0ASKER1{n}", q, now, **declined) for n, q in enumerate(PIZZA)])
        session.add(interaction(other_team, "U0OTHER01", OTHER_GAP, now, **declined))
    engine.dispose()
    database = Database(url)
    try:
        gaps = Gaps(database, embedder)
        gaps.refresh(team)
        gaps.refresh(other_team)
        pizza = next(g for g in gaps.list(team) if "pizza" in g.label)
        (other,) = gaps.list(other_team)
    finally:
        database.dispose()
    return {"pizza": pizza.id, "other": other.id}
