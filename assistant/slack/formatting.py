"""Safe text for Slack mrkdwn.

Slack turns `<!channel>`, `<!here>`, `<@U123>` and `<url|label>` into pings and links, and uses `&`,
`<`, `>` as its escape characters. Anything a person typed or a content file says is escaped before it
is echoed, so it can neither ping a channel nor break the message's formatting.
"""

from __future__ import annotations

import re

SECTION_TEXT_LIMIT = 3000  # Block Kit: section text
CONTEXT_TEXT_LIMIT = 2000
MESSAGE_TEXT_LIMIT = 3000  # the fallback `text` we send (Slack truncates at 40,000; keep it readable)
BLOCKS_LIMIT = 50

# An entity (`&amp;`) or a mention / link (`<https://x|label>`) left open at the end of a cut.
_OPEN_AT_END = re.compile(r"&#?[A-Za-z0-9]*$|<[^>]*$")


def escape(text: str | None) -> str:
    """Escape Slack's control characters (`&`, `<`, `>`) in untrusted text."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut text to `limit` characters at a word boundary, with an ellipsis. Safe on escaped mrkdwn: the cut
    never ends inside an entity (`&amp;`) or a link or mention (`<url|label>`), which would show as debris
    or, for a half `<!channel>`, be repaired by nobody."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return _OPEN_AT_END.sub("", cut).rstrip() + "…"


def escaped(text: str | None, limit: int) -> str:
    """User or content text for mrkdwn: cut to `limit` first, then escaped (so no entity is cut)."""
    return escape(truncate(text or "", limit))


def quote(text: str) -> str:
    """Escaped text as a mrkdwn block quote, line by line."""
    return "\n".join(f">{line}" if line.strip() else ">" for line in escape(text).split("\n"))


def mention(user_id: str) -> str:
    """A person, as Slack shows them (their name, linked)."""
    return f"<@{user_id}>"


def link(url: str | None, label: str) -> str:
    """A mrkdwn link with an escaped label (plain label when there is no URL)."""
    label = escape(label).replace("|", "¦")
    if not url:
        return f"*{label}*"
    safe_url = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"*<{safe_url}|{label}>*"


def duration(seconds: float) -> str:
    """1:05 or 1:02:05."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"
