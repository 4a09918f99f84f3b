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
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from assistant.settings import DEFAULT_TEAM

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 7_263_668  # pg_advisory_xact_lock key: one migrating process at a time
# Errors that mean "the database cannot serve us now" (down, unreachable, schema missing), as opposed to
# integrity errors, which callers handle (e.g. a Slack event id already claimed).
UNAVAILABLE = (OperationalError, InterfaceError, ProgrammingError, PoolTimeoutError)
CONNECT_TIMEOUT = 5  # seconds to connect to PostgreSQL
POOL_TIMEOUT = 10.0  # seconds to wait for a pooled connection


class DatabaseUnavailableError(Exception):
    """The database cannot be reached; the message is safe to show (no credentials)."""


class Database:
    """One database: engine, session factory, migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path.startswith("file:"):  # a URI (`?mode=ro&uri=true`): the file, without scheme and options
                path = path[len("file:") :].split("?", 1)[0]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # Bounded: a connection is made within CONNECT_TIMEOUT (unless the URL says otherwise) and a
            # request waits at most POOL_TIMEOUT for one, so a hung server fails requests instead of holding them.
            connect_args = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                pool_timeout=POOL_TIMEOUT,
                connect_args=connect_args,
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

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
            raise DatabaseUnavailableError(f"The database is unavailable ({_safe(exc)}).") from exc
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
            raise DatabaseUnavailableError(f"The database is unavailable ({_safe(exc)}).") from exc

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
            raise DatabaseUnavailableError(f"The database is unavailable ({_safe(exc)}).") from exc

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
            raise DatabaseUnavailableError(f"The database is unavailable ({_safe(exc)}).") from exc

    def check_writable(self) -> None:
        """Raise `DatabaseUnavailableError` unless the database takes a write: an UPDATE that changes nothing,
        rolled back (a read-only SQLite file or URI, a PostgreSQL replica or read-only transaction refuse it)."""
        try:
            with self.engine.connect() as connection:
                if self.dialect == "sqlite":  # a writer holding the lock: wait a moment, not 30 s
                    connection.exec_driver_sql("PRAGMA busy_timeout=1000")
                try:
                    connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                finally:
                    connection.rollback()
                    if self.dialect == "sqlite":
                        connection.exec_driver_sql("PRAGMA busy_timeout=30000")
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(f"The database does not take writes ({_safe(exc)}).") from exc

    def dispose(self) -> None:
        self.engine.dispose()


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

    from sqlalchemy.engine import make_url

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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _safe(exc: Exception) -> str:
    """An error's first line without the URL or parameters (which may carry credentials)."""
    message = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]
