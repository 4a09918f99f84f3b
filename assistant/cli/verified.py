"""Verified answers from the shell: `moment verify`, `moment verified list` and `moment verified remove`."""

from __future__ import annotations

import getpass
import json

import click

from assistant.cli.common import MomentGroup, require_index, service_for, settings_of


def who(user: str | None) -> str:
    return user or f"cli:{getpass.getuser()}"


@click.command("verify")
@click.argument("question")
@click.argument("path")
@click.option(
    "--heading",
    default=None,
    help="The section's heading (any level; 'A > B' for a path). "
    "None: the text before the first heading (a video's transcript).",
)
@click.option("--team", default=None, help="Workspace (default: MOMENT_DEFAULT_TEAM_ID).")
@click.option("--user", default=None, help="Who teaches it, for the log (default: cli:your login name).")
@click.pass_context
def verify(ctx: click.Context, question: str, path: str, heading: str | None, team: str | None, user: str | None):
    """Teach QUESTION (and its close paraphrases) to be answered from the section HEADING of item PATH
    (relative to the content folder). Teaching a question again replaces its section and re-confirms it."""
    from assistant.answering.verified import VerifyError

    settings = settings_of(ctx)
    require_index(settings)
    service = service_for(settings)
    try:
        pair = service.asking.teach(question, path, heading, who(user), team_id=team)
    except VerifyError as exc:
        raise click.ClickException(str(exc)) from None
    where = " › ".join([pair.path, *pair.heading_path])
    click.echo(f"Verified answer #{pair.id}: “{pair.question}” is answered from {where}.")


@click.group(cls=MomentGroup)
def verified() -> None:
    """Questions taught to be answered from one section (verified answers)."""


@verified.command("list")
@click.option("--team", default=None, help="Workspace (default: every workspace).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def verified_list(ctx: click.Context, team: str | None, as_json: bool) -> None:
    """Every taught question: its section, who taught it and when, and its state (verified; needs review:
    the section's text changed since; missing: the item or heading is gone)."""
    settings = settings_of(ctx)
    require_index(settings)
    service = service_for(settings)
    rows = []
    for pair, status, owner in service.asking.verified_pairs(team):
        rows.append(
            {
                "id": pair.id,
                "team_id": pair.team_id,
                "question": pair.question,
                "path": pair.path,
                "heading_path": list(pair.heading_path),
                "taught_by": pair.taught_by,
                "taught_at": pair.taught_at.isoformat(),
                "status": status,
                "owner": owner,  # who should review it when it changed
            }
        )
    if as_json:
        click.echo(json.dumps({"verified": rows}, indent=2))
        return
    if not rows:
        click.echo('No verified answers yet. Teach one: moment verify "QUESTION" PATH --heading "HEADING"')
    for r in rows:
        where = " › ".join([r["path"], *r["heading_path"]])
        owner = f"; owner {r['owner']}" if r["status"] != "verified" and r["owner"] else ""
        click.echo(
            f"#{r['id']} “{r['question']}” -> {where} ({r['status']}{owner}; {r['taught_by']}, {r['taught_at'][:10]})"
        )


@verified.command("remove")
@click.argument("pair_id", type=int)
@click.option("--team", default=None, help="Workspace (default: MOMENT_DEFAULT_TEAM_ID).")
@click.option("--user", default=None, help="Who removes it, for the log (default: cli:your login name).")
@click.pass_context
def verified_remove(ctx: click.Context, pair_id: int, team: str | None, user: str | None) -> None:
    """Forget verified answer PAIR_ID: its question is answered as before it was taught."""
    service = service_for(settings_of(ctx))
    pair = service.asking.forget_verified(pair_id, who(user), team_id=team)
    if pair is None:
        raise click.ClickException(f"No verified answer #{pair_id} (see `moment verified list`).")
    click.echo(f"Removed verified answer #{pair_id}: “{pair.question}”.")
