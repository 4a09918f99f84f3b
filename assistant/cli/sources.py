"""`moment source …`: add, list, show, sync and remove content sources (see assistant/sources)."""

from __future__ import annotations

import json
import sys

import click
import yaml

from assistant.sources import describe, when
from indexer.connectors import KINDS, SourceError


def _sources(ctx: click.Context, *, embedder: bool = False):
    """The deployment's sources, over its database and index (the model is loaded only to build)."""
    from assistant.db.database import Database
    from assistant.operations import IndexOperations
    from assistant.sources import Sources
    from assistant.sources.people import PeopleDirectory
    from indexer.store import IndexStore

    settings = ctx.obj["settings"]
    database = Database(settings.database_url)
    database.upgrade(settings.default_team_id)
    model = None
    if embedder:
        from indexer.embedding import ModelError, load_embedder

        try:
            model = load_embedder(
                settings.embedding_model, settings.embedding_backend, settings.model_cache, settings.embedding_threads
            )
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
    operations = IndexOperations(settings, database, IndexStore(settings.index_dir, keep=settings.index_keep), model)
    client = None
    if settings.slack_bot_token is not None:
        from assistant.slack.outbound import web_client

        client = web_client(settings)
    return Sources(operations, PeopleDirectory(database, client, settings.default_team_id))


@click.group("source")
def source() -> None:
    """Content sources that stay in sync: the content folder, other folders, intranet sites, Confluence,
    SharePoint and OneDrive (Microsoft Graph), Google Drive."""


@source.command("add")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.argument("target")
@click.option("--prefix", help="web: the URL prefix to stay under (default: the start address's folder).")
@click.option("--sitemap", help="web: a sitemap (or sitemap index) listing the pages.")
@click.option("--max-pages", type=int, help="web: read at most this many pages (default 1000).")
@click.option("--rate", type=float, help="web: at most this many requests a second (default 2).")
@click.option("--schedule", "schedule_minutes", type=int, default=60, help="Sync every N minutes (0: on request).")
@click.option("--prune-hours", type=int, default=24, help="Run the prune pass every N hours (0: never).")
@click.option("--workspace", "team_id", help="The Slack workspace (team id) the source belongs to.")
@click.option("--option", "extra", multiple=True, metavar="KEY=VALUE", help="Any other option of the kind.")
@click.pass_context
def source_add(
    ctx, kind, name, target, prefix, sitemap, max_pages, rate, schedule_minutes, prune_hours, team_id, extra
):
    """Add a source KIND called NAME reading TARGET (a folder, a web address, a Confluence wiki, a SharePoint
    site, drive:ID or onedrive:PERSON, a Drive folder). Credentials are never options: name an environment
    variable or a secrets file instead. For example:

    \b
      moment source add sharepoint hr https://contoso.sharepoint.com/sites/hr --option tenant=TENANT-ID \\
        --option client_id=APP-ID --option client_secret_env=GRAPH_SECRET [--option folder="Job aids"]
      moment source add gdrive ld https://drive.google.com/drive/folders/FOLDER-ID \\
        --option service_account_file=/etc/moment/drive-key.json
    """
    options: dict = {}
    for pair in extra:
        if "=" not in pair:
            raise click.ClickException(f"--option {pair}: write it as KEY=VALUE.")
        key, value = pair.split("=", 1)
        options[key.strip()] = yaml.safe_load(value)
    for key, value in (("prefix", prefix), ("sitemap", sitemap), ("max_pages", max_pages), ("rate", rate)):
        if value is not None:
            options[key] = value
    try:
        view = _sources(ctx).add(
            kind,
            name,
            target,
            options=options,
            schedule_minutes=schedule_minutes,
            prune_hours=prune_hours,
            team_id=team_id,
            by="cli",
        )
    except (SourceError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added {view.kind} source {view.name} ({view.target}).")
    click.echo(f"Sync it now with `moment source sync {view.name}`, or let the worker do it.")


@source.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for other tools).")
@click.pass_context
def source_list(ctx, as_json):
    """Every source with its last sync."""
    views = _sources(ctx).list()
    if as_json:
        click.echo(json.dumps({"sources": [v.to_dict() for v in views]}, indent=2, default=str))
        return
    for v in views:
        state = "syncing" if v.running else (v.last_status or "never synced")
        failed = len(v.last_failures or [])
        click.echo(
            f"{v.name:16} {v.kind:8} {v.items:6} items  {state:12} last {when(v.last_finished_at)}"
            f"{f'  {failed} failed' if failed else ''}  {v.target}"
        )


@source.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for other tools).")
@click.pass_context
def source_show(ctx, name, as_json):
    """One source: settings, last sync (items, changes, failures with reasons) and next run."""
    try:
        view = _sources(ctx).show(name)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(view.to_dict(), indent=2, default=str))
    else:
        click.echo("\n".join(describe(view)))


@source.command("sync")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for other tools).")
@click.pass_context
def source_sync(ctx, name, as_json):
    """Sync NAME now: fetch what changed at the source, then build the index (only changes are embedded).

    Exit status: 0 when every item synced, 2 when some items failed (listed with reasons), 1 when the
    source could not be read (its last good items keep answering)."""
    sources = _sources(ctx, embedder=True)
    bar = None
    if not as_json:
        from tqdm import tqdm

        bar = tqdm(unit="item", desc=f"Syncing {name}", file=sys.stderr, disable=None)
    try:
        result = sources.sync(name, on_change=(lambda change: bar.update(1)) if bar is not None else None)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted: nothing half-written is served; the last good items keep answering.", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(
            f"{name}: {result.status}; added {result.added}, changed {result.changed}, deleted {result.deleted}, "
            f"{len(result.failures)} failed; {result.items} items ({result.seconds:.1f} s)."
        )
        if result.published:
            click.echo(f"  published index version {result.index_version}")
        for note in result.notes:
            click.secho(f"  note: {note}", fg="yellow")
        if result.error:
            click.secho(f"  {result.error}", fg="red")
        for failure in result.failures[:20]:
            click.echo(f"  {failure['id']}\n      {failure['reason']}")
    if result.status == "failed":
        sys.exit(1)
    sys.exit(2 if result.failures else 0)


@source.command("remove")
@click.argument("name")
@click.pass_context
def source_remove(ctx, name):
    """Remove NAME and its items (they stop answering now: the index is built without them)."""
    sources = _sources(ctx, embedder=True)
    try:
        sources.remove(name)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Removed {name}; its items no longer answer.")
