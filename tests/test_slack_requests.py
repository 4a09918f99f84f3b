"""Requests and start-ups Moment must refuse cleanly: malformed requests (400, not 500), a Share clicked by
someone other than the asker, a wrong or unreachable Slack token at `moment serve`.

The real WSGI app of `moment serve` over real HTTP, with requests signed exactly as Slack signs them; the real
`moment serve` process for start-up; Slack is the stand-in of slackstub/.
"""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import urlencode

import pytest

from assistant.slack import blocks as ui
from assistant.slack.app import ONLY_THE_ASKER_SHARES
from slackstub import payloads as P
from tests.slack_fixtures import MOMENT, free_port, serve_environment

pytestmark = pytest.mark.slow

VPN_QUESTION = "my vpn token keeps failing how do i reset it"
QUIET = 2.5


@pytest.fixture(scope="module")
def server(module_moment_app, module_database_url):
    return module_moment_app(module_database_url)


# --- 13: malformed requests ---------------------------------------------------------------------------------


def test_a_timestamp_that_is_not_a_number_is_a_bad_request(server, slack_api):
    user = P.uid()
    body = json.dumps(P.event_callback(P.im_message(VPN_QUESTION, user=user))).encode()
    response = server.sender.post(body, "application/json", timestamp="12a45")
    assert response.status_code == 400
    assert "X-Slack-Request-Timestamp" in response.text
    assert server.healthz().status_code == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"type": "event_callback", "event": ', "application/json"),  # cut short
        (b'["event_callback"]', "application/json"),  # JSON, but not an object
        (b'{"command": "/ask", "text": "vpn"}', "application/x-www-form-urlencoded"),  # a command that is no form
        (urlencode({"payload": "{not json"}).encode(), "application/x-www-form-urlencoded"),  # an interaction
        (b"\xff\xfe\x00", "application/json"),  # not even text
    ],
    ids=["json-cut-short", "json-not-an-object", "command-not-a-form", "payload-not-json", "not-utf8"],
)
def test_a_correctly_signed_body_that_is_not_what_it_says_is_a_bad_request(server, body, content_type):
    response = server.sender.post(body, content_type)
    assert response.status_code == 400, response.text
    assert server.healthz().status_code == 200


def test_a_badly_signed_malformed_body_is_still_unauthorised(server):
    response = server.sender.post(b"{not json", "application/json", bad_signature=True)
    assert response.status_code == 401


# --- 13: only the asker shares their answer -----------------------------------------------------------------


def test_share_clicked_by_someone_other_than_the_asker_is_refused_privately(server, slack_api):
    asker, other, channel = P.uid(), P.uid(), P.uid("C")
    response_url = slack_api.response_url()
    server.sender.command(P.slash_command(VPN_QUESTION, user=asker, channel=channel, response_url=response_url))
    eph = slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("channel") == channel)
    share = P.button(eph.params["blocks"], ui.SHARE_ANSWER)
    forged_url = slack_api.response_url()
    forged = P.block_actions(
        action_id=ui.SHARE_ANSWER,
        value=share["value"],
        user=other,
        channel=channel,
        response_url=forged_url,
        ephemeral=True,
        text="Share in channel",
    )
    assert server.sender.interaction(forged).status_code == 200
    refusal = slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == forged_url.rsplit("/", 1)[-1])
    assert refusal.params["text"] == ONLY_THE_ASKER_SHARES
    assert refusal.params.get("response_type") == "ephemeral"
    time.sleep(QUIET)
    assert not slack_api.calls("chat.postMessage", lambda c: c.params.get("channel") == channel)


# --- 17: a wrong or unreachable Slack token at start-up -----------------------------------------------------


def _serve(slack_api, moment_content, database_url, tmp_path, env) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full_env = serve_environment(slack_api, moment_content, database_url, home, env, workers=2)
    return subprocess.run(
        [str(MOMENT), "serve", "--port", str(free_port())],
        cwd=home,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_with_a_token_slack_refuses_says_so_in_one_line(slack_api, moment_content, database_url, tmp_path):
    done = _serve(slack_api, moment_content, database_url, tmp_path, {"SLACK_BOT_TOKEN": "xoxb-1111-2222-revoked"})
    assert done.returncode == 5, done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "Worker failed to boot" not in output, output
    [line] = done.stderr.strip().splitlines()
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in line
    assert "xoxb-1111-2222-revoked" not in output


def test_serve_with_slack_unreachable_says_so_in_one_line(slack_api, moment_content, database_url, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/api/"
    done = _serve(slack_api, moment_content, database_url, tmp_path, {"SLACK_API_URL": closed})
    assert done.returncode == 5, done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "Worker failed to boot" not in output, output
    [line] = done.stderr.strip().splitlines()
    assert f"Slack could not be reached at {closed}" in line and "SLACK_API_URL" in line
