"""A source as people read it: the lines of `moment source show` and `/moment source show`."""

from __future__ import annotations

import datetime as dt


def when(value: dt.datetime | None) -> str:
    """A time as the CLI and Slack show it."""
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


def describe(view) -> list[str]:
    """The lines `moment source show` prints (and `/moment source show` posts, escaped)."""
    schedule = f"every {view.schedule_minutes} min" if view.schedule_minutes else "on request"
    lines = [
        f"{view.name} ({view.kind}): {view.target}",
        f"  schedule {schedule}; prune every {view.prune_hours} h" if view.prune_hours else f"  schedule {schedule}",
        f"  workspace {view.team_id or 'all (shared content)'}; {view.items} items",
    ]
    options = {k: v for k, v in (view.settings or {}).items() if k != "in_place"}
    if options:
        lines.append("  options " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())))
    if view.running:
        lines.append(f"  syncing now (since {when(view.last_started_at)})")
    if view.last_finished_at:
        c = view.last_changes or {}
        lines.append(
            f"  last sync {when(view.last_finished_at)}: {view.last_status}; added {c.get('added', 0)}, "
            f"changed {c.get('changed', 0)}, deleted {c.get('deleted', 0)}; {len(view.last_failures or [])} failed"
        )
    else:
        lines.append("  never synced")
    if view.last_error:
        lines.append(f"  error: {view.last_error}")
    if view.last_status == "failed" and view.last_good_at:
        lines.append(f"  last good sync {when(view.last_good_at)}: its items keep answering")
    for failure in (view.last_failures or [])[:20]:
        lines.append(f"    {failure['id']}: {failure['reason']}")
    if len(view.last_failures or []) > 20:
        lines.append(f"    … and {len(view.last_failures) - 20} more (`moment source show --json`)")
    lines.append(f"  next run {when(view.next_run_at) if view.next_run_at else 'on request'}")
    return lines
