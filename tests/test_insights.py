"""The insights behind the admin pages, on a real database (SQLite, and PostgreSQL with TEST_DATABASE_URL):
exact figures from known records, one workspace only, worst content first, what privacy settings hide, and
a forgotten person gone from them."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.db.models import utcnow
from assistant.insights import Period, Privacy, content_items, mentor_figures, overview, question_page
from assistant.insights.effectiveness import CatalogueItem
from assistant.records.privacy import forget_user
from assistant.records.xapi import XapiOutbox, pseudonym
from assistant.settings import load_settings
from tests.insights_data import MILEAGE, OTHER_TEAM_QUESTION, SCRIPT_QUESTION, VPN, seed_workspace

TEAM = "T0INSIGHT"


@pytest.fixture
def seeded(database):
    now = utcnow()
    with database.session() as session:
        ids = seed_workspace(session, TEAM, now)
    return database, Period.last(28, now), ids


def test_overview_figures_and_trend(seeded):
    database, period, _ = seeded
    view = overview(database, TEAM, period)
    now, before = view.current, view.previous
    assert (now.questions, now.searched, now.answered, now.askers) == (6, 5, 3, 5)
    assert (now.votes, now.helpful, now.handoffs) == (3, 1, 2)
    assert now.median_minutes_to_mentor == 12.0
    assert (before.questions, before.answered, before.searched) == (2, 2, 2)
    assert view.trend("questions") == pytest.approx(2.0)  # 6 against 2
    assert view.trend("answered_rate") == pytest.approx(0.6 - 1.0)
    assert sum(w["questions"] for w in view.weeks) == 6
    assert all(dt.date.fromisoformat(w["week"]).weekday() == 0 for w in view.weeks)


def test_content_worst_first_with_every_indexed_item(seeded):
    database, period, _ = seeded
    catalogue = [
        CatalogueItem(VPN[0], VPN[1], "job-aid", dt.date(2026, 1, 1), True),
        CatalogueItem(MILEAGE[0], MILEAGE[1], "procedure", None, False),
        CatalogueItem("hr/never-used.md", "Never used", "reference", None, False),
    ]
    items = content_items(database, TEAM, period, catalogue)
    by_path = {i.path: i for i in items}
    mileage, vpn = by_path[MILEAGE[0]], by_path[VPN[0]]
    # Mileage led 2 answers: both voted not helpful, one handed off. VPN led 1, voted helpful.
    assert (mileage.shown, mileage.top, mileage.helpful, mileage.not_helpful, mileage.handoffs) == (3, 2, 0, 2, 1)
    assert (vpn.shown, vpn.top, vpn.helpful, vpn.not_helpful, vpn.handoffs) == (2, 1, 1, 0, 0)
    assert vpn.stale and vpn.reviewed == dt.date(2026, 1, 1)
    assert items[0].path == MILEAGE[0]  # the worst first
    assert by_path["hr/never-used.md"].shown == 0
    ascending = content_items(database, TEAM, period, catalogue, sort="title")
    assert [i.title for i in ascending] == sorted(i.title for i in ascending)
    with pytest.raises(ValueError):
        content_items(database, TEAM, period, catalogue, sort="bogus")


def test_mentor_figures(seeded):
    database, period, _ = seeded
    rows = {m.mentor_id: m for m in mentor_figures(database, TEAM, period)}
    mina = rows["U0MENTOR1"]
    assert (mina.name, mina.offered, mina.accepted, mina.declined, mina.resolved) == ("Mina Mentor", 2, 1, 1, 1)
    assert mina.median_minutes_to_respond == 8.0  # 12 and 4 minutes
    assert rows["U0MENTOR2"].timed_out == 1 and rows["U0MENTOR2"].name is None


def test_questions_filtered_paged_and_one_workspace(seeded):
    database, period, ids = seeded
    page = question_page(database, TEAM, period, Privacy(), size=4)
    assert len(page.rows) == 4 and page.next_before == page.rows[-1].id
    rest = question_page(database, TEAM, period, Privacy(), size=4, before=page.next_before)
    texts = [r.question for r in page.rows + rest.rows]
    times = [r.asked_at for r in page.rows + rest.rows]
    assert times == sorted(times, reverse=True)  # newest first
    assert len(texts) == 6 and SCRIPT_QUESTION in texts and OTHER_TEAM_QUESTION not in texts
    assert rest.next_before is None
    shown = lambda show: {r.id for r in question_page(database, TEAM, period, Privacy(), show=show).rows}  # noqa: E731
    assert shown("not_helpful") == {ids["claim"], ids["formula"]}
    assert shown("handed_off") == {ids["claim"], ids["leave"]}
    assert len(shown("not_answered")) == 2 and len(shown("error")) == 1
    script = next(r for r in page.rows + rest.rows if r.id == ids["script"])
    assert (script.top_path, script.helpful, script.not_helpful) == (VPN[0], 1, 0)


def test_privacy_hides_text_and_pseudonymises_askers(seeded):
    database, period, _ = seeded
    privacy = Privacy(show_text=False, pseudonymise=True, key=b"k")
    rows = question_page(database, TEAM, period, privacy).rows
    assert all(r.question is None for r in rows)
    assert {r.asker for r in rows} >= {pseudonym(b"k", "U0ASKER01")}
    assert not any(r.asker.startswith("U0") for r in rows)


def test_forgetting_a_person_removes_them_from_the_pages(seeded):
    database, period, ids = seeded
    forget_user(database, XapiOutbox(load_settings(), database), "U0ASKER01")
    rows = question_page(database, TEAM, period, Privacy()).rows
    assert ids["script"] not in {r.id for r in rows}
    assert all(r.asker != "U0ASKER01" for r in rows)
    assert overview(database, TEAM, period).current.askers == 4


def test_a_period_is_one_to_366_days():
    with pytest.raises(ValueError):
        Period.last(0)
    assert Period.last(7).previous().days == 7
