"""Which help-channel messages Moment takes, when a thread follow-up needs its thread, and cutting escaped
mrkdwn safely. Pure functions, checked directly (the Slack side is in test_slack_help_channels.py)."""

from __future__ import annotations

import pytest

from assistant.answering.followups import needs_context, with_context
from assistant.helpchannels.triage import triage
from assistant.slack.formatting import escape, escaped, truncate


@pytest.mark.parametrize(
    "text",
    [
        "vpn token wont work keeps saying wrong code",
        "who do I call when my token is locked?",
        "how do i claim mileage for my own car",
        "anyone know where the torque table for flare nuts is",
        "my fieldpro password expired and the reset link fails",
        "need to order new gloves for the crew",
        "Expensify keeps rejecting my receipt",
    ],
)
def test_questions_and_problem_statements_are_taken(text):
    assert triage(text).take, triage(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("thanks!", "too_short"),
        ("ok thanks everyone, all sorted now", "chit_chat"),
        ("anyone up for lunch at 12?", "chit_chat"),
        ("happy birthday Priya! :tada:", "chit_chat"),
        ("<@U0SAM00001> can you check why my vpn token fails?", "addressed"),
        ("The office is closed on Friday for the floor refit", "statement"),
        ("how do i " + "really " * 200 + "reset it?", "too_long"),
    ],
)
def test_chit_chat_replies_to_people_and_announcements_are_not(text, reason):
    assert triage(text) == triage(text).__class__(False, reason)


def test_a_follow_up_leaning_on_its_thread_is_searched_with_it():
    previous = "who do I call when my token is locked?"
    assert with_context("what about out of hours?", previous) == f"{previous}\nwhat about out of hours?"
    assert with_context("and for company vans?", "mileage rate own car").endswith("and for company vans?")
    standalone = "how do I book a meeting room for the quarterly planning offsite next month"
    assert not needs_context(standalone) and with_context(standalone, previous) == standalone
    assert with_context("what about out of hours?", None) == "what about out of hours?"


def test_cutting_escaped_text_never_leaves_half_an_entity_or_link():
    text = escape("a & b " * 30)
    for limit in range(20, 120):
        cut = truncate(text, limit)
        assert len(cut) <= limit and not cut.rstrip("…").endswith(("&", "&a", "&am", "&amp")), cut
    link = "see <https://intranet.example/kb/vpn-token#steps|Reset a VPN hardware token> for the steps " * 3
    for limit in range(10, len(link)):
        cut = truncate(link, limit)
        assert cut.count("<") == cut.count(">"), cut
    assert escaped("<!channel> & more " * 20, 50).startswith("&lt;!channel&gt; &amp; more")
    assert "<" not in escaped("<!channel> " * 50, 40)
