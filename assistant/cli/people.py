"""People and workspaces outside Slack: `moment workspace` and `moment forget`."""

from __future__ import annotations

import click

from assistant.cli.common import (
    MomentGroup,
    require_database,
    service_for,
    settings_of,
)


@click.group(cls=MomentGroup)
def workspace() -> None:
    """The Slack workspaces Moment serves (OAuth installs), and their own content folders."""


@workspace.command("list")
@click.pass_context
def workspace_list(ctx: click.Context) -> None:
    """Every workspace: installed or not, its admins, its own content folder."""
    from assistant.access.tenancy import Workspaces, install_state

    settings = settings_of(ctx)
    for w in Workspaces(require_database(settings), settings.default_team_id).all():
        state = install_state(w, settings.default_team_id)
        org = f" (org {w.enterprise_id})" if w.enterprise_id else ""
        folder = w.content_folder or "the shared content"
        off = "; generated answers off" if w.generated_answers is False else ""
        click.echo(
            f"{w.team_id}{org} {w.name or ''}: {state}; admins {', '.join(w.admins) or '-'}; answers from {folder}{off}"
        )


@workspace.command("content")
@click.argument("team")
@click.argument("folder", required=False)
@click.pass_context
def workspace_content(ctx: click.Context, team: str, folder: str | None) -> None:
    """Answer workspace TEAM from FOLDER of the content only, and nobody else from it (no FOLDER: from the
    shared content again). Web processes follow within 30 seconds."""
    from assistant.access.tenancy import WorkspaceError, Workspaces, content_folder_of

    settings = settings_of(ctx)
    try:
        folder = content_folder_of(settings.content_dir, folder) if folder else None
        done = Workspaces(require_database(settings), settings.default_team_id).set_content_folder(team, folder)
    except WorkspaceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{team} is answered from {done.content_folder or 'the shared content'}.")


@workspace.command("generated")
@click.argument("team")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.pass_context
def workspace_generated(ctx: click.Context, team: str, state: str) -> None:
    """Show generated answers in workspace TEAM (where MOMENT_LLM_URL is set) or not. Web processes follow
    within 30 seconds."""
    from assistant.access.tenancy import Workspaces

    settings = settings_of(ctx)
    changed = Workspaces(require_database(settings), settings.default_team_id).set_generated_answers(
        team, state == "on"
    )
    note = "" if settings.llm_url else " (no MOMENT_LLM_URL is set here: nothing is generated until one is)"
    click.echo(f"{team}: generated answers {state}{'' if changed else ' already'}{note}.")


@click.command("forget")
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, user_id: str, yes: bool) -> None:
    """Delete a person's interactions (and their questions in content gaps), votes, mentor requests and course
    suggestions; void their xAPI records."""
    from assistant.records.reports import counted

    settings = settings_of(ctx)
    require_database(settings)
    if not yes:
        click.confirm(f"Delete everything Moment holds about {user_id}?", abort=True)
    service = service_for(settings)
    counts = service.retention.forget(user_id)
    gaps = counts["gaps_deleted"]
    click.echo(
        f"Deleted {counted(counts['interactions'], 'interaction')}, {counted(counts['votes'], 'vote')} and "
        f"{counted(counts['mentor_requests'], 'mentor request')} of {user_id} "
        f"(and {counted(counts['course_suggestions'], 'course suggestion')}); "
        f"{counted(counts['voided'], 'xAPI statement')} will be voided at the next delivery."
        + (f" {counted(gaps, 'content gap')} left without questions deleted." if gaps else "")
    )
    cli_user = f"cli:{user_id}"
    if not counts["interactions"] and ":" not in user_id and (held := service.records.interactions_of(cli_user)):
        click.echo(
            f"Questions asked from the command line are stored under cli:<login name>: {counted(held, 'interaction')} "
            f"of {cli_user}. To delete them too: moment forget {cli_user}"
        )
