"""Course suggestions at the edges: the real Slack app (signed requests, the Web API stand-in), the signed
redirect of `moment serve` over real HTTP, and the `moment` command (courses import / list, ask --as)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from assistant.db.database import Database
from assistant.db.models import CourseSuggestion
from assistant.slack import blocks as ui
from assistant.slack.course_blocks import COURSE_BLOCK, COURSE_NOT_NOW, course_blocks
from slackstub import payloads as P
from tests.slack_fixtures import MODEL_CACHE, MOMENT

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "evalsets" / "course-catalogue.json"
VPN_COURSE = "https://lms.brightline.example/courses/vpn-essentials"
VPN_QUESTIONS = [
    "my vpn token keeps failing how do i reset it",
    "how do I install the vpn client on my laptop",
    "remote access to the office network from home",
]


def moment(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(MOMENT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def cli_env(database_url: str, home: Path, index_dir: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_", "LRS_"))}
    env.update(
        DATABASE_URL=database_url, MOMENT_HOME=str(home), MOMENT_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1"
    )
    if index_dir is not None:
        env["MOMENT_INDEX_DIR"] = str(index_dir)
    return env


def dm_answer(server, slack_api, user: str, text: str):
    """DM `text`; the answer posted for it (the DM's answers counted, so that each call waits for its own)."""
    event = P.im_message(text, user=user)

    def answer(call) -> bool:
        return call.params.get("channel") == event["channel"] and bool(
            P.button(call.params.get("blocks"), ui.ASK_MENTOR)
        )

    before = len(slack_api.calls("chat.postMessage", answer))
    assert server.sender.event(P.event_callback(event)).status_code == 200
    slack_api.wait_for("chat.postMessage", answer, timeout=30, count=before + 1)
    return slack_api.calls("chat.postMessage", answer)[before]


def course_block(blocks: list[dict]) -> dict | None:
    return next((b for b in blocks or [] if b.get("block_id") == COURSE_BLOCK), None)


@pytest.mark.slow
def test_the_third_question_in_slack_brings_the_course_its_link_redirects_and_not_now_takes_it_out(
    moment_app, slack_api, database_url, tmp_path
):
    server = moment_app(database_url, env={"MOMENT_BASE_URL": "https://moment.example"})
    done = moment(cli_env(database_url, tmp_path / "cli"), "courses", "import", str(CATALOGUE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 courses read: 8 added" in done.stdout and "8 embedded" in done.stdout

    user = P.uid()
    first, second = (dm_answer(server, slack_api, user, q) for q in VPN_QUESTIONS[:2])
    assert course_block(first.params["blocks"]) is None and course_block(second.params["blocks"]) is None
    third = dm_answer(server, slack_api, user, VPN_QUESTIONS[2])
    block = course_block(third.params["blocks"])
    assert block is not None, third.params["blocks"]
    text = block["text"]["text"]
    assert "the course *<https://moment.example/c/" in text and "|Remote access and VPN essentials>*" in text
    assert "(45 min)" in text and block["accessory"]["action_id"] == COURSE_NOT_NOW

    # The link: through moment serve's redirect, over HTTP (a forged one leads nowhere).
    path = text.split("https://moment.example", 1)[1].split("|", 1)[0]
    response = requests.get(server.url + path, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"] == VPN_COURSE
    assert response.headers["Referrer-Policy"] == "no-referrer"
    forged = path[: -len(path.rsplit(".", 1)[1])] + "A" * 22
    assert requests.get(server.url + forged, allow_redirects=False, timeout=10).status_code == 404
    assert requests.get(server.url + "/c/1", allow_redirects=False, timeout=10).status_code == 404
    assert requests.post(server.url + path, timeout=10).status_code == 405

    # Not now: recorded, and the line replaced in the answer.
    click = P.block_actions(
        action_id=COURSE_NOT_NOW,
        value=block["accessory"]["value"],
        user=user,
        channel=third.params["channel"],
        response_url=slack_api.response_url(),
        message=P.posted_message(third),
        block_id=COURSE_BLOCK,
    )
    assert server.sender.interaction(click).status_code == 200
    update = slack_api.wait_for("chat.update", lambda c: c.params.get("channel") == third.params["channel"])
    blocks = update.params["blocks"]
    assert "won't suggest that course again" in json.dumps(blocks) and "moment.example/c/" not in json.dumps(blocks)
    assert P.button(blocks, ui.ASK_MENTOR)  # the answer's own buttons stay
    database = Database(database_url)
    try:
        with database.session() as session:
            (row,) = session.scalars(select(CourseSuggestion).where(CourseSuggestion.user_id == user)).all()
            assert row.clicks == 1 and row.clicked_at is not None and row.dismissed_at is not None
            assert row.surface == "dm"
    finally:
        database.dispose()
    # The fourth question: never the same course twice.
    assert (
        course_block(dm_answer(server, slack_api, user, "vpn won't connect from the hotel wifi").params["blocks"])
        is None
    )


@pytest.mark.slow
def test_moment_courses_import_list_and_ask_as_a_person(moment_content, tmp_path):
    env = cli_env(f"sqlite:///{tmp_path / 'moment.db'}", tmp_path / "home", moment_content[1])
    bad = tmp_path / "catalogue.csv"
    bad.write_text(
        "title,url,topics,duration\nForklift licence,https://lms.example/c/forklift,forklifts;warehouse,45\n"
        ",https://lms.example/c/none,,\nExpenses,https://lms.example/c/exp,,soon\n",
        encoding="utf-8",
    )
    done = moment(env, "courses", "import", str(bad), "--no-embed")
    assert done.returncode == 2, done.stdout + done.stderr  # done in part: the good row kept
    assert "1 courses read: 1 added" in done.stdout
    assert "line 3: title: missing" in done.stderr and "line 4: duration: 'soon' is not a duration" in done.stderr
    missing = moment(env, "courses", "import", str(tmp_path / "nothing.csv"))
    assert missing.returncode == 1 and "No catalogue file" in missing.stderr and "Traceback" not in missing.stderr

    done = moment(env, "courses", "import", str(CATALOGUE), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 8 and json.loads(done.stdout)["embedded"] == 9  # and the forklift
    person = "U0COURSECLI"
    answers = []
    for question in VPN_QUESTIONS:
        asked = moment(env, "ask", question, "--as", person, "--json")
        assert asked.returncode == 0, asked.stderr
        answers.append(json.loads(asked.stdout))
    assert answers[0]["course"] is None and answers[1]["course"] is None
    course = answers[2]["course"]
    assert course["title"] == "Remote access and VPN essentials" and course["asked"] == 3
    assert course["url"] == VPN_COURSE and not course["tracked"]  # no MOMENT_BASE_URL: the course's own address

    listed = moment(env, "courses", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {c["title"]: c for c in json.loads(listed.stdout)["courses"]}
    assert len(rows) == 9 and rows["Remote access and VPN essentials"]["suggestions"]["suggested"] == 1
    assert rows["First aid at work"]["suggestions"] is None
    text = moment(env, "courses", "list")
    assert "suggested 1, clicked 0, not now 0, completed 0" in text.stdout


def test_a_course_title_with_markup_is_escaped_and_pings_nobody():
    offer = {
        "suggestion_id": 7,
        "title": "<!channel> Excel & <b>pivots</b> | <https://evil.example|click>",
        "url": "https://moment.example/c/7.abc",
        "duration_minutes": 90,
    }
    (block,) = [b.to_dict() for b in course_blocks(offer)]
    text = block["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&amp;" in text
    assert "<https://evil.example" not in text and text.count("<https://moment.example/c/7.abc|") == 1
    assert "(1 h 30 min)" in text and block["accessory"]["value"] == "7"
