"""Not helpful votes' demotions from the shell: `moment demotions list` and `moment demotions remove`."""

from __future__ import annotations

import json

import click

from assistant.cli.common import MomentGroup, service_for, settings_of
from assistant.cli.verified import who


@click.group(cls=MomentGroup)
def demotions() -> None:
    """Sections a Not helpful vote keeps from the questions close to the one voted on."""


@demotions.command("list")
@click.option("--team", default=None, help="Workspace (default: every workspace).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def demotions_list(ctx: click.Context, team: str | None, as_json: bool) -> None:
    """Every standing demotion: the question voted on, the section it keeps from that question (and those close
    to it), who voted and when. Helpful votes from more people on the same section outweigh it when answering."""
    service = service_for(settings_of(ctx))
    rows = [
        {
            "id": row.id,
            "team_id": row.team_id,
            "question": row.question,
            "path": row.path,
            "heading_path": list(row.heading_path),
            "voted_by": row.user_id,
            "interaction_id": row.interaction_id,
            "at": row.created_at.isoformat(),
        }
        for row in service.asking.demotions_of(team)
    ]
    if as_json:
        click.echo(json.dumps({"demotions": rows}, indent=2))
        return
    if not rows:
        click.echo("No demotions: no standing Not helpful vote keeps a section from a question.")
    for r in rows:
        where = " › ".join([r["path"], *r["heading_path"]])
        click.echo(f"#{r['id']} “{r['question']}” -/-> {where} (Not helpful: {r['voted_by']}, {r['at'][:10]})")


@demotions.command("remove")
@click.argument("demotion_id", type=int)
@click.option("--team", default=None, help="Workspace (default: MOMENT_DEFAULT_TEAM_ID).")
@click.option("--user", default=None, help="Who removes it, for the log (default: cli:your login name).")
@click.pass_context
def demotions_remove(ctx: click.Context, demotion_id: int, team: str | None, user: str | None) -> None:
    """Lift demotion DEMOTION_ID: its section may answer its question again (the vote itself stays)."""
    service = service_for(settings_of(ctx))
    row = service.asking.lift_demotion(demotion_id, who(user), team_id=team)
    if row is None:
        raise click.ClickException(f"No demotion #{demotion_id} (see `moment demotions list`).")
    click.echo(f"Removed demotion #{demotion_id}: “{row.question}” may be answered from its section again.")
