"""What every `moment` command shares: the top-level group, exit statuses, the settings, and the checks that
stop a command before it loads a model (no folder, no index, an unknown tag, no database)."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.settings import Settings, load_settings

# Exit statuses shared by every command (README, "Commands").
EXIT_OK = 0
EXIT_ERROR = 1  # an error, or a mistake in the command line: the message says which
EXIT_PARTIAL = 2  # `moment index`: published, but some files failed; `moment xapi flush`: some deferred


class MomentGroup(click.Group):
    """The `moment` group: a mistyped command or option exits 1 with click's message, like every other
    mistake, so that exit status 2 keeps its documented meaning (click's own is 2)."""

    group_class = type  # groups made with `main.group()` are of this kind too

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR
            raise

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR
            raise


def settings_of(ctx: click.Context) -> Settings:
    """The settings `main` read for this invocation."""
    return ctx.obj["settings"]


def require_folder(path: Path, option: str) -> None:
    """A content folder that does not exist stops the command before the model is loaded (loading it
    into a fresh data folder takes seconds and writes there)."""
    if not path.is_dir():
        raise click.ClickException(
            f"The content folder {path} does not exist. Run Moment in the folder it was set up in, or give {option}."
        )


def require_index(settings: Settings, index_dir: Path | None = None) -> None:
    """Stop before the model is loaded when there is no index to answer from."""
    from indexer.store import IndexMissingError, IndexStore

    try:
        IndexStore(index_dir or settings.index_dir).open(search=False).close()
    except IndexMissingError as exc:
        raise click.ClickException(str(exc)) from None


def require_known_tags(settings: Settings, tags: tuple[str, ...]) -> None:
    """A tag no indexed content carries would silently filter every answer out: refuse it by name."""
    from indexer.store import IndexStore

    if not tags:
        return
    version = IndexStore(settings.index_dir).open(search=False)
    try:
        known = sorted({tag for document in version.documents for tag in document.meta.tags})
    finally:
        version.close()
    unknown = [tag for tag in tags if tag.lower() not in known]
    if unknown:
        raise click.ClickException(
            f"No content is tagged {', '.join(repr(t) for t in unknown)}. Tags in the index: {', '.join(known)}."
        )


def require_database(settings: Settings):
    """The interaction database, migrated; a SQLite file that does not exist yet is an error here (a
    wrong working directory, or a data folder nothing was asked in), not a new empty database."""
    from assistant.db.database import Database

    url = settings.database_url
    if url == f"sqlite:///{(settings.home / 'moment.db').as_posix()}" and not (settings.home / "moment.db").is_file():
        raise click.ClickException(
            f"No interaction database in {settings.home}: nothing has been asked with this data folder. Run Moment "
            "in the folder it runs in, or set MOMENT_HOME (or DATABASE_URL)."
        )
    database = Database(url)
    database.upgrade(settings.default_team_id)
    return database


def service_for(settings: Settings):
    """The service of these settings; a model or calibration that cannot be loaded stops the command with
    its message."""
    from assistant.answering.generation import LLMConfigError
    from assistant.answering.retrieval import CalibrationError
    from assistant.service import MomentService
    from indexer.embedding import ModelError

    try:
        return MomentService.from_settings(settings)
    except (ModelError, CalibrationError, LLMConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=MomentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), help="Data folder (default .moment, or $MOMENT_HOME).")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """Moment: answers from curated content, in Slack, and a vetted mentor when content is not enough."""
    ctx.ensure_object(dict)
    try:
        ctx.obj["settings"] = load_settings(home=home)
    except Exception as exc:  # pydantic's validation message names the variable
        raise click.ClickException(f"Invalid configuration: {exc}") from None
