"""The admin pages at /admin of `moment serve`'s WSGI app (in this process, real HTTP on loopback, a real
database), signed in through the Slack stand-in's OpenID Connect: every page and CSV of one workspace, and
each refusal (non-admin, another workspace, forged or expired session, missing, replayed or foreign state,
a tampered id_token, a form without its CSRF token, bad parameters) as a page of its own."""

from __future__ import annotations

import csv
import hashlib
import io
import time

import pytest
import requests
from flask.json.tag import TaggedJSONSerializer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from assistant.db.models import AuditEvent, utcnow
from slackstub.api import Workspace
from tests.insights_data import (
    COURSE_TITLE,
    FORMULA_QUESTION,
    OTHER_TEAM_QUESTION,
    SCRIPT_QUESTION,
    seed_courses,
    seed_workspace,
)
from tests.test_installation import start_install
from tests.web_signin import ADMIN, WEB_SECRET, approve, sign_in, start, web_env

PAGES = ("/admin/", "/admin/content", "/admin/questions", "/admin/mentors")


@pytest.fixture(scope="module")
def server(module_moment_app, module_database_url, slack_api):
    app = module_moment_app(module_database_url, env=web_env(slack_api))
    engine = create_engine(module_database_url)
    with Session(engine) as session, session.begin():
        seed_workspace(session, "default", utcnow())  # single-token mode: the default workspace
        seed_courses(session, "default", utcnow())
    engine.dispose()
    return app


@pytest.fixture
def admin(server, slack_api) -> requests.Session:
    response = sign_in(server, slack_api)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/"), response.text
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie and "Expires=" in cookie
    return response.browser


def test_an_admin_reads_every_page_and_csv_of_their_workspace(server, admin):
    for path in PAGES:
        page = admin.get(server.url + path, timeout=10)
        assert page.status_code == 200, (path, page.text)
        assert page.text.count("<h1>") == 1
        assert "<script" not in page.text  # no script of ours, none of a question's
        assert OTHER_TEAM_QUESTION not in page.text
    questions = admin.get(server.url + "/admin/questions", timeout=10).text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in questions
    overview = admin.get(server.url + "/admin/", timeout=10).text
    assert "60%" in overview and "3 of 5 searched" in overview and "12 min" in overview
    content = admin.get(server.url + "/admin/content", timeout=10).text
    assert content.index("finance/mileage.md") < content.index("it/vpn-token.md")  # worst first
    download = admin.get(server.url + "/admin/questions.csv", timeout=10)
    assert download.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    texts = {r["question"] for r in rows}
    assert SCRIPT_QUESTION in texts and "'" + FORMULA_QUESTION in texts and OTHER_TEAM_QUESTION not in texts
    for name in ("overview", "content", "mentors"):
        table = admin.get(f"{server.url}/admin/{name}.csv?days=90", timeout=10)
        assert table.status_code == 200 and table.text.count("\n") >= 2, name


def test_the_courses_page_shows_the_catalogue_and_what_came_of_the_suggestions(server, admin):
    page = admin.get(server.url + "/admin/courses", timeout=10)
    assert page.status_code == 200 and page.text.count("<h1>") == 1 and "<script" not in page.text
    assert COURSE_TITLE not in page.text and "&lt;b&gt;Expenses&lt;/b&gt; &amp; travel 101" in page.text
    assert "3 courses, by title" in page.text
    suggested = page.text.split("<h2>Catalogue</h2>")[0]
    assert suggested.index("Expenses") < suggested.index("VPN basics")  # most suggested first
    assert "Leave" not in suggested  # in the catalogue, never suggested
    download = admin.get(server.url + "/admin/courses.csv?days=28", timeout=10)
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    rows = {r["title"]: r for r in csv.DictReader(io.StringIO(download.text))}
    expenses = rows[COURSE_TITLE]
    assert (expenses["suggested"], expenses["clicked"], expenses["not now"], expenses["completed"]) == (
        "3",
        "2",
        "1",
        "1",
    )
    assert rows["VPN basics"]["suggested"] == "1" and rows["Leave"]["suggested"] == "0"  # the period's only
    year = {r["title"]: r for r in csv.DictReader(io.StringIO(admin.get(server.url + "/admin/courses.csv?days=90",
                                                                        timeout=10).text))}  # fmt: skip
    assert year["VPN basics"]["suggested"] == "2"
    assert admin.get(server.url + "/admin/courses?page=0", timeout=10).status_code == 400


def test_not_signed_in_is_sent_to_sign_in(server):
    response = requests.get(server.url + "/admin/questions", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/signin")
    page = requests.get(server.url + "/admin/signin", timeout=10)
    assert "Sign in with Slack" in page.text and SCRIPT_QUESTION not in page.text


def test_a_person_who_is_not_an_admin_is_refused(server, slack_api):
    response = sign_in(server, slack_api, user="U0NOTADMIN")
    assert response.status_code == 403 and "Not a Moment admin" in response.text
    assert "moment_admin=" not in response.headers.get("Set-Cookie", "") or "user" not in response.text
    after = response.browser.get(server.url + "/admin/questions", allow_redirects=False, timeout=10)
    assert after.status_code == 302  # no session came of it
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.user_id == "U0NOTADMIN")).all()
    engine.dispose()
    assert [(e.action, e.allowed) for e in refused] == [("web sign-in", False)]


def test_an_admin_of_another_workspace_is_refused(server, slack_api):
    response = sign_in(server, slack_api, team="T0ELSEWHERE")
    assert response.status_code == 403 and "Not a workspace Moment serves" in response.text
    assert SCRIPT_QUESTION not in response.text


def _cookie(server, data: dict, *, secret: str = WEB_SECRET, age: float = 0.0) -> dict[str, str]:
    """A session cookie as Flask signs it (itsdangerous, salt cookie-session), `age` seconds old."""

    class Aged(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    serializer = URLSafeTimedSerializer(
        secret,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer=Aged,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return {"moment_admin": serializer.dumps(data)}


def test_forged_and_expired_sessions_get_pages_of_their_own(server, admin):
    session = {"user": ADMIN, "team": "default", "name": "A", "csrf": "x", "_permanent": True}
    assert requests.get(server.url + "/admin/", cookies=_cookie(server, session), timeout=10).status_code == 200
    forged = requests.get(server.url + "/admin/", cookies=_cookie(server, session, secret="guess"), timeout=10)
    assert forged.status_code == 400 and "not valid" in forged.text and "60%" not in forged.text
    garbage = requests.get(server.url + "/admin/", cookies={"moment_admin": "eyJ1c2VyIjoiVTAifQ.x.y"}, timeout=10)
    assert garbage.status_code == 400
    expired = requests.get(server.url + "/admin/", cookies=_cookie(server, session, age=9 * 3600), timeout=10)
    assert expired.status_code == 401 and "expired" in expired.text and "60%" not in expired.text


def test_missing_replayed_and_foreign_states_are_refused(server, slack_api):
    slack_api.openid.sign_in_as(ADMIN, team_id="T0MOMENT1")
    browser, authorize_url = start(server)
    callback = approve(browser, authorize_url)
    no_state = browser.get(callback.split("?")[0] + "?code=abc", allow_redirects=False, timeout=10)
    assert no_state.status_code == 400 and "no state" in no_state.text
    # Another browser (no sign-in of its own started) brings this sign-in's callback: refused.
    stranger = requests.get(callback, allow_redirects=False, timeout=10)
    assert stranger.status_code == 400 and "not started here" in stranger.text
    # The same browser, with its cookie as it was before the callback, replays it after a success.
    browser, authorize_url = start(server)
    callback = approve(browser, authorize_url)
    before = browser.cookies.copy()
    assert browser.get(callback, allow_redirects=False, timeout=10).status_code == 302
    replay = requests.get(callback, cookies=before, allow_redirects=False, timeout=10)
    assert replay.status_code == 400 and "expired" in replay.text


@pytest.mark.parametrize(
    ("tampering", "says"),
    [({"nonce": "another-sign-in"}, "another sign-in"), ({"foreign_key": True}, "could not be verified"),
     ({"aud": "someone-else"}, "could not be verified"), ({"exp": 1}, "could not be verified")],
)  # fmt: skip
def test_a_tampered_id_token_is_refused(server, slack_api, tampering, says):
    slack_api.openid.sign_in_as(ADMIN, team_id="T0MOMENT1")
    browser, authorize_url = start(server)
    callback = approve(browser, authorize_url)
    slack_api.openid.tamper(**tampering)
    response = browser.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and says in response.text
    assert browser.get(server.url + "/admin/", allow_redirects=False, timeout=10).status_code == 302


def test_signing_out_needs_the_csrf_token(server, admin):
    refused = admin.post(server.url + "/admin/signout", data={}, allow_redirects=False, timeout=10)
    assert refused.status_code == 400 and "form has expired" in refused.text
    page = admin.get(server.url + "/admin/", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = admin.post(server.url + "/admin/signout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert admin.get(server.url + "/admin/", allow_redirects=False, timeout=10).status_code == 302


@pytest.mark.parametrize(
    "query", ["/admin/?days=5", "/admin/?days=-1", "/admin/content?sort=evil", "/admin/content?order=up",
              "/admin/questions?show=all&before=abc", "/admin/questions?show=<b>x</b>"],
)  # fmt: skip
def test_bad_parameters_get_a_clear_400(server, admin, query):
    response = admin.get(server.url + query, timeout=10)
    assert response.status_code == 400 and "<b>x</b>" not in response.text
    assert "<h1>" in response.text


def test_the_pages_are_off_until_configured(module_moment_app, module_database_url, slack_api):
    app = module_moment_app(module_database_url, env={"MOMENT_WEB_SECRET": None, "SLACK_CLIENT_ID": None})
    response = requests.get(app.url + "/admin/", timeout=10)
    assert response.status_code == 503 and "MOMENT_WEB_SECRET" in response.text
    assert app.healthz().status_code == 200


WEB_WORKSPACE = Workspace(team_id="T0WEBOAUTH", team_name="Web", installer="U0WEBINST1")


def test_the_admin_user_group_lets_its_members_in_with_oauth_installs(
    module_moment_app, module_database_url, slack_api
):
    env = web_env(slack_api, SLACK_BOT_TOKEN=None, MOMENT_BASE_URL="https://moment.example.com",
                  MOMENT_ADMIN_USERGROUP="S0LDADMINS", MOMENT_ADMINS=None)  # fmt: skip
    server = module_moment_app(module_database_url, env=env)
    browser, _, state = start_install(server)
    code = slack_api.expect_install(WEB_WORKSPACE)
    installed = browser.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state}, timeout=30)
    assert installed.status_code == 200, installed.text
    token = slack_api.wait_for("oauth.v2.access", lambda c: c.params.get("code") == code).response["access_token"]
    slack_api.set_usergroup("S0LDADMINS", "ld-admins", ["U0GROUPADM"])

    def signed_in(user: str) -> requests.Response:
        slack_api.openid.sign_in_as(user, team_id=WEB_WORKSPACE.team_id)
        browser, authorize_url = start(server)
        callback = approve(browser, authorize_url).replace("https://moment.example.com", server.url)
        return browser.get(callback, allow_redirects=False, timeout=10)

    member = signed_in("U0GROUPADM")
    assert member.status_code == 302 and member.headers["Location"].endswith("/admin/"), member.text
    # the installation's bot token read the group (the stand-in answers only the tokens it issued)
    assert slack_api.wait_for("usergroups.users.list", lambda c: c.token == token, timeout=5).ok
    outsider = signed_in("U0NOTINGRP")
    assert outsider.status_code == 403 and "Not a Moment admin" in outsider.text
