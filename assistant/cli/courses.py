"""`moment courses`: the course catalogue (import from a file or an LMS, list it with its suggestions' figures)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from assistant.cli.common import EXIT_ERROR, EXIT_PARTIAL, MomentGroup, require_database, settings_of

LMS_KINDS = ("360learning",)
SHOWN_ERRORS = 20  # row errors printed as text (all of them with --json)


@click.group("courses", cls=MomentGroup)
def courses() -> None:
    """The course catalogue suggested after repeated questions on a topic (import, list)."""


@courses.command("import")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--lms", type=click.Choice(LMS_KINDS), help="Read the catalogue from this LMS instead of a file.")
@click.option(
    "--url", "lms_url", metavar="URL", help="With --lms: the platform's address (https://app.360learning.com)."
)
@click.option(
    "--token",
    envvar="MOMENT_LMS_TOKEN",
    help="With --lms: an API access token (or MOMENT_LMS_TOKEN; better than the command line, which others can see).",
)
@click.option("--client-id", envvar="MOMENT_LMS_CLIENT_ID", help="With --lms: API client id (MOMENT_LMS_CLIENT_ID).")
@click.option("--client-secret-env", default="MOMENT_LMS_CLIENT_SECRET", show_default=True, hidden=True)
@click.option("--team", help="The workspace (Slack team id) the catalogue is for (default: MOMENT_DEFAULT_TEAM_ID).")
@click.option("--no-embed", is_flag=True, help="Store the courses only; embed them later (`moment courses embed`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows, added, updated, errors, ...")
@click.pass_context
def import_command(
    ctx: click.Context,
    file: Path | None,
    lms: str | None,
    lms_url: str | None,
    token: str | None,
    client_id: str | None,
    client_secret_env: str,
    team: str | None,
    no_embed: bool,
    as_json: bool,
) -> None:
    """Import courses from FILE (CSV with a header row, or JSON: title, url, description, topics, duration,
    activity_id, audience) or from an LMS (--lms 360learning --url … with MOMENT_LMS_TOKEN, or
    MOMENT_LMS_CLIENT_ID and MOMENT_LMS_CLIENT_SECRET).

    Bad rows are listed (line and field) and left out; the others are stored. A course already in the catalogue
    (same activity id, or same URL) is updated, never added twice. Exit status 2 when some rows were left out.
    """
    from assistant import learning

    if (file is None) == (lms is None):
        raise click.UsageError("Give a catalogue FILE, or --lms with --url.")
    if lms and not lms_url:
        raise click.UsageError("--lms needs --url, the platform's address.")
    settings = settings_of(ctx)
    team_id = team or settings.default_team_id
    if file is not None and not file.is_file():
        raise click.ClickException(f"No catalogue file at {file}.")
    database = require_database(settings)
    embedder = None
    if not no_embed:
        from assistant.service import load_embedder_for

        embedder = load_embedder_for(settings)
    if file is not None:
        result = learning.import_file(database, file, team_id, embedder=embedder)
    else:
        client = learning.Learning360(
            lms_url, token=token, client_id=client_id, client_secret=os.environ.get(client_secret_env)
        )
        result = learning.import_lms(database, client, team_id, embedder=embedder)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(
            f"{result.rows} courses read: {result.added} added, {result.updated} updated, {result.unchanged} "
            f"unchanged; {len(result.errors)} rows left out." + (f" {result.embedded} embedded." if embedder else "")
        )
        for error in result.errors[:SHOWN_ERRORS]:
            click.echo(f"  {error}", err=True)
        if len(result.errors) > SHOWN_ERRORS:
            click.echo(f"  … and {len(result.errors) - SHOWN_ERRORS} more (--json lists them all)", err=True)
    if result.errors:
        sys.exit(EXIT_PARTIAL if result.rows else EXIT_ERROR)


@courses.command("embed")
@click.option("--team", help="Only this workspace's courses (default: every workspace's).")
@click.pass_context
def embed_command(ctx: click.Context, team: str | None) -> None:
    """Embed the courses not embedded yet (imported with --no-embed, or changed since)."""
    from assistant.learning import embed_pending
    from assistant.service import load_embedder_for

    settings = settings_of(ctx)
    database = require_database(settings)
    done = embed_pending(database, load_embedder_for(settings), team)
    click.echo(f"{done} courses embedded.")


@courses.command("list")
@click.option("--team", help="The workspace (default: MOMENT_DEFAULT_TEAM_ID).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: courses, and suggestions per course.")
@click.pass_context
def list_command(ctx: click.Context, team: str | None, as_json: bool) -> None:
    """The workspace's courses, and for each one suggested: how often, clicked, Not now, completed."""
    from assistant.learning import course_stats, list_courses

    settings = settings_of(ctx)
    team_id = team or settings.default_team_id
    database = require_database(settings)
    catalogue = list_courses(database, team_id)
    stats = {s.course_id: s for s in course_stats(database, team_id)}
    if as_json:
        rows = []
        for course in catalogue:
            row = course.to_dict()
            figures = stats.get(course.id)
            row["suggestions"] = figures.to_dict() if figures else None
            rows.append(row)
        click.echo(json.dumps({"team_id": team_id, "courses": rows}, indent=2, ensure_ascii=False))
        return
    if not catalogue:
        click.echo(f"No courses in the catalogue of {team_id}: `moment courses import FILE` adds them.")
        return
    for course in catalogue:
        duration = f", {course.duration_minutes} min" if course.duration_minutes else ""
        line = f"{course.title}{duration}  {course.url}"
        figures = stats.get(course.id)
        if figures:
            line += (
                f"\n    suggested {figures.suggested}, clicked {figures.clicked}, not now {figures.dismissed}, "
                f"completed {figures.completed}"
            )
        if not course.embedded:
            line += "\n    not embedded yet: `moment courses embed`"
        click.echo(line)
