"""pytest fixtures that run Moment's Slack app against the Slack stand-in: in this process, or as the real
`moment serve` (gunicorn).

    def test_x(slack_api, moment_app, database_url):
        server = moment_app(database_url)                  # the real WSGI app on loopback, healthy
        server.sender.event(payloads.event_callback(...))  # signed HTTP to /slack/events
        slack_api.wait_for("chat.postMessage", ...)

Either way requests are signed HTTP to the real Bolt app, and its WebClient speaks to the stand-in.

Fixtures:
  slack_api             the Web API stand-in (module scope; shared by the servers of a module)
  moment_content        (content_dir, index_dir): a small content folder indexed once with `moment index`
  moment_app            factory(database_url, *, healthy=True, env=None) -> MomentApp: the WSGI app `moment
                        serve` runs in each of its workers (`MomentWSGI`), built from the settings that command
                        would read from `env` (a value of None unsets that variable), served from this process
                        by a threaded server; the embedding model is loaded once per session. Apps stop at the
                        end of the test. For everything but the process model.
  module_moment_app     the same factory, apps stop at the end of the module
  moment_server         factory(database_url, *, healthy=True, env=None, workers=2) -> MomentServer: a real
                        `moment serve` process (gunicorn, several workers, each loading the model; seconds to
                        start). For what only processes show: workers or hosts sharing a database, start-up, listeners
                        of consecutive requests running in parallel.
                        Servers stop at the end of the test.
  module_moment_server  the same factory, servers stop at the end of the module
  module_database_url   a database per module: SQLite, and PostgreSQL (a schema of its own) when
                        TEST_DATABASE_URL is set, like conftest's `database_url`
Both kinds of server have `.url`, `.port`, `.sender`, `.database_url`, `.home`, `.healthz()`, `.log()`,
`.log_tail()`, `.stop()`. When a test fails, the tail of every running server's log is added to its report.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from slackstub.api import SlackAPIStub
from slackstub.signing import SlackSender
from tests.conftest import database_params

ROOT = Path(__file__).resolve().parents[1]
MOMENT = ROOT / ".venv" / "bin" / "moment"
MODEL_CACHE = Path(os.environ.get("MOMENT_MODEL_CACHE", ROOT / ".moment" / "models"))
BOT_TOKEN = "xoxb-1111-2222-momenttesttoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OWNER = "U0TESTOWN1"
START_TIMEOUT = 120.0

_live: list[Served] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """What the tests talk to, served on 127.0.0.1:`port` (a `moment serve` process, or the app in this process),
    and a signed sender to it."""

    kind = ""

    def __init__(self, port: int, home: Path, database_url: str) -> None:
        self.port = port
        self.home = home
        self.database_url = database_url
        self.url = f"http://127.0.0.1:{port}"
        self.sender = SlackSender(self.url, SIGNING_SECRET)

    def healthz(self) -> requests.Response:
        return requests.get(self.url + "/healthz", timeout=10)

    def log(self) -> str:
        raise NotImplementedError

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def ended(self) -> str | None:
        """Why it will never answer (it exited), or None."""
        raise NotImplementedError

    def wait_ready(self, healthy: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Until /healthz answers (200, or any answer when `healthy` is False)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if why := self.ended():
                raise RuntimeError(f"{why}:\n{self.log_tail()}")
            try:
                response = self.healthz()
                if response.status_code == 200 or not healthy:
                    return
                last = f"{response.status_code} {response.text}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise RuntimeError(f"{self.kind} not ready after {timeout} s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        raise NotImplementedError


class Factory:
    """`servers(database_url, ...)` starts a server and waits until it is ready; `stop_all()` stops them."""

    def __init__(self, slack: SlackAPIStub, content: tuple[Path, Path], tmp: Path) -> None:
        self.slack = slack
        self.content = content
        self.tmp = tmp
        self.started: list[Served] = []

    def _ready(self, server: Served, healthy: bool) -> Served:
        _live.append(server)
        self.started.append(server)
        try:
            server.wait_ready(healthy=healthy)
        except Exception:
            server.stop()
            raise
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


class MomentServer(Served):
    """One `moment serve --port N` process (gunicorn, several workers)."""

    kind = "moment serve"

    def __init__(self, port: int, process: subprocess.Popen, log_path: Path, home: Path, database_url: str) -> None:
        super().__init__(port, home, database_url)
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def ended(self) -> str | None:
        if self.process.poll() is not None:
            return f"moment serve exited ({self.process.returncode})"
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=25)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self in _live:
            _live.remove(self)


class MomentServers(Factory):
    """`servers(database_url, ...)`: a `moment serve` process, ready."""

    def __call__(
        self,
        database_url: str,
        *,
        healthy: bool = True,
        env: dict[str, str] | None = None,
        workers: int = 2,
        port: int | None = None,
    ) -> MomentServer:
        port = port or free_port()
        home = self.tmp / f"home-{port}-{uuid.uuid4().hex[:6]}"
        home.mkdir(parents=True)
        log_path = home / "serve.log"
        full_env = serve_environment(self.slack, self.content, database_url, home, env, workers=workers, port=port)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(MOMENT), "serve", "--port", str(port)],
                cwd=home,  # no stray .env
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends gunicorn and its workers
            )
        return self._ready(MomentServer(port, process, log_path, home, database_url), healthy)


def serve_environment(
    slack: SlackAPIStub,
    content: tuple[Path, Path],
    database_url: str,
    home: Path,
    env: dict[str, str | None] | None = None,
    *,
    workers: int = 2,
    port: int | None = None,
) -> dict[str, str]:
    """The environment `moment serve` runs with: this one without its Moment, Slack and LRS settings, then
    the stand-in's, the test content's, and `env` (a value of None unsets that variable)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_", "LRS_"))}
    full_env.pop("DATABASE_URL", None)
    full_env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            **({"PORT": str(port)} if port else {}),
            "DATABASE_URL": database_url,
            "MOMENT_HOME": str(home),
            "MOMENT_INDEX_DIR": str(content[1]),
            "MOMENT_CONTENT_DIR": str(content[0]),
            "MOMENT_MODEL_CACHE": str(MODEL_CACHE),
            "MOMENT_WEB_WORKERS": str(workers),
            "MOMENT_WEB_THREADS": "4",
            "MOMENT_EMBEDDING_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key, value in (env or {}).items():  # None: the variable is not set at all
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return full_env


# --- in this process ---------------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # `moment serve`'s (server._configure_logging)
_environ_lock = threading.Lock()
_models_lock = threading.Lock()
_embedders: dict[tuple, object] = {}  # the loaded embedding models, by what load_embedder_for(settings) reads


def settings_from_environment(env: dict[str, str]):
    """The settings `moment serve` reads when started with exactly `env` (and no .env file): `os.environ` is
    `env` while they are read (only the variables that differ are changed), and is restored after."""
    from assistant.settings import Settings
    from assistant.slack.server import share_cores

    with _environ_lock:
        saved = {key: os.environ.get(key) for key in {*os.environ, *env} if os.environ.get(key) != env.get(key)}
        try:
            for key in saved:
                if key in env:
                    os.environ[key] = env[key]
                else:
                    del os.environ[key]
            settings = Settings(_env_file=None)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return share_cores(settings, settings.web_workers)  # as `wsgi_app()` and `serve_http` do


def shared_embedder(settings):
    """The embedding model as a service of `settings` loads it, loaded once per test session."""
    from assistant.service import load_embedder_for

    key = (
        settings.embedding_model,
        settings.embedding_backend,
        str(settings.model_cache),
        settings.embedding_threads,
        not settings.reader,
    )
    with _models_lock:
        if key not in _embedders:
            _embedders[key] = load_embedder_for(settings)
        return _embedders[key]


class _ProcessState:
    """What a Moment app changes in the whole process: logging (`moment serve` logs at INFO, and Bolt copies
    the root logger's level onto its loggers; MomentWSGI quiets one of them) and the switch interval. Saved
    when the first app starts, restored when the last one stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps = 0
        self._switch = 0.0
        self._levels: dict[str, int] = {}

    def enter(self) -> None:
        with self._lock:
            if self._apps == 0:
                self._switch = sys.getswitchinterval()
                self._levels = {"": logging.root.level} | {
                    name: logger.level
                    for name, logger in logging.root.manager.loggerDict.items()
                    if isinstance(logger, logging.Logger)
                }
                logging.root.setLevel(logging.INFO)
                logging.getLogger("bm25s").setLevel(logging.WARNING)
            self._apps += 1

    def leave(self) -> None:
        with self._lock:
            self._apps -= 1
            if self._apps > 0:
                return
            sys.setswitchinterval(self._switch)
            logging.root.setLevel(self._levels[""])
            for name, logger in list(logging.root.manager.loggerDict.items()):
                if isinstance(logger, logging.Logger):
                    logger.setLevel(self._levels.get(name, logging.NOTSET))


_process_state = _ProcessState()


class _LogLines(logging.Handler):
    """A server's log: what the process logs while the app runs, formatted as `moment serve` formats it, and
    an access line per request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(self.format(record))
        except Exception:
            self.handleError(record)

    def write(self, text: str) -> None:
        with self.lock:
            self.lines.extend(text.splitlines())

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.lines)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A thread per request; closing the server waits for the requests in flight."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # the access line ('"POST /slack/events HTTP/1.1" 401 -') to the log
        self.server.moment_log.write(f"{self.address_string()} {format % args}")


class MomentApp(Served):
    """`MomentWSGI`, the app each `moment serve` worker runs (Bolt's handler and /healthz), served in this
    process on 127.0.0.1 by a threaded WSGI server."""

    kind = "in-process app"

    def __init__(self, settings, embedder, home: Path, database_url: str) -> None:
        from assistant.slack.server import MomentWSGI

        self.settings = settings
        self._log = _LogLines()
        self._stopped = False
        _process_state.enter()
        logging.root.addHandler(self._log)
        try:
            self.wsgi = MomentWSGI(settings, embedder=embedder)
            try:
                self.httpd = make_server(
                    "127.0.0.1", 0, self.wsgi, server_class=_ThreadingWSGIServer, handler_class=_RequestHandler
                )
            except BaseException:
                self.wsgi.close()
                raise
        except BaseException:
            logging.root.removeHandler(self._log)
            _process_state.leave()
            raise
        self.httpd.moment_log = self._log
        super().__init__(self.httpd.server_port, home, database_url)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"moment-app-{self.port}", daemon=True
        )
        self._thread.start()

    def log(self) -> str:
        return self._log.text()

    def ended(self) -> str | None:
        return None if self._thread.is_alive() else "the app's HTTP server thread ended"

    def stop(self) -> None:
        """Stop taking requests and finish those in flight, then stop the app's background work (index sync,
        listeners) and close its database connections; undo what it changed in the process."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.httpd.shutdown()
            self.httpd.server_close()
            self._thread.join(timeout=10)
            self.wsgi.close()
            for thread in threading.enumerate():  # help-channel queues and re-indexing end on their own
                if thread.name.startswith(("moment-help-", "moment-reindex")):
                    thread.join(timeout=10)
        finally:
            logging.root.removeHandler(self._log)
            _process_state.leave()
            if self in _live:
                _live.remove(self)


class MomentApps(Factory):
    """`apps(database_url, ...)`: the app in this process, ready."""

    def __call__(
        self, database_url: str, *, healthy: bool = True, env: dict[str, str | None] | None = None
    ) -> MomentApp:
        home = self.tmp / f"home-app-{uuid.uuid4().hex[:8]}"
        home.mkdir(parents=True)
        settings = settings_from_environment(serve_environment(self.slack, self.content, database_url, home, env))
        return self._ready(MomentApp(settings, shared_embedder(settings), home, database_url), healthy)


# --- test content ----------------------------------------------------------------------------------


def _write_content(root: Path) -> None:
    from conftest import ContentFolder  # tests/ is on sys.path (rootdir conftest)

    content = ContentFolder(root)
    content.vpn_token_page(owner=OWNER)
    content.markdown(
        "finance/mileage.md",
        "Mileage and travel expenses",
        """
        # Mileage and travel expenses
        ## Rates
        Own car: 67 cents per mile. Company vans: no mileage claim, use the fuel card.
        ## How to claim
        Submit the claim in Expensify within 30 days with the trip's start and end addresses.
        ## Receipts
        Attach receipts for parking and tolls over 10 dollars.
        """,
        type_="procedure",
        owner=OWNER,
        tags="[expenses, mileage]",
        reviewed="2026-08-15",
        review_every=365,
        url="https://intranet.brightline.example/finance/mileage",
    )
    content.markdown(
        "reference/it-help-desk.md",
        '"IT help desk: hours and contacts"',
        """
        # IT help desk
        ## During an outage
        The IT help desk watches the #it-outage channel around the clock. Post there; never use `<!channel>`
        or `<!here>` or `<!everyone>` in it, and do not page @here: the on-call engineer answers within 15 minutes.
        ## Hours
        Monday to Friday, 07:00 to 19:00, on extension 4400 & by email.
        """,
        type_="reference",
        owner="U0TESTOWN2",
        reviewed="2026-10-01",
        review_every=365,
    )
    content.markdown(
        "facilities/meeting-rooms.md",
        "Book a meeting room",
        """
        ## Steps
        1. Open the calendar and create a meeting.
        2. Choose Rooms and pick a room with enough seats.
        3. Rooms unused for 15 minutes are released automatically.
        """,
        owner=OWNER,
        tags="[rooms, calendar]",
    )
    content.van_inspection_video()


@pytest.fixture(scope="session")
def moment_content(tmp_path_factory) -> tuple[Path, Path]:
    """(content_dir, index_dir): the test content, indexed once per session by the real `moment index`."""
    root = tmp_path_factory.mktemp("slack-content")
    content_dir, index_dir = root / "content", root / "index"
    _write_content(content_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_"))}
    env.update(MOMENT_HOME=str(root / "home"), MOMENT_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [str(MOMENT), "index", "--content", str(content_dir), "--index", str(index_dir), "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"moment index failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return content_dir, index_dir


@pytest.fixture(scope="module")
def slack_api():
    """The Slack Web API stand-in; SLACK_API_URL of every server in the module points at it."""
    with SlackAPIStub(token=BOT_TOKEN) as stub:
        yield stub


def _serving(factory: Factory):
    yield factory
    factory.stop_all()


@pytest.fixture
def moment_app(slack_api, moment_content, tmp_path):
    yield from _serving(MomentApps(slack_api, moment_content, tmp_path))


@pytest.fixture(scope="module")
def module_moment_app(slack_api, moment_content, tmp_path_factory):
    yield from _serving(MomentApps(slack_api, moment_content, tmp_path_factory.mktemp("apps")))


@pytest.fixture
def moment_server(slack_api, moment_content, tmp_path):
    yield from _serving(MomentServers(slack_api, moment_content, tmp_path))


@pytest.fixture(scope="module")
def module_moment_server(slack_api, moment_content, tmp_path_factory):
    yield from _serving(MomentServers(slack_api, moment_content, tmp_path_factory.mktemp("servers")))


@pytest.fixture(scope="module", params=database_params())
def module_database_url(request, tmp_path_factory):
    """Like conftest's `database_url`, for a whole module: SQLite file, or a PostgreSQL schema of its own."""
    from conftest import fresh_database

    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _live:
        for server in list(_live):
            report.sections.append((f"{server.kind} :{server.port} log (tail)", server.log_tail()))


def copy_index(index_dir: Path, to: Path) -> Path:
    """A private copy of the index (for tests that break it)."""
    shutil.copytree(index_dir, to)
    return to
