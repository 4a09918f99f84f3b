"""What L&D reads and the LRS receives: `moment report`, `moment export`, `moment xapi`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from assistant.cli.common import (
    EXIT_PARTIAL,
    MomentGroup,
    require_database,
    service_for,
    settings_of,
)


@click.command("report")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True, help="The period, in days.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md", show_default=True)
@click.option(
    "--chart",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the chart here (.png, .jpg, .svg or .pdf, by the file's ending).",
)
@click.option("--team", help="The workspace (Slack team id) to report on (default: MOMENT_DEFAULT_TEAM_ID).")
@click.pass_context
def report_command(ctx: click.Context, days: int, fmt: str, chart: Path | None, team: str | None) -> None:
    """Usage, answered and helpful rates, top content, content gaps, mentors, stale content (of one
    workspace)."""
    from assistant.records.reports import CHART_FORMATS, chart_image, to_csv, to_json, to_markdown

    settings = settings_of(ctx)
    if chart is not None:
        if chart.suffix.lower().lstrip(".") not in CHART_FORMATS:
            raise click.ClickException(
                f"{chart}: Moment writes charts as .png, .jpg, .svg or .pdf; give the file one of those endings."
            )
        if not chart.parent.is_dir():
            raise click.ClickException(
                f"The folder {chart.parent} does not exist: create it, or write the chart elsewhere."
            )
    require_database(settings)
    report = service_for(settings).operations.report(days, team_id=team)
    click.echo({"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](report), nl=False)
    if chart:
        chart.write_bytes(chart_image(report, chart.suffix.lower().lstrip(".")))
        click.echo(f"Chart written to {chart}", err=True)


@click.command("export")
@click.option("--days", type=click.IntRange(1, 3650), help="Only the last N days (default: everything).")
@click.option("--team", help="Only this workspace's (Slack team id; default: every workspace's).")
@click.pass_context
def export_command(ctx: click.Context, days: int | None, team: str | None) -> None:
    """Every interaction as CSV on standard output (cells that a spreadsheet would run as a formula are
    prefixed with ')."""
    from assistant.records.reports import export_csv

    click.echo(export_csv(require_database(settings_of(ctx)), days, team), nl=False)


@click.group(cls=MomentGroup)
def xapi() -> None:
    """Statements for the Learning Record Store."""


@xapi.command("flush")
@click.pass_context
def xapi_flush(ctx: click.Context) -> None:
    """Deliver every queued statement now."""
    from assistant.records.xapi import XapiOutbox

    settings = settings_of(ctx)
    if not settings.lrs_endpoint:
        raise click.ClickException("LRS_ENDPOINT is not set: there is no Learning Record Store to send to.")
    outbox = XapiOutbox(settings, require_database(settings))
    outbox.retry_now()
    counts = outbox.flush()
    status = outbox.status()
    click.echo(
        f"Sent {counts['sent']}, rejected {counts['rejected']}, deferred {counts['deferred']}. "
        f"Now {status.queued} queued, {status.sent} sent, {status.rejected} rejected."
    )
    if counts["deferred"]:
        sys.exit(EXIT_PARTIAL)


@xapi.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def xapi_status(ctx: click.Context, as_json: bool) -> None:
    """Queued, sent and rejected statements (with the reasons of the latest rejections)."""
    from assistant.records.xapi import XapiOutbox

    settings = settings_of(ctx)
    outbox = XapiOutbox(settings, require_database(settings))
    status = outbox.status()
    rejected = outbox.rejected(10)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "queued": status.queued,
                    "sent": status.sent,
                    "rejected": status.rejected,
                    "oldest_queued": status.oldest_queued.isoformat() if status.oldest_queued else None,
                    "latest_rejections": [{"id": r.id, "verb": r.verb, "reason": r.error} for r in rejected],
                }
            )
        )
        return
    click.echo(f"LRS: {settings.lrs_endpoint or 'not configured (LRS_ENDPOINT)'}")
    click.echo(f"queued {status.queued}, sent {status.sent}, rejected {status.rejected}")
    if status.oldest_queued:
        click.echo(f"oldest queued: {status.oldest_queued:%Y-%m-%d %H:%M} UTC")
    for r in rejected:
        click.echo(f"  rejected {r.id} ({r.verb}): {r.error}")
