"""What every `moment` command shares: the top-level group, exit statuses, the settings, and the checks that
stop a command before it loads a model (no folder, no index, an unknown tag, no database)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from assistant.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_STATUSES, debug_requested, explain
from assistant.settings import Settings, load_settings

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "main"]  # exit statuses: assistant.errors (README, docs)

EPILOG = "\b\nExit statuses:\n" + "\n".join(f"  {code:<3} {meaning}" for code, meaning in EXIT_STATUSES.items())


class Failed(click.ClickException):
    """An error that reached the command line's boundary (`assistant.errors`): one line, its exit status, and
    the traceback before it with --debug."""

    def __init__(self, exc: Exception, debug: bool) -> None:
        line, self.exit_code = explain(exc)
        super().__init__(line)
        self.original, self.debug = exc, debug

    def show(self, file=None) -> None:
        if self.debug:
            import traceback

            traceback.print_exception(self.original, file=file or sys.stderr)
        super().show(file)


def one_line_usage(exc: click.UsageError) -> click.UsageError:
    """A mistake in the command line as one line (click's own adds the usage and a hint on lines of their
    own), with exit status 1 (click's is 2, which Moment keeps for "done in part")."""
    where = exc.ctx.command_path if exc.ctx else "moment"
    one = click.UsageError(f"{exc.format_message()} (`{where} --help` shows the usage.)")
    one.exit_code = EXIT_ERROR
    return one


class MomentGroup(click.Group):
    """The `moment` group, and the command line's one error boundary: a mistyped command or option exits 1
    in one line, like every other mistake (click's own is 2, which Moment keeps for "done in part"); any
    other error is one line and the exit status `assistant.errors.explain` gives it."""

    group_class = type  # groups made with `main.group()` are of this kind too

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise one_line_usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise one_line_usage(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # the one boundary: one line and a documented exit status
            raise Failed(exc, bool(ctx.find_root().params.get("debug")) or debug_requested()) from None


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
    from indexer.store import IndexStore

    IndexStore(index_dir or settings.index_dir).open(search=False).close()  # IndexMissingError: exit status 4


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
    database = Database.from_settings(settings)
    database.upgrade(settings.default_team_id)
    return database


def service_for(settings: Settings):
    """The service of these settings (a model or calibration that cannot be loaded: the boundary says so)."""
    from assistant.service import MomentService

    return MomentService.from_settings(settings)


@click.group(cls=MomentGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("--home", type=click.Path(path_type=Path), help="Data folder (default .moment, or $MOMENT_HOME).")
@click.option("--debug", is_flag=True, envvar="MOMENT_DEBUG", help="Show the traceback of an error (MOMENT_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, home: Path | None, debug: bool) -> None:
    """Moment: answers from curated content, in Slack, and a vetted mentor when content is not enough."""
    ctx.ensure_object(dict)
    ctx.obj["settings"] = load_settings(home=home)  # invalid settings: one line naming the variable
