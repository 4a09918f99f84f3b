"""The Gaps page of the admin web app (/admin/gaps), over real HTTP on loopback and a real database, gaps made by
the real model (assistant/insights/gaps.py): the list and its filter, a gap's detail, assigning (the owner's DM
seen by the Slack stand-in), closing and reopening with their history and audit, each refusal as a page of its
own (no CSRF token, another workspace's gap, an unknown one, a bad owner), question text escaped, the CSV, and
question text hidden where the settings say so."""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from assistant.db.database import Database
from assistant.db.models import AuditEvent, utcnow
from assistant.insights.gaps import Gaps
from tests.insights_data import GAP_SCRIPT, OTHER_GAP, OTHER_TEAM_QUESTION, seed_gaps, seed_workspace
from tests.web_signin import ADMIN, sign_in, web_env

OWNER = "U0OWNER001"


@pytest.fixture(scope="module")
def server(module_moment_app, module_database_url, slack_api, embedder):
    app = module_moment_app(module_database_url, env=web_env(slack_api))
    engine = create_engine(module_database_url)
    with Session(engine) as session, session.begin():
        seed_workspace(session, "default", utcnow())
    engine.dispose()
    app.gap_ids = seed_gaps(module_database_url, embedder)
    return app


@pytest.fixture
def admin(server, slack_api) -> requests.Session:
    response = sign_in(server, slack_api)
    assert response.status_code == 302, response.text
    return response.browser


def token_of(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def post(admin, server, path: str, **form) -> requests.Response:
    """A form of the gap's page sent as the browser sends it (with the page's CSRF token)."""
    token = token_of(admin.get(server.url + "/admin/", timeout=10).text)
    return admin.post(server.url + path, data={"csrf_token": token, **form}, timeout=10)


def audit(server, action: str) -> list[tuple[str, bool, str | None]]:
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        found = [(e.user_id, e.allowed, e.detail) for e in events]
    engine.dispose()
    return found


def test_the_list_shows_the_workspaces_gaps_escaped_with_a_filter_and_a_csv(server, admin):
    page = admin.get(server.url + "/admin/gaps", timeout=10)
    assert page.status_code == 200 and page.text.count("<h1>") == 1, page.text
    assert "<script" not in page.text and "&lt;script&gt;alert(&#39;gap&#39;)&lt;/script&gt;" in page.text
    assert OTHER_GAP not in page.text and OTHER_TEAM_QUESTION not in page.text
    pizza = server.gap_ids["pizza"]
    assert f'href="/admin/gaps/{pizza}' in page.text and "3 questions" in page.text and "new" in page.text
    assert 'aria-current="page">Gaps<' in page.text  # in the navigation
    closed = admin.get(server.url + "/admin/gaps?status=closed", timeout=10)
    assert closed.status_code == 200 and f"/admin/gaps/{pizza}" not in closed.text
    assert admin.get(server.url + "/admin/gaps?status=<b>x</b>", timeout=10).status_code == 400
    download = admin.get(server.url + "/admin/gaps.csv?status=all", timeout=10)
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(download.text))}
    assert server.gap_ids["other"] not in rows
    assert rows[pizza]["size"] == "3" and rows[pizza]["status"] in ("open", "assigned", "closed")
    assert GAP_SCRIPT in rows[pizza]["examples"]


def test_an_admin_assigns_closes_and_reopens_a_gap_and_the_owner_is_told(server, admin, slack_api):
    pizza = server.gap_ids["pizza"]
    detail = admin.get(f"{server.url}/admin/gaps/{pizza}", timeout=10)
    assert detail.status_code == 200 and detail.text.count("<h1>") == 1
    assert "&lt;script&gt;alert(&#39;gap&#39;)&lt;/script&gt;" in detail.text and "<script" not in detail.text
    assert "created" in detail.text  # the history

    slack_api.clear()
    assigned = post(admin, server, f"/admin/gaps/{pizza}/assign", owner=f" {OWNER} ")
    assert assigned.status_code == 200 and f"assigned to {OWNER}" in assigned.text, assigned.text
    assert "told them by DM" in assigned.text
    dm = slack_api.wait_for("chat.postMessage")
    assert slack_api.calls("conversations.open")[0].params["users"] == OWNER
    assert f"<@{ADMIN}> gave you a content gap (gap {pizza})" in dm.params["text"]
    assert "&lt;script&gt;" in dm.params["text"] and "<script>" not in dm.params["text"]
    listed = admin.get(server.url + "/admin/gaps?status=assigned", timeout=10).text
    assert f"/admin/gaps/{pizza}" in listed and OWNER in listed

    closed = post(admin, server, f"/admin/gaps/{pizza}/close", note="a page on <em>team meals</em>")
    assert closed.status_code == 200 and "is closed" in closed.text
    assert "a page on &lt;em&gt;team meals&lt;/em&gt;" in closed.text
    assert f"/admin/gaps/{pizza}" in admin.get(server.url + "/admin/gaps?status=closed", timeout=10).text
    again = post(admin, server, f"/admin/gaps/{pizza}/close", note="twice")
    assert again.status_code == 400 and "closed already" in again.text and "Traceback" not in again.text

    reopened = post(admin, server, f"/admin/gaps/{pizza}/reopen")
    assert reopened.status_code == 200 and "is assigned again" in reopened.text
    history = re.findall(r'<td class="action">(\w+)</td>', reopened.text)
    assert history[-3:] == ["assigned", "closed", "reopened"]
    assert [(u, a, d) for u, a, d in audit(server, "web gap assign")][-1] == (ADMIN, True, f"gap {pizza} to {OWNER}")
    assert audit(server, "web gap close")[0][:2] == (ADMIN, True)
    assert audit(server, "web gap reopen")[-1][:2] == (ADMIN, True)


def test_refusals_are_pages_of_their_own_and_change_nothing(server, admin, slack_api):
    pizza, other = server.gap_ids["pizza"], server.gap_ids["other"]
    no_token = admin.post(f"{server.url}/admin/gaps/{pizza}/assign", data={"owner": OWNER}, timeout=10)
    assert no_token.status_code == 400 and "form has expired" in no_token.text
    foreign = admin.get(f"{server.url}/admin/gaps/{other}", timeout=10)
    assert foreign.status_code == 404 and OTHER_GAP not in foreign.text and "No gap" in foreign.text
    slack_api.clear()
    foreign_assign = post(admin, server, f"/admin/gaps/{other}/assign", owner=OWNER)
    assert foreign_assign.status_code == 404 and OTHER_GAP not in foreign_assign.text
    assert admin.get(f"{server.url}/admin/gaps/99999", timeout=10).status_code == 404
    assert admin.get(f"{server.url}/admin/gaps/abc", timeout=10).status_code == 404
    bad_owner = post(admin, server, f"/admin/gaps/{pizza}/assign", owner="<b>olive</b>")
    assert bad_owner.status_code == 400 and "is not a Slack user id" in bad_owner.text
    assert "<b>olive</b>" not in bad_owner.text and "Traceback" not in bad_owner.text
    assert 'value="&lt;b&gt;olive&lt;/b&gt;"' in bad_owner.text  # what was typed is kept, escaped
    assert not slack_api.calls("chat.postMessage")  # nobody was told anything
    engine = create_engine(server.database_url)
    database = Database(server.database_url)
    try:
        assert Gaps(database).detail("T0OTHERWS", other).gap.owner_id is None
    finally:
        database.dispose()
        engine.dispose()
    assert (ADMIN, False, f"gap {other}: No gap {other} in this workspace") in [
        (u, a, (d or "").split(" (")[0]) for u, a, d in audit(server, "web gap assign")
    ]


def test_question_text_is_hidden_where_the_settings_say_so(module_moment_app, server, slack_api):
    hidden = module_moment_app(server.database_url, env=web_env(slack_api, MOMENT_WEB_QUESTION_TEXT="off"))
    browser = sign_in(hidden, slack_api).browser
    pizza = server.gap_ids["pizza"]
    for path in ("/admin/gaps?status=all", f"/admin/gaps/{pizza}", "/admin/gaps.csv?status=all"):
        page = browser.get(hidden.url + path, timeout=10)
        assert page.status_code == 200, (path, page.text)
        assert "pizza for the team" not in page.text and "alert(" not in page.text, path
