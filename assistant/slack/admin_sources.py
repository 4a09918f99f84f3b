"""`/moment source …` for admins: the same as `moment source …` (assistant/sources/cli.py), in Slack.

    /moment source list
    /moment source show NAME
    /moment source sync NAME               (answers when the sync is over)
    /moment source add KIND NAME TARGET [max_pages: 500] [rate: 1] [schedule: 60] [prefix: URL] [sitemap: URL]
    /moment source remove NAME

The caller checks that the person is an admin (AdminHandlers); everything echoed is escaped.
"""

from __future__ import annotations

import logging
import re
import threading

import yaml

from assistant.slack.formatting import escape
from assistant.sources import SourceError, Sources, describe

log = logging.getLogger(__name__)

USAGE = (
    "Use `/moment source list`, `/moment source show NAME`, `/moment source sync NAME`, "
    "`/moment source add KIND NAME TARGET [max_pages: 500] [schedule: 60]` or `/moment source remove NAME`."
)
_SLACK_LINK = re.compile(r"<(?:mailto:)?((?:https?:)?[^|>@]*@?[^|>]+)(?:\|[^>]*)?>")  # Slack's <url|label>, <mailto:…>
_OPTION = re.compile(r"([a-z_]+)\s*:\s*(\S+)")


def source_command(sources: Sources, args: list[str], text: str, by: str, team: str, respond) -> None:
    """Run one `/moment source …` and `respond` (ephemeral); a sync answers when it is over."""
    sub = args[1].lower() if len(args) > 1 else ""
    rest = _SLACK_LINK.sub(r"\1", text).split()[2:]  # after "source <sub>", links unwrapped
    try:
        if sub == "list":
            views = sources.list()
            lines = [
                f"• *{escape(v.name)}* ({v.kind}) {v.items} items, "
                f"{'syncing now' if v.running else escape(v.last_status or 'never synced')}"
                + (f", {len(v.last_failures)} failed" if v.last_failures else "")
                for v in views
            ]
            _say(respond, "*Content sources*\n" + "\n".join(lines))
        elif sub == "show" and rest:
            _say(respond, "```" + escape("\n".join(describe(sources.show(rest[0])))) + "```")
        elif sub == "remove" and rest:
            sources.remove(rest[0])
            _say(respond, f"Removed the source *{escape(rest[0])}*; its items no longer answer.")
        elif sub == "add" and len(rest) >= 3:
            kind, name, target = rest[0].lower(), rest[1], rest[2]
            options = {k: yaml.safe_load(v) for k, v in _OPTION.findall(" ".join(rest[3:]))}
            schedule = int(options.pop("schedule", 60))
            view = sources.add(kind, name, target, options=options, schedule_minutes=schedule, team_id=team, by=by)
            _say(
                respond,
                f"Added the {view.kind} source *{escape(view.name)}* ({escape(view.target)}). "
                f"Sync it now with `/moment source sync {escape(view.name)}`, or the worker will.",
            )
        elif sub == "sync" and rest:
            name = rest[0]
            sources.show(name)  # an unknown name is told at once
            _say(respond, f":arrows_counterclockwise: Syncing *{escape(name)}*; I'll tell you here when it's done.")
            worker = threading.Thread(
                target=_sync, args=(sources, name, respond), name="moment-source-sync", daemon=True
            )
            worker.start()
        else:
            _say(respond, USAGE)
    except (SourceError, ValueError, TypeError) as exc:
        _say(respond, f":warning: {escape(str(exc))}")


def _sync(sources: Sources, name: str, respond) -> None:
    try:
        result = sources.sync(name)
    except SourceError as exc:
        _say(respond, f":warning: {escape(str(exc))}")
        return
    except Exception:
        log.exception("source %s: sync failed", name)
        _say(respond, f"The sync of *{escape(name)}* failed; the logs say why. Its last good items keep answering.")
        return
    icon = {"ok": ":white_check_mark:", "partial": ":warning:"}.get(result.status, ":x:")
    lines = [
        f"{icon} *{escape(name)}* synced: {result.status}; added {result.added}, changed {result.changed}, "
        f"deleted {result.deleted}, {len(result.failures)} failed; {result.items} items."
    ]
    if result.error:
        lines.append(escape(result.error))
    lines += [f"• `{escape(f['id'])}`: {escape(f['reason'])}" for f in result.failures[:10]]
    _say(respond, "\n".join(lines))


def _say(respond, text: str) -> None:
    respond(text=text[:3000], response_type="ephemeral")
