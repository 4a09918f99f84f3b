"""The admin pages' daily roll-ups on a real database (SQLite, and PostgreSQL with TEST_DATABASE_URL): the
figures summed from them equal the figures computed in Python from every row, before and after each roll-up,
after a late vote, a changed vote, a hand-off, a record written for a past day, a forgotten person and
retention; the pages do sum the roll-ups and count today live; days are UTC days whatever the session's time
zone."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from assistant.answering.retrieval import Retriever
from assistant.db.database import Database
from assistant.db.models import Interaction, MentorOffer, MentorRequest, utcnow
from assistant.db.rollup_models import DailyQuestions, RollupChange
from assistant.insights import Period, content_items, mentor_figures, overview
from assistant.insights.rollups import roll_up
from assistant.mentoring.handoff import Handoff
from assistant.mentoring.mentors import MentorRegistry
from assistant.records.reports import NOT_QUESTIONS, median
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.store import IndexStore
from tests.insights_data import MILEAGE, VPN, interaction, seed_workspace
from tests.test_mentors import RecordingNotifier

TEAM = "T0ROLLUP"
DAYS = (7, 28, 90, 365)


def oracle(database: Database, team: str, period: Period) -> dict:
    """The period's figures from every row, in Python (no SQL aggregate): what the pages must show."""
    with database.session() as session:
        rows = session.scalars(
            select(Interaction)
            .where(Interaction.team_id == team)
            .options(selectinload(Interaction.sources), selectinload(Interaction.votes))
        ).all()
        requests = session.scalars(select(MentorRequest).where(MentorRequest.team_id == team)).all()
        asked = [r for r in rows if period.start <= r.created_at < period.end and r.outcome not in NOT_QUESTIONS]
        handed = {q.interaction_id for q in requests}
        content: dict[str, list[int]] = {}
        for row in asked:
            if not row.answered:
                continue
            for source in row.sources:
                figures = content.setdefault(source.path, [0] * 5)
                figures[0] += 1
                if source.rank == 1:
                    figures[1] += 1
                    figures[2] += sum(v.helpful for v in row.votes)
                    figures[3] += sum(not v.helpful for v in row.votes)
                    figures[4] += row.id in handed
        return {
            "questions": len(asked),
            "searched": sum(r.outcome != "error" for r in asked),
            "answered": sum(r.answered for r in asked),
            "votes": sum(len(r.votes) for r in asked),
            "helpful": sum(v.helpful for r in asked for v in r.votes),
            "askers": len({r.user_id for r in asked}),
            "handoffs": sum(period.start <= q.created_at < period.end for q in requests),
            "content": content,
        }


def shown(database: Database, team: str, period: Period) -> tuple[dict, dict]:
    """What the overview and content pages compute for `period`, and for the period before it."""
    result = overview(database, team, period)
    pages = []
    for figures, p in ((result.current, period), (result.previous, period.previous())):
        items = content_items(database, team, p)
        pages.append(
            {
                **{name: getattr(figures, name) for name in
                   ("questions", "searched", "answered", "votes", "helpful", "askers", "handoffs")},
                "content": {i.path: [i.shown, i.top, i.helpful, i.not_helpful, i.handoffs] for i in items},
            }
        )  # fmt: skip
    weekly = sum(w["questions"] for w in result.weeks)
    assert weekly == result.current.questions, "the weeks add up to the period"
    return pages[0], pages[1]


def assert_exact(database: Database, now: dt.datetime, when: str) -> None:
    for days in DAYS:
        period = Period.last(days, now)
        current, previous = shown(database, TEAM, period)
        assert current == oracle(database, TEAM, period), (when, days)
        assert previous == oracle(database, TEAM, period.previous()), (when, days, "previous")


def changed_days(database: Database) -> set[dt.date]:
    with database.session() as session:
        return {d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in session.scalars(
            select(RollupChange.day).where(RollupChange.team_id == TEAM))}  # fmt: skip


@pytest.fixture
def service(tmp_path, database, embedder):
    settings = load_settings(home=tmp_path / "home", retention_days=90, default_team_id=TEAM)
    service = MomentService(settings, database, Retriever(IndexStore(tmp_path / "none"), embedder))
    yield service
    service.close()


def test_the_roll_ups_equal_the_rows_after_every_kind_of_change(service, database, embedder):
    now = utcnow()
    day = dt.timedelta(days=1)
    with database.session() as session:
        ids = seed_workspace(session, TEAM, now)
        session.add_all(
            [
                interaction(TEAM, f"U0OLD{n:04d}", f"old question {n}", now - (50 + 7 * n) * day,
                            answered=n % 3 != 0, sources=[VPN, MILEAGE] if n % 2 else [MILEAGE])
                for n in range(40)
            ]
        )  # fmt: skip
    assert_exact(database, now, "before any roll-up")
    assert changed_days(database), "writes to past days are logged by the triggers"

    rolled = roll_up(database, [TEAM], now)
    assert rolled[0].days > 300 and rolled[0].through == (now - dt.timedelta(hours=1)).date()
    assert changed_days(database) == set()
    with database.session() as session:
        assert session.scalar(select(DailyQuestions).where(DailyQuestions.team_id == TEAM)) is not None
    assert_exact(database, now, "rolled up")

    # A late vote, a changed vote, a hand-off, on days already rolled up.
    formula_day = (now - 4 * day).date()
    service.records.vote(ids["formula"], "U0LATE", True, team_id=TEAM)
    service.records.vote(ids["claim"], "U0ASKER02", True, team_id=TEAM)  # was Not helpful
    assert formula_day in changed_days(database)
    assert_exact(database, now, "votes, before the next roll-up")
    handoff = Handoff(database, MentorRegistry(database, embedder), RecordingNotifier(), team_id=TEAM)
    handoff.request(asker_id="U0ASKER03", question="mileage?", interaction_id=ids["formula"], team_id=TEAM)
    assert_exact(database, now, "a hand-off, before the next roll-up")
    assert roll_up(database, [TEAM], now)[0].days >= 2
    assert_exact(database, now, "votes and a hand-off, rolled up")

    # A record of a past day written late (as a replayed spool writes it), and a changed outcome.
    with database.session() as session:
        session.add(interaction(TEAM, "U0SPOOL", "written late", now - 20 * day, sources=[VPN]))
        session.execute(update(Interaction).where(Interaction.id == ids["leave"]).values(outcome="error"))
    assert_exact(database, now, "late writes, before the next roll-up")
    roll_up(database, [TEAM], now)
    assert_exact(database, now, "late writes, rolled up")

    # A forgotten person, then retention (90 days).
    service.retention.forget("U0ASKER01")
    assert_exact(database, now, "forgotten, before the next roll-up")
    roll_up(database, [TEAM], now)
    assert_exact(database, now, "forgotten, rolled up")
    assert service.retention.apply(now) > 0
    assert_exact(database, now, "retention, before the next roll-up")
    roll_up(database, [TEAM], now)
    assert_exact(database, now, "retention, rolled up")
    with database.session() as session:
        oldest = session.scalar(select(DailyQuestions.day).order_by(DailyQuestions.day).limit(1))
    assert str(oldest) >= str((now - 91 * day).date()), "no roll-up outlives its rows"


def test_the_pages_sum_the_roll_ups_and_count_today_live(database):
    now = utcnow()
    with database.session() as session:
        seed_workspace(session, TEAM, now)
    roll_up(database, [TEAM], now)
    period = Period.last(28, now)
    before = overview(database, TEAM, period).current.questions
    with database.session() as session:  # the roll-up alone changed (no trigger logs it): the page follows it
        session.execute(
            update(DailyQuestions)
            .where(DailyQuestions.team_id == TEAM, DailyQuestions.day == (now - dt.timedelta(days=3)).date())
            .values(questions=DailyQuestions.questions + 1000)
        )
    assert overview(database, TEAM, period).current.questions == before + 1000
    with database.session() as session:
        session.add(interaction(TEAM, "U0TODAY", "asked just now", now, sources=[VPN]))
    assert changed_days(database) == set()  # today's records are not logged: today is never rolled up
    assert overview(database, TEAM, Period.last(28, now + dt.timedelta(seconds=1))).current.questions == before + 1001


def test_days_are_utc_days_whatever_the_session_time_zone(database_url):
    if database_url.startswith("postgresql"):
        database_url += "%20-ctimezone%3DPacific%2FHonolulu"  # UTC-10: 00:30 UTC is the day before there
    database = Database(database_url)
    database.upgrade()
    try:
        now = utcnow()
        period = Period.last(7, now)
        half_hour = dt.timedelta(minutes=30)
        with database.session() as session:
            session.add(interaction(TEAM, "U0EARLY", "just after midnight UTC", period.start + half_hour))
            session.add(interaction(TEAM, "U0LATE", "just before", period.start - half_hour))
        for _ in range(2):  # counted live, then rolled up
            result = overview(database, TEAM, period)
            assert (result.current.questions, result.previous.questions) == (1, 1)
            monday = period.start.date() - dt.timedelta(days=period.start.weekday())
            assert result.weeks[0] == {"week": monday.isoformat(), "questions": 1, "searched": 1, "answered": 1}
            roll_up(database, [TEAM], now)
        with database.session() as session:
            days = session.scalars(select(DailyQuestions.day).where(DailyQuestions.team_id == TEAM)).all()
        first = period.start.date()
        assert sorted(str(d) for d in days) == [str(first - dt.timedelta(days=1)), str(first)]
    finally:
        database.dispose()


def test_medians_computed_in_the_database_are_the_medians_of_every_wait(database):
    now = utcnow()
    minute = dt.timedelta(minutes=1)
    waits = {"U0MENTOR1": [3.5, 12, 7.25, 40], "U0MENTOR2": [1, 90.5, 2], "U0MENTOR3": [15]}  # even, odd, one
    with database.session() as session:
        requests = []
        for n, (mentor, minutes) in enumerate((m, w) for m, ws in waits.items() for w in ws):
            made = now - dt.timedelta(days=2, minutes=n)
            request = MentorRequest(team_id=TEAM, asker_id=f"U0ASK{n}", question="q", status="accepted",
                                    created_at=made, accepted_at=made + minutes * minute, owner_id=mentor)  # fmt: skip
            requests.append((request, mentor, made, minutes))
            session.add(request)
        session.flush()
        session.add_all(
            MentorOffer(team_id=TEAM, request_id=r.id, mentor_id=mentor, offered_at=made, expires_at=made + 30 * minute,
                        outcome="accepted", responded_at=made + minutes * minute)
            for r, mentor, made, minutes in requests
        )  # fmt: skip
    period = Period.last(28, now)
    everyone = [w for ws in waits.values() for w in ws]
    assert overview(database, TEAM, period).current.median_minutes_to_mentor == median(everyone) == 9.6
    shown = {m.mentor_id: m.median_minutes_to_respond for m in mentor_figures(database, TEAM, period)}
    assert shown == {mentor: median(ws) for mentor, ws in waits.items()} == {
        "U0MENTOR1": 9.6, "U0MENTOR2": 2.0, "U0MENTOR3": 15.0
    }  # fmt: skip
