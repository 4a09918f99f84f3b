"""One error boundary for the command line and the server's start-up.

An operator's mistake or a missing service (PostgreSQL down, a wrong DATABASE_URL, no index, a wrong Slack
token, a read-only data folder) ends in one line that says what went wrong and what to do, and in an exit
status a script can act on; the traceback only with `--debug` (or MOMENT_DEBUG=1). Anything else is an
internal error (70), with the traceback under `--debug` too.

    from assistant.errors import explain
    line, status = explain(exc)      # ("The database is unavailable (...). Start it, or ...", 3)

The exit statuses (`moment --help` and docs/deploying.md list them):
"""

from __future__ import annotations

import os
import sys
import traceback

EXIT_OK = 0
EXIT_ERROR = 1  # a mistake in the command line, the configuration or the input: the message says which
EXIT_PARTIAL = 2  # done in part: `moment index` published without some files, `xapi flush` deferred some
EXIT_DATABASE = 3  # the database is unavailable (down, unreachable, missing, read-only)
EXIT_MISSING = 4  # no index, or the embedding model is not installed / cannot be loaded
EXIT_SLACK = 5  # Slack refused the token or could not be reached
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_INTERNAL = 70  # a bug: run again with --debug and report the traceback

EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_ERROR: "a mistake in the command, the configuration or the input (the message says which)",
    EXIT_PARTIAL: "done in part (moment index: published without the files listed; xapi flush: some deferred)",
    EXIT_DATABASE: "the database is unavailable (down, unreachable, no such database, not writable)",
    EXIT_MISSING: "no index, or the embedding model is not installed",
    EXIT_SLACK: "Slack refused the token or could not be reached",
    EXIT_INTERNAL: "an internal error (run again with --debug and report the traceback)",
}


class MomentError(Exception):
    """An error whose message is one line saying what went wrong and what to do, with its exit status. The
    core's own errors that reach the boundary derive from it (`DatabaseUnavailableError`, `SlackConfigError`),
    so that this module imports none of the modules that raise them."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigurationError(MomentError):
    """A setting has a value Moment cannot use (the message names the variable)."""


class SlackUnavailableError(MomentError):
    """Slack refused the bot token or could not be reached at start-up (the message names SLACK_BOT_TOKEN or
    SLACK_API_URL)."""

    exit_code = EXIT_SLACK


def debug_requested() -> bool:
    """MOMENT_DEBUG=1 (or true/yes/on): show tracebacks."""
    return os.environ.get("MOMENT_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def explain(exc: BaseException) -> tuple[str, int]:
    """One line (what went wrong, what to do) and the exit status for an error that reached the boundary."""
    from pydantic import ValidationError

    from assistant.answering.generation import LLMConfigError
    from assistant.answering.retrieval import CalibrationError, IndexMismatchError
    from indexer.embedding import ModelError
    from indexer.store import IndexMissingError

    if isinstance(exc, MomentError):
        return _one_line(exc), exc.exit_code
    if isinstance(exc, (IndexMissingError, ModelError, IndexMismatchError)):
        return _one_line(exc), EXIT_MISSING
    if isinstance(exc, (CalibrationError, LLMConfigError)):
        return _one_line(exc), EXIT_ERROR
    if isinstance(exc, ValidationError):
        return settings_problem(exc), EXIT_ERROR
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted.", EXIT_INTERRUPTED
    if isinstance(exc, OSError) and exc.filename is not None:
        return file_problem(exc), EXIT_ERROR
    return (
        f"Internal error: {type(exc).__name__}: {_one_line(exc)} Run again with --debug (or MOMENT_DEBUG=1) "
        "for the traceback, and report it.",
        EXIT_INTERNAL,
    )


def settings_problem(exc) -> str:
    """A pydantic validation error of the settings as one line naming each variable."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error.get("loc", ())) or "a setting"
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float)) and len(str(value)) < 80 else ""
        problems.append(f"{name}: {error.get('msg', 'invalid')}{shown}")
    return f"Invalid configuration: {'; '.join(problems)}. Fix it in the environment or .env."


def file_problem(exc: OSError) -> str:
    """A file or folder Moment could not read or write, and what to do."""
    what = exc.strerror or type(exc).__name__
    path = exc.filename
    if isinstance(exc, PermissionError) or exc.errno in (13, 30):  # EACCES, EROFS
        return (
            f"Cannot use {path}: {what}. Moment must be able to write its data folder (MOMENT_HOME, and "
            "MOMENT_MODEL_CACHE the first time): give this user write access, or point MOMENT_HOME at a "
            "folder it can write."
        )
    return f"Cannot use {path}: {what}."


def report(exc: BaseException, *, debug: bool, prog: str = "moment") -> int:
    """Print the traceback when debugging, then the one line, on standard error; return the exit status."""
    line, status = explain(exc)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{prog}: {line}", file=sys.stderr)
    return status


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:600] if text else type(exc).__name__
