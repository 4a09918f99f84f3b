"""The Block Kit limits Slack enforces (a subset): the error Slack would answer for a message or a view, so
that the stub refuses what Slack would refuse (`invalid_blocks`, `msg_too_long`, `invalid_arguments`)."""

from __future__ import annotations

from typing import Any


def check_message(p: dict) -> str | None:
    """The error Slack would answer for this message, if any (a subset of Block Kit's limits)."""
    blocks = p.get("blocks")
    text = p.get("text")
    if not text and not blocks and not p.get("attachments"):
        return "no_text"
    if text and len(text) > 40000:
        return "msg_too_long"
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > 50:
            return "invalid_blocks"
        if any(_bad_block(b) for b in blocks):
            return "invalid_blocks"
    return None


def check_view(view: dict) -> str | None:
    if view.get("type") not in ("home", "modal"):
        return "invalid_arguments"
    blocks = view.get("blocks") or []
    if len(blocks) > 100 or any(_bad_block(b) for b in blocks):
        return "invalid_arguments"
    if view["type"] == "modal":
        title = (view.get("title") or {}).get("text", "")
        if not title or len(title) > 24:
            return "invalid_arguments"
    if len(view.get("private_metadata") or "") > 3000:
        return "invalid_arguments"
    return None


def _bad_block(block: Any) -> bool:
    if not isinstance(block, dict) or "type" not in block:
        return True
    kind = block["type"]
    if kind == "section":
        text = (block.get("text") or {}).get("text", "")
        return (not text and not block.get("fields")) or len(text) > 3000
    if kind == "header":
        return len((block.get("text") or {}).get("text", "")) > 150
    if kind == "context":
        elements = block.get("elements") or []
        return not elements or len(elements) > 10 or any(len(e.get("text", "")) > 3000 for e in elements)
    if kind == "actions":
        elements = block.get("elements") or []
        return (
            not elements
            or len(elements) > 25
            or any(len(str(e.get("value", ""))) > 2000 for e in elements)
            or any(len((e.get("text") or {}).get("text", "")) > 75 for e in elements)
            or len({e.get("action_id") for e in elements}) != len(elements)
        )
    return False
