"""From questions to courses (assistant/learning/): the catalogue from files and from 360Learning's API (a stand-in
on loopback following its documented contract), and suggestions with the real embedding model, real databases
and a real LRS (Ralph): counted questions, the LRS's completions, an LRS that is down, audiences, clicks, Not
now, forgetting a person."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from assistant.access.audiences import Viewer
from assistant.db.models import Course, CourseInterest, CourseSuggestion, XapiStatement, utcnow
from assistant.learning import CatalogueError, Learning360, LmsError, import_file, import_lms, list_courses
from assistant.learning.catalogue import parse_csv, parse_duration, store_entries
from assistant.learning.lms import path_url
from assistant.learning.suggestions import CourseSuggestions, course_stats
from assistant.records.privacy import forget_user
from assistant.records.xapi import VERBS, XapiOutbox
from assistant.settings import load_settings
from sourcestub.lms360 import CLIENT_ID, CLIENT_SECRET, PAGE_SIZE, Lms360Stub

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "evalsets" / "course-catalogue.json"
TEAM = "T0COURSES"
VPN = "https://lms.brightline.example/xapi/activities/vpn-essentials"
VPN_QUESTIONS = [
    "my vpn token keeps failing how do i reset it",
    "how do I install the vpn client on my laptop",
    "remote access to the office network from home",
    "vpn won't connect from the hotel wifi",
]
CHANGE_QUESTIONS = [
    "how do I tell my team about the reorganisation",
    "how do I announce the reorganisation to my team",
    "my team is worried about the reorganisation, how do I talk to them",
]
HEADER = "title,url,description,topics,duration,activity_id\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the catalogue ---------------------------------------------------------------------------------


def test_a_csv_catalogue_keeps_its_good_rows_and_names_each_bad_one(database, tmp_path):
    path = write(
        tmp_path,
        "catalogue.csv",
        HEADER
        + "VPN essentials,https://lms.example/c/vpn,Tokens and clients,vpn;remote access,45 min,\n"  # line 2: good
        + ",https://lms.example/c/notitle,,,,\n"  # line 3: no title
        + "Expenses,javascript:alert(1),,,,\n"  # line 4: not an http(s) address
        + "Van safety,https://lms.example/c/van,,,about an hour,\n"  # line 5: a duration nobody can read
        + "\n"  # a blank line: skipped, not an error
        + "VPN again,https://lms.example/c/vpn2,,,,https://lms.example/c/vpn\n"  # line 7: the activity of line 2
        + '"First aid, at work",https://lms.example/c/first-aid,"CPR, burns",first aid|safety,PT1H30M,\n',  # good
    )
    result = import_file(database, path, TEAM)
    assert (result.rows, result.added, result.updated) == (2, 2, 0)
    assert [str(e) for e in result.errors] == [
        "line 3: title: missing",
        "line 4: url: 'javascript:alert(1)' is not an http(s) address",
        "line 5: duration: 'about an hour' is not a duration (minutes, '1h30', '1:30' or ISO 8601 'PT1H30M')",
        "line 7: activity_id: 'https://lms.example/c/vpn' is already the course of line 2",
    ]
    courses = {c.title: c for c in list_courses(database, TEAM)}
    assert set(courses) == {"VPN essentials", "First aid, at work"}
    assert courses["VPN essentials"].topics == ("vpn", "remote access")
    assert courses["VPN essentials"].duration_minutes == 45
    assert courses["VPN essentials"].activity_id == "https://lms.example/c/vpn"  # the URL when none is given
    assert courses["First aid, at work"].duration_minutes == 90 and courses["First aid, at work"].topics == (
        "first aid",
        "safety",
    )
    assert list_courses(database, "T0OTHER") == []  # another workspace's catalogue is its own


def test_durations_in_the_forms_catalogues_use():
    for value, minutes in [(45, 45), ("45", 45), ("45 min", 45), ("1h30", 90), ("1 h 30 min", 90), ("1:30", 90)]:
        assert parse_duration(value) == (minutes, None), value
    assert parse_duration("PT2H") == (120, None) and parse_duration("") == (None, None)
    assert parse_duration("-5")[1] and parse_duration("soon")[1] and parse_duration(True)[1]


def test_a_reimport_updates_courses_by_activity_id_or_url_and_never_adds_twice(database, tmp_path):
    first = write(
        tmp_path,
        "v1.json",
        json.dumps(
            [
                {"title": "VPN", "url": "https://lms.example/c/vpn", "activity_id": "https://lms.example/a/vpn"},
                {"title": "Expenses", "url": "https://lms.example/c/exp", "topics": ["expenses"]},
            ]
        ),
    )
    assert import_file(database, first, TEAM).added == 2
    second = write(
        tmp_path,
        "v2.json",
        json.dumps(
            {
                "courses": [
                    # same activity id, new URL and title: the same course, updated
                    {
                        "title": "VPN 2",
                        "url": "https://lms.example/c/vpn-v2",
                        "activity_id": "https://lms.example/a/vpn",
                    },
                    # no activity id, same URL: the same course, updated
                    {"title": "Expenses", "url": "https://lms.example/c/exp", "topics": ["expenses", "mileage"]},
                    {"title": "New", "url": "https://lms.example/c/new"},
                ]
            }
        ),
    )
    result = import_file(database, second, TEAM)
    assert (result.added, result.updated, result.unchanged, result.errors) == (1, 2, 0, [])
    again = import_file(database, second, TEAM)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    courses = {c.url: c for c in list_courses(database, TEAM)}
    assert set(courses) == {"https://lms.example/c/vpn-v2", "https://lms.example/c/exp", "https://lms.example/c/new"}
    assert courses["https://lms.example/c/vpn-v2"].title == "VPN 2"
    assert courses["https://lms.example/c/exp"].topics == ("expenses", "mileage")


def test_a_file_that_is_no_catalogue_is_refused_whole(database, tmp_path):
    cases = {
        "broken.json": ('[{"title": "x",', "not valid JSON"),
        "object.json": ('{"title": "x"}', "expected a JSON list of courses"),
        "nourl.csv": ("title,link_text\nVPN,x\n", "the header row has no url column"),
        "empty.csv": ("", "is empty"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(CatalogueError, match=message):
            import_file(database, write(tmp_path, name, text), TEAM)
    binary = tmp_path / "latin1.csv"
    binary.write_bytes(HEADER.encode() + "Caf\xe9,https://x.example/c\n".encode("latin-1"))
    with pytest.raises(CatalogueError, match="not UTF-8"):
        import_file(database, binary, TEAM)
    with pytest.raises(CatalogueError, match="Cannot read"):
        import_file(database, tmp_path / "missing.csv", TEAM)
    assert list_courses(database, TEAM) == []


def test_fifty_thousand_rows_are_stored_in_seconds_and_a_reimport_changes_only_what_changed(database):
    rows = [
        f"Course {n},https://lms.example/c/{n},About topic {n % 97},topic {n % 97};skills,{n % 120 + 5},\n"
        for n in range(50_000)
    ]
    rows[1234] = "Course 1234,ftp://lms.example/c/1234,,,,\n"  # one bad row among them
    entries, errors = parse_csv(HEADER + "".join(rows))
    assert [str(e) for e in errors] == ["line 1236: url: 'ftp://lms.example/c/1234' is not an http(s) address"]
    started = time.perf_counter()
    result = store_entries(database, TEAM, entries, "file")
    first = time.perf_counter() - started
    assert (result.added, result.updated) == (49_999, 0)
    rows[7] = "Course 7 renamed,https://lms.example/c/7,About topic 7,topic 7;skills,12,\n"
    entries, _ = parse_csv(HEADER + "".join(rows))
    started = time.perf_counter()
    again = store_entries(database, TEAM, entries, "file")
    second = time.perf_counter() - started
    assert (again.added, again.updated, again.unchanged) == (0, 1, 49_998)
    with database.session() as session:
        assert session.scalar(select(func.count(Course.id)).where(Course.team_id == TEAM)) == 49_999
    print(f"50,000 rows: stored in {first:.1f} s, re-imported in {second:.1f} s ({database.dialect})")
    assert first < 60 and second < 60  # a generous bound; the figures are printed (and in bench/)


# --- 360Learning -------------------------------------------------------------------------------------


@pytest.fixture
def lms():
    with Lms360Stub() as stub:
        yield stub


def test_360learning_paths_are_read_page_by_page_with_the_documented_headers(database, lms):
    for n in range(2 * PAGE_SIZE + 50):
        lms.add_path(f"Path {n}", f"<p>Learn <b>topic {n}</b> &amp; more</p>", _id=f"{n:024x}")
    lms.add_path("Old path", "retired", _id="f" * 24, status="archived")
    client = Learning360(lms.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    result = import_lms(database, client, TEAM)
    assert (result.rows, result.added, result.errors) == (450, 450, [])
    gets = [r for r in lms.requests if r[0] == "GET"]
    assert len(gets) == 3  # 200 + 200 + 50, following the Link headers
    assert all(r[2]["360-api-version"] == "v2.0" and r[2]["Authorization"].startswith("Bearer ") for r in gets)
    assert "next=" in gets[1][1] and "next=" in gets[2][1]
    courses = {c.title: c for c in list_courses(database, TEAM)}
    assert "Old path" not in courses
    assert courses["Path 7"].url == path_url(lms.url, f"{7:024x}") == courses["Path 7"].activity_id
    assert courses["Path 7"].description.split() == ["Learn", "topic", "7", "&", "more"]
    assert {c.origin for c in courses.values()} == {"360learning"}
    assert import_lms(database, Learning360(lms.url, token=lms.issue_token()), TEAM).unchanged == 450


def test_360learning_refusals_are_one_clear_error_and_store_nothing(database, lms):
    lms.add_path("A path", "x")
    with pytest.raises(LmsError, match="refused the credentials"):
        import_lms(database, Learning360(lms.url, token="not-a-token"), TEAM)
    with pytest.raises(LmsError, match="refused the credentials"):
        import_lms(database, Learning360(lms.url, client_id=CLIENT_ID, client_secret="wrong"), TEAM)
    lms.fail_next(500)
    with pytest.raises(LmsError, match="HTTP 500"):
        import_lms(database, Learning360(lms.url, token=lms.issue_token()), TEAM)
    with pytest.raises(LmsError, match="unreachable"):
        import_lms(database, Learning360("http://127.0.0.1:9", token="t", timeout=2), TEAM)
    with pytest.raises(LmsError, match="needs an access token"):
        Learning360(lms.url)
    assert list_courses(database, TEAM) == []
    lms.fail_next(429, {"Retry-After": "0"})  # rate limited once: waited, then read
    assert import_lms(database, Learning360(lms.url, token=lms.issue_token()), TEAM).added == 1


def test_a_next_page_on_another_host_is_not_followed(database, lms, monkeypatch):
    for n in range(PAGE_SIZE + 1):
        lms.add_path(f"Path {n}")
    # The stand-in names its next page by its own address; seen through "localhost" it is another host.
    client = Learning360(lms.url.replace("127.0.0.1", "localhost"), token=lms.issue_token())
    with pytest.raises(LmsError, match="another host"):
        import_lms(database, client, TEAM)
    assert list_courses(database, TEAM) == []


# --- suggestions -------------------------------------------------------------------------------------


def suggestions_for(database, embedder, tmp_path, lrs=None, **settings):
    """The course suggestions of a deployment with the test catalogue imported and embedded."""
    values = {"home": tmp_path / "home", "link_secret": "test-link-secret", "base_url": "https://moment.example"}
    if lrs is not None:
        values.update(lrs_endpoint=lrs.endpoint, lrs_username=lrs.username, lrs_password=lrs.password)
    s = load_settings(**{**values, **settings})
    import_file(database, CATALOGUE, TEAM, embedder=embedder)
    return CourseSuggestions(s, database, embedder, XapiOutbox(s, database))


def ask(courses, embedder, user: str, question: str, *, surface: str = "dm", viewer=None):
    vector = embedder.encode([question])[0]
    return courses.suggestion_for(user, TEAM, surface, None, vector, viewer or Viewer(user))


def user() -> str:
    return "U" + uuid.uuid4().hex[:9].upper()  # the LRS is shared by the session: a person of this test's own


def test_the_third_question_on_a_course_topic_brings_the_course_once(database, embedder, tmp_path, lrs_server):
    courses = suggestions_for(database, embedder, tmp_path, lrs_server)
    person = user()
    assert ask(courses, embedder, person, VPN_QUESTIONS[0]) is None
    assert ask(courses, embedder, person, "where do I park my bike") is None  # about no course: not counted
    assert ask(courses, embedder, person, VPN_QUESTIONS[1]) is None
    offer = ask(courses, embedder, person, VPN_QUESTIONS[2])
    assert offer is not None and offer["title"] == "Remote access and VPN essentials"
    assert offer["asked"] == 3 and offer["duration_minutes"] == 45
    assert offer["url"].startswith("https://moment.example/c/") and offer["tracked"]
    assert ask(courses, embedder, person, VPN_QUESTIONS[3]) is None  # never twice
    with database.session() as session:
        rows = session.scalars(select(CourseSuggestion).where(CourseSuggestion.user_id == person)).all()
        assert len(rows) == 1
        statements = session.scalars(select(XapiStatement).where(XapiStatement.user_id == person)).all()
    (suggested,) = statements
    assert suggested.statement["verb"]["id"] == VERBS["suggested"] == "http://adlnet.gov/expapi/verbs/shared"
    assert suggested.statement["object"]["id"] == VPN
    assert suggested.statement["actor"]["account"]["name"] == "moment"
    extensions = suggested.statement["context"]["extensions"]
    assert extensions["https://moment.example/xapi/suggested-to"]["account"]["name"] == person


def test_questions_older_than_the_window_do_not_count(database, embedder, tmp_path):
    courses = suggestions_for(database, embedder, tmp_path, course_days=14, course_after=2)
    person = user()
    assert ask(courses, embedder, person, VPN_QUESTIONS[0]) is None
    with database.session() as session:  # that question was asked 15 days ago
        for row in session.scalars(select(CourseInterest).where(CourseInterest.user_id == person)):
            row.created_at = utcnow() - dt.timedelta(days=15)
    assert ask(courses, embedder, person, VPN_QUESTIONS[1]) is None  # 1 within 14 days, the old one dropped
    assert ask(courses, embedder, person, VPN_QUESTIONS[2]) is not None  # 2 within 14 days
    with database.session() as session:
        assert session.scalar(select(func.count()).where(CourseInterest.user_id == person)) == 2


def lrs_statement(lrs, person: str, verb: str, activity: str) -> None:
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": "https://slack.com", "name": person}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": "2026-11-01T10:00:00Z",
    }
    response = requests.post(
        f"{lrs.endpoint}statements",
        json=[statement],
        auth=(lrs.username, lrs.password),
        headers={"X-Experience-API-Version": "1.0.3"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_no_suggestion_to_someone_the_lrs_says_completed_or_passed_it(database, embedder, tmp_path, lrs_server):
    courses = suggestions_for(database, embedder, tmp_path, lrs_server)
    completed, passed, other_course, fresh = user(), user(), user(), user()
    lrs_statement(lrs_server, completed, "http://adlnet.gov/expapi/verbs/completed", VPN)
    lrs_statement(lrs_server, passed, "http://adlnet.gov/expapi/verbs/passed", VPN)
    lrs_statement(lrs_server, other_course, "http://adlnet.gov/expapi/verbs/completed", VPN + "-advanced")
    lrs_statement(lrs_server, fresh, "http://adlnet.gov/expapi/verbs/attempted", VPN)  # not finished
    for person in (completed, passed, other_course, fresh):
        offers = [ask(courses, embedder, person, q) for q in VPN_QUESTIONS[:3]]
        assert offers[:2] == [None, None]
        assert (offers[2] is not None) == (person in (other_course, fresh)), person


@pytest.mark.slow
def test_an_lrs_that_is_down_skips_the_suggestion_with_one_line_never_a_guess(
    database, embedder, tmp_path, lrs_server, caplog
):
    courses = suggestions_for(database, embedder, tmp_path, lrs_server, course_lrs_timeout=2)
    person = user()
    for question in VPN_QUESTIONS[:2]:
        assert ask(courses, embedder, person, question) is None
    lrs_server.stop()
    try:
        with caplog.at_level(logging.INFO, logger="assistant.learning.suggestions"):
            assert ask(courses, embedder, person, VPN_QUESTIONS[2]) is None
    finally:
        lrs_server.start()
    lines = [r for r in caplog.records if r.name == "assistant.learning.suggestions"]
    assert len(lines) == 1 and "the LRS could not say" in lines[0].getMessage() and lines[0].exc_info is None
    with database.session() as session:
        assert session.scalar(select(func.count()).where(CourseSuggestion.user_id == person)) == 0
    assert ask(courses, embedder, person, VPN_QUESTIONS[3]) is not None  # the LRS is back: it says "not completed"


def test_a_course_for_some_groups_is_suggested_only_to_their_members(database, embedder, tmp_path):
    courses = suggestions_for(database, embedder, tmp_path)
    worker, manager = user(), user()
    for question in CHANGE_QUESTIONS:
        offer = ask(courses, embedder, worker, question, viewer=Viewer(worker, frozenset({"S0STAFF"})))
        assert offer is None or offer["title"] != "Leading people through change"
    offers = [
        ask(courses, embedder, manager, q, viewer=Viewer(manager, frozenset({"managers"}))) for q in CHANGE_QUESTIONS
    ]
    assert offers[2] is not None and offers[2]["title"] == "Leading people through change"


def test_answers_others_read_count_but_carry_no_suggestion(database, embedder, tmp_path):
    courses = suggestions_for(database, embedder, tmp_path)
    person = user()
    for question in VPN_QUESTIONS[:3]:
        assert ask(courses, embedder, person, question, surface="mention") is None
    assert ask(courses, embedder, person, VPN_QUESTIONS[3], surface="dm")["asked"] == 4


def test_clicks_and_not_now_are_recorded_once_per_person_and_sent_as_xapi(database, embedder, tmp_path, lrs_server):
    courses = suggestions_for(database, embedder, tmp_path, lrs_server)
    person = user()
    offers = [ask(courses, embedder, person, q) for q in VPN_QUESTIONS[:3]]
    token = offers[2]["url"].rsplit("/c/", 1)[1]
    suggestion_id = offers[2]["suggestion_id"]
    course_url = "https://lms.brightline.example/courses/vpn-essentials"
    assert courses.click(token, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)") == course_url
    assert courses.click(token, "Mozilla/5.0") == course_url
    assert courses.click(token, "Mozilla/5.0") == course_url
    forged = [f"{suggestion_id}.{'A' * 22}", f"{suggestion_id + 1}.{token.split('.')[1]}", "1", "", "../../etc"]
    assert all(courses.click(bad) is None for bad in forged)
    assert not courses.dismiss(suggestion_id, "U0SOMEONEELSE", TEAM)  # not theirs to dismiss
    assert not courses.dismiss(suggestion_id, person, "T0OTHER")
    assert courses.dismiss(suggestion_id, person, TEAM) and courses.dismiss(suggestion_id, person, TEAM)
    with database.session() as session:
        row = session.get(CourseSuggestion, suggestion_id)
        assert row.clicks == 2 and row.clicked_at is not None and row.dismissed_at is not None
        verbs = [s.verb for s in session.scalars(select(XapiStatement).where(XapiStatement.user_id == person))]
    assert sorted(verbs) == ["launched", "skipped", "suggested"]  # the first click only; Not now once
    (stats,) = [s for s in course_stats(database, TEAM) if s.course_id == offers[2]["course_id"]]
    assert (stats.suggested, stats.clicked, stats.dismissed, stats.completed) == (1, 1, 1, 0)
    lrs_statement(lrs_server, person, "http://adlnet.gov/expapi/verbs/completed", VPN)
    assert courses.refresh_completions(TEAM) == 1
    assert course_stats(database, TEAM)[0].completed == 1
    assert courses.suggestions_of(person, TEAM)[0]["completed"]


def test_forgetting_a_person_removes_their_suggestions_and_counted_questions(database, embedder, tmp_path):
    courses = suggestions_for(database, embedder, tmp_path)
    person, other = user(), user()
    for question in VPN_QUESTIONS[:3]:
        ask(courses, embedder, person, question)
        ask(courses, embedder, other, question)
    counts = forget_user(database, courses.xapi, person)
    assert counts["course_suggestions"] == 1 and counts["course_interests"] == 3
    with database.session() as session:
        assert session.scalar(select(func.count()).where(CourseSuggestion.user_id == person)) == 0
        assert session.scalar(select(func.count()).where(CourseInterest.user_id == person)) == 0
        assert session.scalar(select(func.count()).where(CourseSuggestion.user_id == other)) == 1
    assert course_stats(database, TEAM)[0].suggested == 1


def test_courses_imported_without_embedding_are_embedded_later_and_only_once(database, embedder, tmp_path):
    s = load_settings(home=tmp_path / "home")
    courses = CourseSuggestions(s, database, embedder, XapiOutbox(s, database))
    import_file(database, CATALOGUE, TEAM)  # no embedder: stored only (the worker embeds them)
    assert not any(c.embedded for c in list_courses(database, TEAM))
    assert ask(courses, embedder, user(), VPN_QUESTIONS[0]) is None  # nothing to match yet
    assert courses.embed_pending() == 8 and courses.embed_pending() == 0
    assert all(c.embedded for c in list_courses(database, TEAM))
    person = user()
    assert [ask(courses, embedder, person, q) is not None for q in VPN_QUESTIONS[:3]] == [False, False, True]
