"""Operator mistakes and missing services end in one line and a documented exit status, never a traceback.

The real `moment` command in a subprocess, against real SQLite files, a real PostgreSQL (TEST_DATABASE_URL),
a closed port on 127.0.0.1, the real model and index. Where a failure is about permissions (a read-only
data folder, an unreadable content file, another user's model cache) and the tests run as root (whom
permissions do not stop), the command runs without the capabilities that let root pass them (CAP_DAC_OVERRIDE
and CAP_DAC_READ_SEARCH, dropped with setpriv): file modes then bind it as they bind a service account.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import PublishedIndex, Workspace
from assistant.errors import EXIT_INTERNAL, explain
from assistant.operations import IndexOperations
from assistant.settings import load_settings
from indexer.store import IndexStore
from tests.conftest import ContentFolder, fresh_database

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get("MOMENT_MODEL_CACHE", ROOT / ".moment" / "models"))
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/moment"
AS_ROOT = os.geteuid() == 0
NOBODY = pwd.getpwnam("nobody")


def _environment(**settings) -> dict[str, str]:
    own = ("MOMENT_", "DATABASE_URL", "SLACK_", "LRS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env["HF_HUB_OFFLINE"] = "1"
    env.update({k: str(v) for k, v in settings.items() if v is not None})
    for k in [k for k, v in settings.items() if v is None]:
        env.pop(k, None)
    return env


# Root without these is bound by file modes like any other user.
BOUND_BY_FILE_MODES = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]


def moment(*args, cwd: Path, timeout: float = 180, unprivileged: bool = False, **settings):
    """`moment ARGS` in `cwd` with only the given settings (None unsets a variable); `unprivileged`: bound by
    file modes even when the tests run as root."""
    prefix = BOUND_BY_FILE_MODES if unprivileged and AS_ROOT else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "assistant.cli", *map(str, args)],
        cwd=cwd,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    """The error output, which must be one line without a traceback."""
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def open_folder():
    """A folder every user may enter (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="moment-ops-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_cache(open_folder) -> Path:
    """A copy of the model cache every user may read."""
    cache = open_folder / "models"
    shutil.copytree(MODEL_CACHE, cache, ignore=shutil.ignore_patterns("*.lock"))
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return cache


def _small_content(root: Path) -> ContentFolder:
    content = ContentFolder(root)
    content.vpn_token_page()
    content.markdown("hr/mileage.md", "Mileage claims", "## Rates\nOwn car: 67 cents per mile.\n")
    return content


# --- 14: the database down or missing -----------------------------------------------------------------

DATABASE_COMMANDS = [
    ["report"],
    *(
        pytest.param(args, marks=pytest.mark.slow)  # the fast tier tries one command
        for args in (
            ["export"],
            ["workspace", "list"],
            ["workspace", "content", "T0ACME", "it"],
            ["forget", "U0ASKER01", "--yes"],
            ["xapi", "status"],
        )
    ),
]


def _missing_database_urls() -> list:
    urls = [pytest.param(CLOSED_PORT_URL, id="closed-port")]
    if base := os.environ.get("TEST_DATABASE_URL"):
        from sqlalchemy.engine import make_url

        missing = make_url(base).set(database="moment_no_such_database").render_as_string(hide_password=False)
        urls.append(pytest.param(missing, id="no-such-database", marks=pytest.mark.slow))
    return urls


@pytest.mark.parametrize("url", _missing_database_urls())
@pytest.mark.parametrize("args", DATABASE_COMMANDS)
def test_database_unavailable_is_one_line_and_exit_status_3(tmp_path, args, url):
    _small_content(tmp_path / "content")
    done = moment(*args, cwd=tmp_path, DATABASE_URL=url, MOMENT_HOME=tmp_path / "home")
    line = one_line(done)
    assert done.returncode == 3, done.stderr
    assert "The database is unavailable" in line and "DATABASE_URL" in line


def test_debug_shows_the_traceback_before_the_line(tmp_path):
    for args, env in ((["--debug", "report"], {}), (["report"], {"MOMENT_DEBUG": "1"})):
        done = moment(*args, cwd=tmp_path, DATABASE_URL=CLOSED_PORT_URL, **env)
        assert done.returncode == 3
        assert "Traceback (most recent call last)" in done.stderr
        assert "The database is unavailable" in done.stderr.strip().splitlines()[-1]


def test_exit_statuses_are_documented_in_help(tmp_path):
    done = moment("--help", cwd=tmp_path)
    assert done.returncode == 0
    for status in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "70 "):
        assert f"\n    {status}" in done.stdout, done.stdout
    assert "--debug" in done.stdout


def test_an_unexpected_error_is_an_internal_error_that_points_to_debug():
    line, status = explain(RuntimeError("boom"))
    assert status == EXIT_INTERNAL and "RuntimeError: boom" in line and "--debug" in line


# --- 18: a wrong DATABASE_URL, model, index folder or model cache -------------------------------------


@pytest.mark.parametrize(
    "url, says",
    [
        ("not a database url", "DATABASE_URL is not a database URL"),
        ("mysql://moment:s3cretpw@db.example.com/moment", "DATABASE_URL is a mysql database"),
        ("postgresql+psycopg2://moment:s3cretpw@127.0.0.1/moment", "'postgresql+psycopg2', which is not installed"),
        ("postgresql+psycopg://moment:s3cretpw@127.0.0.1:5432", "DATABASE_URL names no database"),
    ],
)
def test_a_database_url_moment_cannot_use_is_named_without_its_password(tmp_path, url, says):
    done = moment("report", cwd=tmp_path, DATABASE_URL=url)
    line = one_line(done)
    assert done.returncode == 1
    assert says in line and "s3cretpw" not in done.stderr


def test_an_invalid_setting_is_one_line_naming_the_variable(tmp_path):
    done = moment("report", cwd=tmp_path, MOMENT_DB_POOL_SIZE="0")
    line = one_line(done)
    assert done.returncode == 1 and "MOMENT_DB_POOL_SIZE" in line


class _Proxy:
    """A listening socket given as the HTTP(S) proxy: any connection is an attempt to reach the network."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.mark.slow
def test_an_unknown_embedding_model_is_not_installed_and_never_downloaded(corpus, tmp_path):
    proxy = _Proxy()
    try:
        done = moment(
            "ask",
            "how do i reset my vpn token",
            cwd=tmp_path,
            MOMENT_HOME=tmp_path / "home",
            MOMENT_INDEX_DIR=corpus.root,
            MOMENT_MODEL_CACHE=tmp_path / "models",
            MOMENT_EMBEDDING_MODEL="acme/no-such-model",
            HF_HUB_OFFLINE=None,  # Moment itself must not go online
            HF_HOME=tmp_path / "hf",
            HTTPS_PROXY=proxy.url,
            HTTP_PROXY=proxy.url,
            https_proxy=proxy.url,
            http_proxy=proxy.url,
        )
    finally:
        proxy.close()
    line = one_line(done)
    assert done.returncode == 4
    assert "'acme/no-such-model' is not installed" in line and "MOMENT_EMBEDDING_MODEL" in line
    assert proxy.connections == 0


def test_an_index_folder_that_is_a_file_is_refused(content, tmp_path):
    content.markdown("ok.md", "OK", "Fine.\n")
    a_file = tmp_path / "index.txt"
    a_file.write_text("not an index\n")
    built = moment("index", "--content", content.root, "--index", a_file, cwd=tmp_path, MOMENT_HOME=tmp_path / "h")
    assert built.returncode == 1 and "is a file" in one_line(built)
    asked = moment("ask", "vpn", cwd=tmp_path, MOMENT_HOME=tmp_path / "h", MOMENT_INDEX_DIR=a_file)
    line = one_line(asked)
    assert asked.returncode == 1 and str(a_file) in line and "not an index folder" in line


def _private_export(cache: Path) -> Path:
    [export] = [p for p in cache.iterdir() if p.is_dir()]
    export.chmod(0o700)  # as `make demo` left it
    return export


@pytest.mark.slow
@pytest.mark.skipif(not AS_ROOT, reason="needs root to give the cache to another user")
def test_a_model_cache_another_user_made_private_says_what_to_do(corpus, open_folder, shared_cache):
    cache = open_folder / "private-models"
    shutil.copytree(shared_cache, cache)
    _private_export(cache)
    for path in [cache, *cache.rglob("*")]:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)  # another user made it
    home = open_folder / "home-private-cache"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    done = moment("ask", "vpn token", cwd=open_folder, unprivileged=True, MOMENT_HOME=home,
                  MOMENT_INDEX_DIR=corpus.root, MOMENT_MODEL_CACHE=cache)  # fmt: skip
    line = one_line(done)
    assert done.returncode == 4
    assert f"chmod -R a+rX {cache}" in line and "MOMENT_MODEL_CACHE" in line


@pytest.mark.slow
def test_a_private_model_cache_of_ones_own_is_opened_to_other_users(corpus, open_folder, shared_cache, tmp_path):
    cache = tmp_path / "models"
    shutil.copytree(shared_cache, cache)
    export = _private_export(cache)
    done = moment("ask", "vpn token", cwd=tmp_path, MOMENT_HOME=tmp_path / "home",
                  MOMENT_INDEX_DIR=corpus.root, MOMENT_MODEL_CACHE=cache)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert export.stat().st_mode & 0o055 == 0o055 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- 15: a read-only data folder --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_read_only_data_folder_still_answers_and_says_it_could_not_record(open_folder, shared_cache):
    root = open_folder / "read-only"
    root.mkdir()
    _small_content(root / "content")
    home = root / "home"
    built = moment("index", cwd=root, MOMENT_HOME=home, MOMENT_MODEL_CACHE=shared_cache)
    assert built.returncode == 0, built.stderr
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)  # nobody may write; as root, `nobody` asks
    try:
        done = moment("ask", "how do i reset my vpn token", cwd=root, unprivileged=True,
                      MOMENT_HOME=home, MOMENT_MODEL_CACHE=shared_cache)  # fmt: skip
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert "Reset a VPN hardware token" in done.stdout
    assert "Traceback" not in done.stderr
    # What could not be written is said, one line each (the migration, the record), never a traceback.
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("interaction not recorded") and "write access to MOMENT_HOME" in lines[-1]
    assert len(lines) <= 3, done.stderr


# --- 16: one unreadable file or folder ----------------------------------------------------------------------


@pytest.mark.slow
def test_an_unreadable_file_or_folder_is_listed_and_the_others_are_indexed(open_folder, shared_cache):
    root = open_folder / "unreadable"
    root.mkdir()
    content = _small_content(root / "content")
    secret = content.markdown("it/secret.md", "Secret", "Nobody may read this.\n")
    private = content.markdown("private/plan.md", "Plan", "Nor this.\n").parent
    home = root / "home"
    home.mkdir()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o644)
    secret.chmod(0o000)
    private.chmod(0o000)
    try:
        done = moment("index", "--json", cwd=root, unprivileged=True, MOMENT_HOME=home,
                      MOMENT_MODEL_CACHE=shared_cache)  # fmt: skip
    finally:
        private.chmod(0o755)
        secret.chmod(0o644)
    assert done.returncode == 2, done.stderr
    out = json.loads(done.stdout)
    assert out["published"] is True
    assert sorted(out["added"]) == ["hr/mileage.md", "it/vpn-token.md"]
    failed = {f["path"]: f["reason"] for f in out["failed"]}
    assert set(failed) == {"it/secret.md", "private/"}
    assert all("Permission denied" in reason and "read access" in reason for reason in failed.values())


# --- 19: a new, empty database beside an existing index ---------------------------------------------------


@pytest.mark.slow
def test_an_index_is_published_to_a_new_empty_database(tmp_path, database_url, embedder, shared_cache):
    _small_content(tmp_path / "content")
    home = tmp_path / "home"
    first = moment("index", cwd=tmp_path, MOMENT_HOME=home, MOMENT_MODEL_CACHE=shared_cache)
    assert first.returncode == 0, first.stderr
    version = IndexStore(home / "index").current()
    again = moment("index", cwd=tmp_path, MOMENT_HOME=home, MOMENT_MODEL_CACHE=shared_cache, DATABASE_URL=database_url)
    assert again.returncode == 0, again.stderr
    assert f"Nothing changed; version {version} keeps serving" in again.stdout
    assert f"published version {version} through the database" in again.stdout
    # A second host with the new database gets the version from it.
    database = Database(database_url)
    try:
        with database.session() as session:
            assert session.scalars(select(PublishedIndex.version)).all() == [version]
        other = IndexStore(tmp_path / "other-host" / "index")
        settings = load_settings(home=tmp_path / "other-host")
        assert IndexOperations(settings, database, other, embedder).sync() == version
    finally:
        database.dispose()
    third = moment("index", cwd=tmp_path, MOMENT_HOME=home, MOMENT_MODEL_CACHE=shared_cache, DATABASE_URL=database_url)
    assert "through the database" not in third.stdout  # once is enough


# --- 20: workspace folders and eval input -------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["../..", "/etc", "..", "it/../../content-elsewhere"])
def test_a_workspace_folder_outside_the_content_is_refused(tmp_path, database_url, folder):
    _small_content(tmp_path / "content")
    (tmp_path / "content-elsewhere").mkdir()
    done = moment("workspace", "content", "T0ACME", folder, cwd=tmp_path, DATABASE_URL=database_url)
    line = one_line(done)
    assert done.returncode == 1 and "is not a folder inside the content folder" in line
    database = Database(database_url)
    try:
        database.upgrade()  # (refused before the database was even opened)
        with database.session() as session:
            assert session.scalars(select(Workspace.content_folder)).all() == []
    finally:
        database.dispose()


def test_a_workspace_nobody_installed_is_not_listed_as_installed(tmp_path, database_url):
    _small_content(tmp_path / "content")
    given = moment("workspace", "content", "T0ACME", "./it/", cwd=tmp_path, DATABASE_URL=database_url)
    assert given.returncode == 0 and "T0ACME is answered from it/" in given.stdout, given.stderr
    listed = moment("workspace", "list", cwd=tmp_path, DATABASE_URL=database_url)
    assert listed.returncode == 0, listed.stderr
    assert "T0ACME" in listed.stdout and ": not installed;" in listed.stdout, listed.stdout


@pytest.mark.parametrize(
    "lines, says",
    [
        (['{"question": "vpn token", "gold": "it/vpn-token.md"}'], '("gold" must be a list'),
        (['{"question": "vpn token", "gold": ["it/vpn-token.md"]}', '{"question": "mileage", "gold": ["hr/nope.md"]}'],
         "line 2: hr/nope.md"),
    ],
)  # fmt: skip
def test_eval_refuses_malformed_questions_naming_the_line(corpus, tmp_path, lines, says):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(lines) + "\n")
    done = moment("eval", questions, cwd=tmp_path, MOMENT_HOME=tmp_path / "home", MOMENT_INDEX_DIR=corpus.root)
    line = one_line(done)
    assert done.returncode == 1 and f"{questions}" in line and says in line


def test_eval_refuses_k_0(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "vpn token", "gold": ["it/vpn-token.md"]}\n')
    done = moment("eval", questions, "--k", "0", cwd=tmp_path, MOMENT_INDEX_DIR=corpus.root)
    assert done.returncode == 1 and "--k" in done.stderr and "0 is not in the range x>=1" in done.stderr


# --- a bounded pool and statement timeouts -------------------------------------------------------------------


def test_the_pool_is_bounded_and_a_request_waits_at_most_the_pool_timeout(database_url):
    settings = load_settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5, database_url_override=database_url)
    database = Database.from_settings(settings)
    try:
        with database.engine.connect():
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError):
                database.read(text("SELECT 1"))
            assert time.monotonic() - started < 3.0
        assert database.read(text("SELECT 1")) == [(1,)]  # free again
    finally:
        database.dispose()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_postgresql_statement_is_stopped_at_the_statement_timeout(tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        migrated = Database(url)
        migrated.upgrade()
        migrated.dispose()
        database = Database(url, statement_timeout=1.0)
        try:
            assert database.read(text("SHOW statement_timeout")) == [("1s",)]
            # The URL's own options (the schema) are kept beside the timeout.
            tables = database.read(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
            assert "alembic_version" in {row[0] for row in tables}
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError, match="statement timeout"):
                database.read(text("SELECT pg_sleep(30)"))
            assert time.monotonic() - started < 10.0  # stopped after about 1 s, not 30
        finally:
            database.dispose()


def test_a_sqlite_write_waits_for_a_lock_at_most_the_statement_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'moment.db'}"
    database = Database(url, statement_timeout=0.5)
    database.upgrade()
    other = sqlite3.connect(tmp_path / "moment.db")
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="locked"), database.session() as session:
            session.add(Workspace(team_id="T0LOCKED", admins=[]))
        assert time.monotonic() - started < 3.0
    finally:
        other.rollback()
        other.close()
        database.dispose()
