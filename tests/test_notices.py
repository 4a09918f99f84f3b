"""Notices name people by slot; each edge renders them its own way, and the core writes no chat markup."""

import ast
from pathlib import Path

from assistant.mentoring.notices import Notice

CORE = Path(__file__).resolve().parents[1] / "assistant"


def test_a_notice_renders_each_person_the_edges_way():
    notice = Notice("{mentor} is helping {asker}.", {"mentor": "U1", "asker": "U2"})
    assert notice.render(lambda user: f"<@{user}>") == "<@U1> is helping <@U2>."
    assert str(notice) == "U1 is helping U2."


def test_a_notice_leaves_other_braces_alone():
    assert Notice("Use {curly} braces, {mentor}.", {"mentor": "U1"}).render() == "Use {curly} braces, U1."


def test_the_hand_off_and_the_mentor_registry_write_no_slack_markup():
    for name in ("mentoring/handoff.py", "mentoring/mentors.py", "mentoring/drafts.py", "answering/followups.py"):
        for node in ast.walk(ast.parse((CORE / name).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert "<@" not in node.value and "<#" not in node.value, (name, node.value)
