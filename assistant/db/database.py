"""The engine, sessions and schema upgrades for one database URL.

SQLite (the default, a file under MOMENT_HOME) is set up for several processes: WAL journal, a busy
timeout, foreign keys on. PostgreSQL is used as it is. The schema is owned by Alembic; `upgrade()`
brings any database to the latest revision and is safe to call at every start.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from assistant.errors import EXIT_DATABASE, ConfigurationError, MomentError
from assistant.settings import DEFAULT_TEAM

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 7_263_668  # pg_advisory_xact_lock key: one migrating process at a time
# Errors that mean "the database cannot serve us now" (down, unreachable, schema missing, no connection free
# in the pool within MOMENT_DB_POOL_TIMEOUT), as opposed to integrity errors, which callers handle (e.g. a
# Slack event id already claimed).
UNAVAILABLE = (OperationalError, InterfaceError, ProgrammingError, PoolTimeoutError)


class DatabaseUnavailableError(MomentError):
    """The database cannot be reached; the message is safe to show (no credentials)."""

    exit_code = EXIT_DATABASE


# Bounds on what one process may hold and wait for (MOMENT_DB_* settings): a database that stops answering
# fails requests within these times instead of piling up threads behind it.
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
SUPPORTED = ("postgresql", "sqlite")


class Database:
    """One database: engine, session factory, migrations."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        pool_timeout: float = POOL_TIMEOUT_S,
        statement_timeout: float = STATEMENT_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        """`url`: a SQLAlchemy URL of PostgreSQL or SQLite (`postgres://` and `postgresql://` mean psycopg 3).
        A statement runs at most `statement_timeout` seconds on PostgreSQL; on SQLite a write waits that long
        for another process's lock. Raises `ConfigurationError` for a URL Moment cannot use."""
        parsed = database_url(url)
        self.url = parsed.render_as_string(hide_password=False)
        pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
        try:
            if parsed.get_backend_name() == "sqlite":
                path = parsed.database or ""
                if path.startswith("file:"):  # a URI (`?mode=ro&uri=true`): the file, without scheme and options
                    path = path[len("file:") :].split("?", 1)[0]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    self.engine: Engine = create_engine(parsed, connect_args={"timeout": statement_timeout}, **pool)
                else:
                    self.engine = create_engine(parsed, connect_args={"timeout": statement_timeout})
                self._busy_ms = int(statement_timeout * 1000)
                event.listen(self.engine, "connect", self._sqlite_pragmas)
            else:
                options = parsed.query.get("options", "")
                options = " ".join(options) if isinstance(options, tuple) else options
                options = f"{options} -c statement_timeout={int(statement_timeout * 1000)}".strip()
                connect_args = {"options": options}
                if "connect_timeout" not in parsed.query:  # the URL's own wins
                    connect_args["connect_timeout"] = max(1, round(connect_timeout))
                self.engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **pool)
        except (NoSuchModuleError, ImportError) as exc:
            raise ConfigurationError(
                f"DATABASE_URL asks for the driver '{parsed.drivername}', which is not installed ({exc}): use "
                "postgresql+psycopg://user:password@host:5432/database."
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings) -> Database:
        """The deployment's database (DATABASE_URL or the SQLite file under MOMENT_HOME) with its MOMENT_DB_*
        bounds."""
        return cls(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            statement_timeout=settings.db_statement_timeout,
            connect_timeout=settings.db_connect_timeout,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def fingerprint(self) -> str:
        """Which database this is, without its credentials: what is kept on local disk for it (spooled
        records, claims) is written back into this database only (`fingerprint_of`)."""
        return fingerprint_of(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except UNAVAILABLE as exc:
            session.rollback()
            raise self._unavailable(exc) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def read(self, statement, params: dict | None = None) -> list:
        """The rows of one read-only statement, on a pooled connection without an ORM session (for reads on
        every question, where a session's bookkeeping is most of the cost)."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(statement, params or {}).all()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def upgrade(self, default_team_id: str = DEFAULT_TEAM) -> None:
        """Apply every pending migration (a no-op when the schema is current). Safe when several
        processes start together: PostgreSQL migrates under an advisory lock held for the transaction,
        SQLite under a file lock beside the database file. Records from before workspaces were told apart
        become `default_team_id`'s (MOMENT_DEFAULT_TEAM_ID)."""
        if self.is_current():
            return  # the common case, without importing alembic (a tenth of a second of every cold `moment ask`)
        from alembic import command

        try:
            with self._migration_lock(), self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                config = _alembic_config(self.url)
                config.attributes["connection"] = connection
                config.attributes["default_team_id"] = default_team_id
                command.upgrade(config, "head")
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        except OSError as exc:  # the lock file beside a SQLite database in a folder this user cannot write
            if exc.filename is None:
                raise
            raise DatabaseUnavailableError(
                f"The database cannot be migrated: {exc.strerror} ({exc.filename}). Give this user write access to "
                "the data folder (MOMENT_HOME), or run `moment` once as a user who has it."
            ) from exc

    def is_current(self) -> bool:
        """Whether the schema is at the newest migration (False when unsure: then `upgrade` asks alembic)."""
        head = head_revision()
        if head is None:
            return False
        try:
            with self.engine.connect() as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except SQLAlchemyError:
            return False  # no version table yet, or no database: alembic says which
        return versions == [head]

    def _migration_lock(self):
        from contextlib import nullcontext

        path = self.url.split("///", 1)[-1] if self.dialect == "sqlite" else ""
        if not path or path == ":memory:":
            return nullcontext()
        from filelock import FileLock

        return FileLock(path + ".migrate.lock", timeout=120)

    def ping(self) -> None:
        """Raise `DatabaseUnavailableError` unless a trivial query succeeds."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def check_writable(self) -> None:
        """Raise `DatabaseUnavailableError` unless the database takes a write: an UPDATE that changes nothing,
        rolled back (a read-only SQLite file or URI, a PostgreSQL replica or read-only transaction refuse it)."""
        try:
            with self.engine.connect() as connection:
                if self.dialect == "sqlite":  # a writer holding the lock: wait a moment, not the whole timeout
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={min(1000, self._busy_ms)}")
                try:
                    connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                finally:
                    connection.rollback()
                    if self.dialect == "sqlite":
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={self._busy_ms}")
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(f"The database does not take writes ({_safe(exc)}).") from exc

    def dispose(self) -> None:
        self.engine.dispose()

    def _unavailable(self, exc: Exception) -> DatabaseUnavailableError:
        """The error to raise for a database that cannot serve us, with what to do about it."""
        reason = _safe(exc)
        if self.dialect == "sqlite":
            hint = "Check that this user can write the database file and its folder (MOMENT_HOME or DATABASE_URL)."
        else:
            hint = "Check that PostgreSQL is running and reachable, and that DATABASE_URL names an existing database."
        return DatabaseUnavailableError(f"The database is unavailable ({reason}). {hint}")

    def _sqlite_pragmas(self, dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # WAL is kept in the file once set: setting it again on every connection would fail where the
            # database may only be read.
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        finally:
            cursor.close()


_REVISES = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:[\"']([^\"']+)[\"']|None)", re.M)


def head_revision() -> str | None:
    """The newest migration's id, read from the migration files as text (the one no other revises); None
    unless there is exactly one."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISES.findall(path.read_text(encoding="utf-8")):
            if value:
                (revisions if kind == "revision" else revised).add(value)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def fingerprint_of(url: str) -> str:
    """16 hex digits naming a database: its URL without password (driver, user, host, port, database, options
    such as the PostgreSQL schema), hashed. `postgresql+psycopg://` and `postgresql://` are one database."""
    import hashlib

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        name = f"sqlite:{Path(path).resolve() if path and path != ':memory:' else path}"
    else:
        query = "&".join(f"{k}={v}" for k, v in sorted(parsed.query.items()) if k not in ("connect_timeout",))
        where = f"{parsed.username or ''}@{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}"
        name = f"{backend}://{where}?{query}"
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def database_url(url: str) -> URL:
    """The URL of a database Moment can run on, or `ConfigurationError` saying what is wrong (never echoing a
    password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        scheme = url.split(":", 1)[0] if "://" in url else "no scheme"
        raise ConfigurationError(
            f"DATABASE_URL is not a database URL ({scheme}): give postgresql+psycopg://user:password@host:5432/"
            "database, or sqlite:////absolute/path/moment.db (or leave it unset for the SQLite file under "
            "MOMENT_HOME)."
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver Moment installs (psycopg 3)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise ConfigurationError(
            f"DATABASE_URL is a {backend} database: Moment runs on PostgreSQL (postgresql+psycopg://…) or SQLite "
            "(sqlite:///…)."
        )
    if backend == "postgresql" and not parsed.database:
        raise ConfigurationError(
            "DATABASE_URL names no database: end it with /DATABASE (e.g. postgresql+psycopg://user@host:5432/moment)."
        )
    return parsed


def _safe(exc: Exception) -> str:
    """An error's first line without the URL or parameters (which may carry credentials)."""
    message = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]
