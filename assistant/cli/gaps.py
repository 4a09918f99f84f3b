"""Content gaps from the shell: `moment gaps` lists them; `show`, `assign`, `close`, `reopen` and `refresh`."""

from __future__ import annotations

import getpass
import json
import sys

import click

from assistant.cli.common import EXIT_PARTIAL, MomentGroup, require_database, require_index, service_for, settings_of

STATUS_CHOICE = click.Choice(["open", "assigned", "closed", "all"])
TEAM_HELP = "The workspace (Slack team id; default: MOMENT_DEFAULT_TEAM_ID)."


def _store(ctx: click.Context):
    """The gaps store over the database, without loading the model (reading and changing gaps needs none)."""
    from assistant.insights.gaps import Gaps

    return Gaps(require_database(settings_of(ctx)))


def _team(ctx: click.Context, team: str | None) -> str:
    return team or settings_of(ctx).default_team_id


def _who(user: str | None) -> str:
    return user or f"cli:{getpass.getuser()}"


def _line(gap, days: int = 7) -> str:
    owner = f" → {gap.owner_id}" if gap.owner_id else ""
    answered = f"; {gap.now_answered}" if gap.now_answered else ""
    return (
        f"#{gap.id} {gap.label} [{gap.status}{owner}] {gap.size} asked, {gap.recent} in the last {days} days "
        f"({gap.trend}; {gap.previous} in the {days} before){answered}"
    )


@click.group("gaps", cls=MomentGroup, invoke_without_command=True)
@click.option("--status", type=STATUS_CHOICE, default=None, help="Only these (default: open and assigned).")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True, help="The trend's period.")
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def gaps(ctx: click.Context, status: str | None, days: int, team: str | None, as_json: bool) -> None:
    """Content gaps: questions Moment did not answer well (declined, voted not helpful, handed to a mentor),
    grouped by meaning, the busiest first. Made by the worker (or `moment gaps refresh`)."""
    if ctx.invoked_subcommand is not None:
        return
    listed = _store(ctx).list(_team(ctx, team), status, days=days)
    if as_json:
        click.echo(json.dumps({"gaps": [g.to_dict() for g in listed]}, indent=2))
        return
    if not listed:
        click.echo(f"No content gaps {status or 'open'}. `moment gaps refresh` makes them now.")
    for gap in listed:
        click.echo(_line(gap, days))
        for example in gap.examples:
            click.echo(f"    “{example}”")


@gaps.command("show")
@click.argument("gap_id", type=int)
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def gaps_show(ctx: click.Context, gap_id: int, team: str | None, as_json: bool) -> None:
    """A gap's questions (latest first) and its history."""
    detail = _store(ctx).detail(_team(ctx, team), gap_id)
    if as_json:
        click.echo(json.dumps(detail.to_dict(), indent=2))
        return
    click.echo(_line(detail.gap))
    click.echo("Questions:")
    for q in detail.questions:
        now = {True: " (answered now)", False: " (still not answered)", None: ""}[q.answered_now]
        click.echo(f"  {q.asked_at:%Y-%m-%d %H:%M} {q.user_id} [{q.reason}] “{q.question}”{now}")
    click.echo("History:")
    for e in detail.history:
        click.echo(f"  {e.at:%Y-%m-%d %H:%M} {e.actor} {e.action}" + (f": {e.detail}" if e.detail else ""))


@gaps.command("assign")
@click.argument("gap_id", type=int)
@click.option("--owner", required=True, help="The content owner's Slack user id (U…).")
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--user", default=None, help="Who assigns it, for the history (default: cli:your login name).")
@click.pass_context
def gaps_assign(ctx: click.Context, gap_id: int, owner: str, team: str | None, user: str | None) -> None:
    """Give gap GAP_ID to a content owner; Moment tells them by DM, with the gap's questions (exit status 2 when
    the gap is assigned but the owner could not be told: no SLACK_BOT_TOKEN or install, or Slack refused)."""
    settings = settings_of(ctx)
    detail = _store(ctx).assign(_team(ctx, team), gap_id, owner, _who(user))
    click.echo(f"Gap #{gap_id} “{detail.gap.label}” is assigned to {owner}.")
    from slack_sdk.errors import SlackApiError

    from assistant.slack.outbound import tell_gap_owner, web_client

    client, why = None, "SLACK_BOT_TOKEN is not set"
    if settings.multi_workspace:  # OAuth installs: the workspace's own token
        from assistant.slack.outbound import installations_of

        client = installations_of(service_for(settings)).client_for_workspace(_team(ctx, team), web_client(settings))
        why = "Moment is not installed in that workspace"
    elif settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value():
        client = web_client(settings)
    if client is None:
        click.echo(f"{owner} was not told: {why}.", err=True)
        sys.exit(EXIT_PARTIAL)
    try:
        tell_gap_owner(client, detail, _who(user))
    except (SlackApiError, OSError) as exc:
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        click.echo(f"{owner} was not told: Slack said {reason}.", err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo(f"{owner} was told by DM.")


@gaps.command("close")
@click.argument("gap_id", type=int)
@click.option("--note", default=None, help="Why, for the history.")
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--user", default=None, help="Who closes it, for the history (default: cli:your login name).")
@click.pass_context
def gaps_close(ctx: click.Context, gap_id: int, note: str | None, team: str | None, user: str | None) -> None:
    """Close gap GAP_ID (its content is there now, or will not be)."""
    detail = _store(ctx).close(_team(ctx, team), gap_id, _who(user), note)
    click.echo(f"Gap #{gap_id} “{detail.gap.label}” is closed.")


@gaps.command("reopen")
@click.argument("gap_id", type=int)
@click.option("--note", default=None, help="Why, for the history.")
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--user", default=None, help="Who reopens it, for the history (default: cli:your login name).")
@click.pass_context
def gaps_reopen(ctx: click.Context, gap_id: int, note: str | None, team: str | None, user: str | None) -> None:
    """Open closed gap GAP_ID again."""
    detail = _store(ctx).reopen(_team(ctx, team), gap_id, _who(user), note)
    click.echo(f"Gap #{gap_id} “{detail.gap.label}” is {detail.gap.status} again.")


@gaps.command("refresh")
@click.option("--team", default=None, help=TEAM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def gaps_refresh(ctx: click.Context, team: str | None, as_json: bool) -> None:
    """Cluster the questions not in a gap yet now (the worker does it every few minutes), and re-ask the gaps'
    questions when the content changed since they were last asked."""
    settings = settings_of(ctx)
    require_database(settings)
    require_index(settings)
    made, checked = service_for(settings).gaps.update(_team(ctx, team))
    if as_json:
        click.echo(json.dumps({"refresh": vars(made), "recheck": vars(checked) if checked else None}, indent=2))
        return
    click.echo(
        f"{made.new_questions} new questions: {made.joined} joined a gap, the rest made {made.new_gaps} new gaps"
        + (f"; {len(made.reopened)} closed gaps opened again" if made.reopened else "")
        + (f"; {made.waiting} wait for the next refresh" if made.waiting else "")
        + f" ({made.seconds:.1f} s)."
    )
    if checked:
        click.echo(
            f"Re-asked {checked.questions} questions of {checked.gaps} gaps against the new index; "
            f"{len(checked.closed)} gaps closed, all their questions answered now."
        )
