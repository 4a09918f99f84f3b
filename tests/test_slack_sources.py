"""Content sources end to end in Slack: an admin adds and syncs a web source with `/moment source …`, people
ask by DM, and edits, deletions and restrictions at the source reach the answers at the next sync. The real
WSGI app (in this process) answering signed requests, the Web API stand-in, the intranet on loopback
(sourcestub/web.py), the real model, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from assistant.slack import blocks as answer_ui
from slackstub import payloads as P
from sourcestub.web import LUNCH_EDITED, lunch_site
from tests.slack_fixtures import MomentApps

pytestmark = pytest.mark.slow

ADMIN, WORKER = "U0SRCADMIN", "U0SRCWORK1"
QUESTION = "what is the expense limit for team lunches"


@pytest.fixture
def site():
    with lunch_site(6) as s:
        yield s


@pytest.fixture
def app(slack_api, moment_content, tmp_path, database_url):
    content, index = tmp_path / "content", tmp_path / "index"
    shutil.copytree(moment_content[0], content)
    shutil.copytree(moment_content[1], index)
    slack_api.clear()
    apps = MomentApps(slack_api, (content, index), tmp_path)
    yield apps(database_url, env={"MOMENT_ADMINS": ADMIN})
    apps.stop_all()


def moment(app, slack_api, text: str, user: str = ADMIN, until: str | None = None, blocks: bool = False) -> str:
    """`/moment text`; what it answered (the answer containing `until`, for a sync that answers later; with
    `blocks`, its blocks as JSON text)."""
    url = slack_api.response_url()
    response = app.sender.command(
        P.slash_command(text, user=user, channel="C0ADMINS01", response_url=url, command="/moment")
    )
    assert response.status_code == 200
    call = slack_api.wait_for(
        "response_url",
        lambda c: c.params["response_url_id"] == url.rsplit("/", 1)[-1] and (until or "") in c.params["text"],
        timeout=240,
    )
    return json.dumps(call.params.get("blocks")) if blocks else call.params["text"]


def ask(app, slack_api, text: str = QUESTION, user: str = WORKER) -> str:
    """DM `text`; the answer posted (its blocks as JSON text)."""
    channel = P.dm_channel(user)
    before = len(answers(slack_api, channel))
    assert app.sender.event(P.event_callback(P.im_message(text, user=user))).status_code == 200
    slack_api.wait_for("chat.postMessage", lambda c: _is_answer(c, channel), count=before + 1, timeout=60)
    return json.dumps(answers(slack_api, channel)[before].params)


def answers(slack_api, channel):
    return slack_api.calls("chat.postMessage", lambda c: _is_answer(c, channel))


def _is_answer(call, channel) -> bool:
    return call.params.get("channel") == channel and bool(P.button(call.params.get("blocks"), answer_ui.ASK_MENTOR))


def sync(app, slack_api) -> str:
    done = moment(app, slack_api, "source sync intranet", until="synced")
    time.sleep(1.2)  # a web process serves a newly published version within a second (Retriever.reload_interval)
    return done


@pytest.mark.timeout(900)  # six syncs, each a build with the real model
def test_a_web_source_added_in_slack_answers_and_follows_edits_deletions_and_restrictions(app, slack_api, site):
    lunch_url = site.url("/kb/lunch.html")
    assert "Added the web source *intranet*" in moment(
        app, slack_api, f"source add web intranet <{site.url('/kb/index.html')}> rate: 0"
    )
    done = sync(app, slack_api)
    assert ":white_check_mark:" in done and "0 failed" in done, done
    answer = ask(app, slack_api)
    assert "25 dollars" in answer and lunch_url in answer

    site.set_page("/kb/lunch.html", LUNCH_EDITED)  # edited at the source
    assert "changed 1" in sync(app, slack_api)
    answer = ask(app, slack_api)
    assert "40 dollars" in answer and "25 dollars" not in answer

    site.make_private("/kb/lunch.html")  # made private: Moment may no longer read it, nor see it in the sitemap
    done = sync(app, slack_api)
    assert "deleted 1" in done  # unlisted and linked from nowhere: gone, as far as the site tells
    assert lunch_url not in ask(app, slack_api)

    site.make_public("/kb/lunch.html")
    assert "added 1" in sync(app, slack_api)
    assert lunch_url in ask(app, slack_api)
    site.delete("/kb/lunch.html")  # deleted at the source
    assert "deleted 1" in sync(app, slack_api)
    answer = ask(app, slack_api)
    assert lunch_url not in answer and "40 dollars" not in answer

    status = moment(app, slack_api, "source show intranet")
    assert "last sync" in status and "next run" in status


def test_only_admins_manage_sources_and_status_lists_them(app, slack_api, site):
    refused = moment(app, slack_api, "source add web intranet http://127.0.0.1:9/kb/", user=WORKER)
    assert "is for Moment admins" in refused
    assert "intranet" not in moment(app, slack_api, "source list")
    assert "is for Moment admins" in moment(app, slack_api, "source sync content", user=WORKER)
    moment(app, slack_api, f"source add web intranet <{site.url('/kb/index.html')}> rate: 0")
    assert "*intranet* (web)" in moment(app, slack_api, "source list")
    status = moment(app, slack_api, "status", blocks=True)
    assert "Content sources" in status and "*intranet* (web): 0 items; last sync never" in status
    assert "There is no source called" in moment(app, slack_api, "source show nowhere")
    assert "<script>" not in moment(app, slack_api, "source show <script>")


def test_a_confluence_page_restricted_to_a_group_answers_its_members_only(app, slack_api, monkeypatch):
    from sourcestub.confluence import EMAIL, TOKEN, ConfluenceStub, Page

    member, outsider = "U0SRCMEMB1", WORKER
    slack_api.emails.update({"pat.member@example.com": member, "sam.worker@example.com": outsider})
    monkeypatch.setenv("MOMENT_TEST_CONFLUENCE_TOKEN", TOKEN)
    question = "what is the salary band B3 range"
    with ConfluenceStub() as wiki:
        wiki.add(Page("100", "HR", "HR handbook", "<p>Welcome to the HR handbook.</p>"))
        body = "<h2>Salary bands</h2><p>Salary band B3 runs from 61,000 to 74,000 dollars a year.</p>"
        wiki.add(Page("101", "HR", "Salary bands", body, parent="100"))
        wiki.groups["hr-team"] = ["pat.member@example.com"]
        added = moment(
            app,
            slack_api,
            f"source add confluence wiki <{wiki.url}> spaces: HR email: <mailto:{EMAIL}|{EMAIL}> "
            "api_token_env: MOMENT_TEST_CONFLUENCE_TOKEN",
        )
        assert "Added the confluence source *wiki*" in added, added
        assert "wiki" in moment(app, slack_api, "source sync wiki", until="synced")
        time.sleep(1.2)
        page = f"{wiki.url}/spaces/HR/pages/101"
        assert page in ask(app, slack_api, question, user=outsider)  # open to everyone so far

        wiki.pages["101"].groups = ["hr-team"]  # restricted at the source (its version does not change)
        done = moment(app, slack_api, "source sync wiki", until="synced")
        assert "changed 1" in done, done
        time.sleep(1.2)
        assert page in ask(app, slack_api, question, user=member)
        answer = ask(app, slack_api, question, user=outsider)
        assert page not in answer and "61,000" not in answer
