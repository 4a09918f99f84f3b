"""Teaching from Slack end to end: the real app over signed HTTP requests, the Web API stand-in, real SQLite
and PostgreSQL: an admin's *This answered it* and *Pick the right section*, and forged clicks refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from assistant.db.database import Database
from assistant.db.models import AuditEvent, VerifiedAnswer
from assistant.slack import teaching as ui
from slackstub import payloads as P
from tests.test_slack_mentors import ADMIN, ASKER, click, deployment  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow
QUESTION = "how do i reset my vpn token"


def ask(server, slack_api, user: str):
    event = P.im_message(QUESTION, user=user)
    assert server.sender.event(P.event_callback(event)).status_code == 200
    return slack_api.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == event["channel"] and "moment_answer_actions" in json.dumps(c.params),
        timeout=30,
    )


def pairs(url: str) -> list[VerifiedAnswer]:
    database = Database(url)
    with database.session() as session:
        rows = list(session.scalars(select(VerifiedAnswer)))
        audits = [
            (a.user_id, a.allowed) for a in session.scalars(select(AuditEvent).where(AuditEvent.action == "verify"))
        ]
    database.dispose()
    return rows, audits


def test_an_admin_teaches_from_slack_and_a_forged_click_is_refused(deployment, slack_api, database_url):  # noqa: F811
    server, _ = deployment
    answered = ask(server, slack_api, ADMIN)
    assert P.button(answered.params["blocks"], ui.TEACH_SHOWN) and P.button(answered.params["blocks"], ui.TEACH_PICK)
    other = ask(server, slack_api, ASKER)
    assert P.button(other.params["blocks"], ui.TEACH_SHOWN) is None  # not for a plain asker
    interaction = P.button(answered.params["blocks"], ui.TEACH_SHOWN)["value"]

    # A forged click (someone who is neither the request's mentor nor an admin) is refused and audited.
    forged = P.block_actions(
        action_id=ui.TEACH_SHOWN,
        value=interaction,
        user=ASKER,
        channel=P.dm_channel(ASKER),
        response_url=slack_api.response_url(),
    )
    assert server.sender.interaction(forged).status_code == 200
    slack_api.wait_for(
        "chat.postEphemeral", lambda c: c.params.get("user") == ASKER and "Only the mentor" in c.text(), timeout=20
    )
    rows, audits = pairs(database_url)
    assert rows == [] and audits == [(ASKER, False)]

    # The admin's click teaches the passage shown.
    click(server, slack_api, ADMIN, answered, ui.TEACH_SHOWN)
    slack_api.wait_for(
        "chat.postEphemeral", lambda c: c.params.get("user") == ADMIN and "Thanks" in c.text(), timeout=20
    )
    rows, audits = pairs(database_url)
    assert [(r.question, r.taught_by, r.interaction_id) for r in rows] == [(QUESTION, ADMIN, int(interaction))]
    shown_section = rows[0].heading_path

    # Pick the right section: a modal with the page's sections in a static select.
    click(server, slack_api, ADMIN, answered, ui.TEACH_PICK)
    opened = slack_api.wait_for("views.open", lambda c: True, timeout=20)
    view = json.loads(opened.params["view"]) if isinstance(opened.params["view"], str) else opened.params["view"]
    select_element = view["blocks"][1]["element"]
    assert select_element["type"] == "static_select"
    labels = [o["text"]["text"] for o in select_element["options"]]
    other_section = next(n for n, label in enumerate(labels) if label != " › ".join(shown_section))

    def submit(user: str):
        payload = P.view_submission(view, user=user, values={})
        payload["view"]["state"] = {
            "values": {
                ui.SECTION_BLOCK: {
                    ui.SECTION_SELECT: {"type": "static_select", "selected_option": {"value": str(other_section)}}
                }
            }
        }
        return server.sender.interaction(payload)

    refused = submit(ASKER)  # a forged submission of the admin's modal
    assert refused.status_code == 200 and refused.json()["response_action"] == "errors"
    assert pairs(database_url)[0][0].heading_path == shown_section
    accepted = submit(ADMIN)
    assert accepted.status_code == 200 and not accepted.text, accepted.text
    slack_api.wait_for(  # taught after the acknowledgement; the admin is told in their DM
        "chat.postMessage",
        lambda c: c.params.get("channel") == P.dm_channel(ADMIN) and "Thanks" in c.text(),
        timeout=20,
    )
    rows, audits = pairs(database_url)
    assert len(rows) == 1 and " › ".join(rows[0].heading_path) == labels[other_section]
    assert audits == [(ASKER, False), (ADMIN, True), (ASKER, False), (ADMIN, True)]


@pytest.mark.parametrize("interaction_id", [7, None])
def test_the_mentors_resolved_message_offers_to_teach_the_answer(interaction_id):
    from assistant.mentoring.views import RequestView
    from assistant.slack.mentor_blocks import resolved_blocks

    request = RequestView(1, "T0TEAM", ASKER, QUESTION, "resolved", owner_id="U0MENTOR1", interaction_id=interaction_id)
    blocks = [b.to_dict() for b in resolved_blocks(request)]
    shown = P.button(blocks, ui.TEACH_SHOWN)
    assert (shown["value"] if shown else None) == (str(interaction_id) if interaction_id else None)
    assert (P.button(blocks, ui.TEACH_PICK) is not None) == (interaction_id is not None)
