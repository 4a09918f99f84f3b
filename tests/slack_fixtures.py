"""pytest fixtures that run the real `moment serve` against the Slack stand-in.

    def test_x(slack_api, moment_server, database_url):
        server = moment_server(database_url)            # a real gunicorn process, healthy
        server.sender.event(payloads.event_callback(...))  # signed HTTP to /slack/events
        slack_api.wait_for("chat.postMessage", ...)

Fixtures:
  slack_api             the Web API stand-in (module scope; shared by the servers of a module)
  moment_content        (content_dir, index_dir): a small content folder indexed once with `moment index`
  moment_server         factory(database_url, *, healthy=True, env=None, workers=2) -> MomentServer (an env
                        value of None unsets that variable);
                        servers stop at the end of the test
  module_moment_server  the same factory, servers stop at the end of the module
  module_database_url   a database per module: SQLite, and PostgreSQL (a schema of its own) when
                        TEST_DATABASE_URL is set, like conftest's `database_url`
When a test fails, the tail of every running server's log is added to its report.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from slackstub.api import SlackAPIStub
from slackstub.signing import SlackSender

ROOT = Path(__file__).resolve().parents[1]
MOMENT = ROOT / ".venv" / "bin" / "moment"
MODEL_CACHE = Path(os.environ.get("MOMENT_MODEL_CACHE", ROOT / ".moment" / "models"))
BOT_TOKEN = "xoxb-1111-2222-momenttesttoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OWNER = "U0TESTOWN1"
START_TIMEOUT = 120.0

_live: list[MomentServer] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MomentServer:
    """One `moment serve --port N` process (gunicorn, several workers) and a signed sender to it."""

    def __init__(self, port: int, process: subprocess.Popen, log_path: Path, home: Path, database_url: str) -> None:
        self.port = port
        self.process = process
        self.log_path = log_path
        self.home = home
        self.database_url = database_url
        self.url = f"http://127.0.0.1:{port}"
        self.sender = SlackSender(self.url, SIGNING_SECRET)

    def healthz(self) -> requests.Response:
        return requests.get(self.url + "/healthz", timeout=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, healthy: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Until /healthz answers (200, or any answer when `healthy` is False)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moment serve exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                response = self.healthz()
                if response.status_code == 200 or not healthy:
                    return
                last = f"{response.status_code} {response.text}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise RuntimeError(f"moment serve not ready after {timeout} s ({last}):\n{self.log_tail()}")

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


class MomentServers:
    """Factory: `servers(database_url, ...)` starts a server and waits until it is ready."""

    def __init__(self, slack: SlackAPIStub, content: tuple[Path, Path], tmp: Path) -> None:
        self.slack = slack
        self.content_dir, self.index_dir = content
        self.tmp = tmp
        self.started: list[MomentServer] = []

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
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_", "LRS_"))}
        full_env.pop("DATABASE_URL", None)
        full_env.update(
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": self.slack.api_url,
                "PORT": str(port),
                "DATABASE_URL": database_url,
                "MOMENT_HOME": str(home),
                "MOMENT_INDEX_DIR": str(self.index_dir),
                "MOMENT_CONTENT_DIR": str(self.content_dir),
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
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(MOMENT), "serve", "--port", str(port)],
                cwd=home,  # no stray .env
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends gunicorn and its workers
            )
        server = MomentServer(port, process, log_path, home, database_url)
        _live.append(server)
        self.started.append(server)
        try:
            server.wait_ready(healthy=healthy)
        except Exception:
            server.stop()
            raise
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


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


@pytest.fixture
def moment_server(slack_api, moment_content, tmp_path):
    servers = MomentServers(slack_api, moment_content, tmp_path)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def module_moment_server(slack_api, moment_content, tmp_path_factory):
    servers = MomentServers(slack_api, moment_content, tmp_path_factory.mktemp("servers"))
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"])
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
            report.sections.append((f"moment serve :{server.port} log (tail)", server.log_tail()))


def copy_index(index_dir: Path, to: Path) -> Path:
    """A private copy of the index (for tests that break it)."""
    shutil.copytree(index_dir, to)
    return to
