"""Pytest plugin: a real xAPI Learning Record Store (Ralph) on 127.0.0.1, for the session.

Ralph lives in its own virtualenv, .venv-lrs (``scripts/install-lrs``). The server is Ralph's FastAPI app under
uvicorn, started directly rather than through ``ralph runserver``: that command runs uvicorn with reload=True,
which forks a watcher and a worker and leaves a child behind when only the parent is killed. Two changes are made
to Ralph at start-up. One: its filesystem LRS backend writes every batch to one file, ``fs_lrs.jsonl``, in "create"
mode, so with Ralph 5.1.0 every POST after the first answers 500 "Statements bulk indexation failed"; the
backend is switched to "append" mode. A second: that backend compares a query's `verb` and `activity` (which
Ralph's API turns into IRI models) with the statements' strings, so a query by verb or activity never finds
anything; they are compared as strings. Validation, authentication and duplicate handling are Ralph's own.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
LRS_VENV = ROOT / ".venv-lrs"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}

_BOOT = """\
import sys

from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

# Ralph 5.1.0's API hands the file backend `verb` and `activity` as IRI models, which its filters compare with
# the statements' strings: never equal. Compared as the strings they are.
_by_verb, _by_activity = FSLRSBackend._add_filter_by_verb, FSLRSBackend._add_filter_by_activity
FSLRSBackend._add_filter_by_verb = staticmethod(lambda filters, verb: _by_verb(filters, str(verb) if verb else verb))
FSLRSBackend._add_filter_by_activity = staticmethod(
    lambda filters, activity, related: _by_activity(filters, str(activity) if activity else activity, related)
)

import uvicorn

uvicorn.run("ralph.api:app", host=sys.argv[1], port=int(sys.argv[2]), log_level="info")
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if pytest dies without running its finalizers."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RalphServer:
    """A Ralph LRS process: ``stop()`` and ``start()`` keep the same port, credentials and data."""

    def __init__(self, workdir: Path, venv: Path = LRS_VENV, host: str = "127.0.0.1", port: int | None = None):
        self.venv = venv
        self.host = host
        self.port = port or _free_port()
        self.workdir = workdir
        self.app_dir = workdir / "app"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "ralph.log"
        self.username = "moment-test"
        self.password = secrets.token_urlsafe(16)
        self.base_url = f"http://{host}:{self.port}"
        self.endpoint = f"{self.base_url}/xAPI/"
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    def __repr__(self) -> str:
        return f"RalphServer(endpoint={self.endpoint!r}, username={self.username!r}, running={self.running})"

    @property
    def ralph(self) -> Path:
        return self.venv / "bin" / "ralph"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
        env.update(
            RALPH_APP_DIR=str(self.app_dir),
            RALPH_AUTH_FILE=str(self.app_dir / "auth.json"),
            RALPH_HISTORY_FILE=str(self.app_dir / "history.json"),
            RALPH_RUNSERVER_BACKEND="fs",
            RALPH_RUNSERVER_AUTH_BACKENDS="basic",
            RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(self.data_dir),
            PYTHONUNBUFFERED="1",
        )
        return env

    def create_credentials(self) -> None:
        """Write auth.json with ``ralph auth`` (bcrypt hash; all scopes)."""
        self.app_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(self.ralph), "auth", "-u", self.username, "-p", self.password, "-s", "all"]
        command += ["-M", "mailto:moment-test@example.com", "-w"]
        # cwd: Ralph reads a .env file from its working directory; keep the project's out of it.
        done = subprocess.run(command, cwd=self.workdir, env=self._env(), capture_output=True, timeout=120)
        if done.returncode != 0 or not (self.app_dir / "auth.json").is_file():
            raise RuntimeError(f"`ralph auth` failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers; raise with Ralph's log if it does not."""
        if self.running:
            return
        started = time.monotonic()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "-c", _BOOT, self.host, str(self.port)],
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        deadline = started + timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"Ralph exited with code {code} on start-up:\n{self._log_since(log_offset)}")
            try:
                if requests.get(f"{self.base_url}/__lbheartbeat__", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"Ralph did not answer on {self.base_url} within {timeout:.0f}s:\n{self._log_since(log_offset)}"
                )
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - started

    def _log_since(self, offset: int) -> str:
        """What this run wrote to the log (its last 8 kB)."""
        return self.log_path.read_bytes()[offset:][-8000:].decode(errors="replace")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL) by pid and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def statements(self, **params: Any) -> list[dict[str, Any]]:
        """GET /xAPI/statements with xAPI query parameters, following ``more`` links; all pages."""
        url: str | None = f"{self.endpoint}statements"
        query: dict[str, Any] | None = params
        found: list[dict[str, Any]] = []
        for _ in range(10_000):
            if url is None:
                return found
            response = requests.get(
                url, params=query, auth=(self.username, self.password), headers=XAPI_HEADERS, timeout=30
            )
            response.raise_for_status()
            body = response.json()
            found.extend(body.get("statements", []))
            more = body.get("more")
            url, query = (urljoin(self.base_url, more), None) if more else (None, None)
        raise RuntimeError("statements(): too many pages")


@pytest.fixture(scope="session")
def lrs_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Ralph LRS on 127.0.0.1 for the whole session; see RalphServer."""
    if not (LRS_VENV / "bin" / "ralph").exists():
        pytest.fail(
            f"Ralph (the test LRS) is not installed: {LRS_VENV / 'bin' / 'ralph'} is missing. "
            "Run scripts/install-lrs (make test does).",
            pytrace=False,
        )
    server = RalphServer(tmp_path_factory.mktemp("ralph-lrs"))
    try:
        server.create_credentials()
        server.start()
        yield server
    finally:
        server.stop()
