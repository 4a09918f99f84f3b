"""`moment ask`: a question answered as Slack would answer it, in text or JSON."""

from __future__ import annotations

import json
import sys

import click

from assistant.cli.common import (
    require_index,
    require_known_tags,
    service_for,
    settings_of,
)
from assistant.errors import explain
from assistant.settings import Settings
from indexer.documents import CONTENT_TYPES


def _viewer(service, settings: Settings, as_user: str | None, team: str | None):
    """Whose eyes `moment ask` answers with: `--as` someone (their cached groups, read from Slack when stale
    and a bot token is set), else anyone's (content for everyone only)."""
    from assistant.access.audiences import Viewer

    if not as_user:
        return Viewer.public()
    if not service.access.audience_names():
        return Viewer(as_user)  # nothing is restricted: their groups do not matter
    if settings.slack_bot_token is not None:
        from assistant.slack.outbound import web_client
        from assistant.slack.usergroups import SlackUserGroups

        service.access.group_source = SlackUserGroups(
            web_client(settings),
            service.access.groups,
            service.access.audience_names,
            default_team=settings.default_team_id,
        )
    return service.access.viewer_for(as_user, service.workspaces.team(team))


@click.command("ask")
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: answered, confidence, sources, ...")
@click.option(
    "--type", "types", multiple=True, type=click.Choice(CONTENT_TYPES, case_sensitive=False), help="Only this type."
)
@click.option("--tag", "tags", multiple=True, help="Only content with this tag.")
@click.option(
    "--user", default=None, help="Who is asking, for the log (default: the --as user, else cli:your login name)."
)
@click.option(
    "--as",
    "as_user",
    default=None,
    metavar="USER_ID",
    help="Answer as this Slack user would see it (their user groups, from the cache; read from Slack when it is "
    "stale and SLACK_BOT_TOKEN is set). Without it: content for everyone only.",
)
@click.option("--team", default=None, metavar="TEAM_ID", help="With --as: their workspace (default: the only one).")
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    as_json: bool,
    types: tuple,
    tags: tuple,
    user: str | None,
    as_user: str | None,
    team: str | None,
) -> None:
    """Answer QUESTION from the indexed content (reads standard input when QUESTION is '-').

    The question is searched as typed (Slack's markup is Slack's: `<@U123>` or `:emoji:` here are words).
    Content restricted to some Slack user groups (`audience:`) is searched only with `--as` a member.
    """
    import getpass

    from assistant.answering.retrieval import IndexMismatchError
    from assistant.records.interactions import Asker
    from indexer.store import IndexMissingError

    if question == "-":
        question = sys.stdin.read()
    settings = settings_of(ctx)
    require_index(settings)
    require_known_tags(settings, tags)
    service = service_for(settings)
    # `--as` someone asks as them: the question counts as theirs (course suggestions, the log)
    asker = Asker(user_id=user or as_user or f"cli:{getpass.getuser()}", surface="cli", team_id=team)
    viewer = _viewer(service, settings, as_user, team)
    try:
        answer = service.asking.ask(question, asker, types=list(types) or None, tags=list(tags) or None, viewer=viewer)
    except (IndexMissingError, IndexMismatchError) as exc:
        if as_json:
            line, status = explain(exc)
            click.echo(json.dumps({"error": line, "answered": False}))
            sys.exit(status)
        raise
    if as_json:
        data = answer.to_dict()
        if as_user:
            data["as"] = {
                "user_id": as_user,
                "groups": sorted(viewer.groups),
                "groups_known": viewer.known,
                "why_unknown": viewer.why_unknown,
            }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        from assistant.cli.render_text import render_answer

        if as_user:
            if viewer.known:
                groups = ", ".join(sorted(g for g in viewer.groups if not g.startswith("S"))) or "none"
                click.echo(f"As {as_user} would see it (user groups: {groups}).\n")
            else:
                click.echo(f"As {as_user} would see it, without restricted content: {viewer.why_unknown}.\n", err=False)
        click.echo(render_answer(answer))
