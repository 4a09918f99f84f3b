"""Starting `moment serve` and the plain Slack app against the Slack stand-in (slackstub/), as
tests/slack_fixtures.py does; reading their resident memory from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
from common import BENCH_HOME, CONTENT_DIR, MOMENT, ROOT, VENV_BIN, child_env

BOT_TOKEN = "xoxb-1111-2222-momentbenchtoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own process group (stopped with it, by its id)."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path, port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self.started = time.perf_counter()
        with log.open("wb") as fh:
            self.process = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.ready_seconds: float | None = None

    def wait_ready(self, timeout: float = 180.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    self.ready_seconds = time.perf_counter() - self.started
                    return self.ready_seconds
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def pids(self) -> list[int]:
        """The server's processes: the one we started and its descendants (gunicorn master + workers)."""
        found = [self.process.pid]
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        i = 0
        while i < len(found):
            found.extend(children.get(found[i], []))
            i += 1
        return found

    def memory(self) -> dict:
        """Per process: peak and current resident memory (VmHWM, VmRSS) and proportional share (Pss), MiB."""
        out = {}
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
            entry = {
                "peak_rss_mib": int(fields.get("VmHWM", "0 kB").split()[0]) / 1024,
                "rss_mib": int(fields.get("VmRSS", "0 kB").split()[0]) / 1024,
            }
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                pss = next(int(x.split()[1]) for x in rollup.splitlines() if x.startswith("Pss:"))
                entry["pss_mib"] = pss / 1024
            except (OSError, StopIteration):
                pass
            out[pid] = entry
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds used by the whole machine since boot, CPU seconds used by `pids`)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    machine = (user + nice + system + irq + softirq + steal) / tick
    ours = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        ours += int(rest[11]) + int(rest[12])
    return machine, ours / tick


def access_log_ms(log: Path, offset: int) -> tuple[list[float], int]:
    """Server-side times (gunicorn's %(M)s) of `POST /slack/events` answered 200 after byte `offset`."""
    import re

    with log.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    times = [float(m) for m in re.findall(rb'"POST /slack/events HTTP/1.1" 200 \S+ (\d+)ms', data)]
    return times, offset + len(data)


def start_moment(
    api_url: str,
    index: Path,
    content: Path = CONTENT_DIR,
    *,
    workers: int = 2,
    tag: str = "",
    env: dict | None = None,
    keep_home: bool = False,
) -> Server:
    """`moment serve --port N` (gunicorn, `workers` processes, the default threads) with its own SQLite database
    (unless `env` names a DATABASE_URL). `keep_home`: restart on the home a killed server left (its spool)."""
    import shutil

    port = free_port()
    home = BENCH_HOME / f"serve-home{tag}"
    if not keep_home:
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    env = child_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        PORT=str(port),
        MOMENT_HOME=str(home),
        MOMENT_INDEX_DIR=str(index),
        MOMENT_CONTENT_DIR=str(content),
        MOMENT_WEB_WORKERS=str(workers),
        **(env or {}),
    )
    server = Server("moment serve", [str(MOMENT), "serve", "--port", str(port)], env, home, port, home / "serve.log")
    return server


def start_plain(api_url: str, plain_dir: Path, *, workers: int = 2, threads: int = 8, tag: str = "") -> Server:
    """The plain Bolt app (bench/plain_slack_app.py) under gunicorn with the same workers and threads."""
    port = free_port()
    home = BENCH_HOME / f"plain-serve-home{tag}"
    home.mkdir(parents=True, exist_ok=True)
    env = child_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        PLAIN_INDEX_DIR=str(plain_dir),
    )
    cmd = [
        str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--timeout", "120", "--chdir", str(ROOT / "bench"),
        "--access-logfile", "-", "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',  # as `moment serve`
        "plain_slack_app:wsgi_app()",
    ]  # fmt: skip
    return Server("plain app", cmd, env, home, port, home / "serve.log")


def start_null(*, workers: int = 2, threads: int = 8) -> Server:
    """A do-nothing WSGI app (bench/plain_slack_app.py `null_app`) under the same gunicorn settings."""
    port = free_port()
    home = BENCH_HOME / "null-serve-home"
    home.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--chdir", str(ROOT / "bench"), "plain_slack_app:null_app()",
    ]  # fmt: skip
    return Server("do-nothing app", cmd, child_env(), home, port, home / "serve.log")


def plain_dir_for(index: Path, name: str) -> Path:
    """A flat FAISS index of an index version's vectors and its chunk texts, for the plain app."""
    import json
    import sqlite3

    import faiss
    import numpy as np
    from common import plain_flat_index

    from indexer.store import IndexStore

    target = BENCH_HOME / f"plain-{name}"
    if (target / "chunks.json").is_file():
        return target
    store = IndexStore(index)
    directory = store.versions_dir / store.current()
    target.mkdir(parents=True, exist_ok=True)
    faiss.write_index(plain_flat_index(np.load(directory / "embeddings.npy")), str(target / "flat.faiss"))
    db = sqlite3.connect(directory / "catalog.sqlite")
    titles = dict(db.execute("SELECT number, title FROM documents"))
    rows = [(titles[d], t) for d, t in db.execute("SELECT doc_number, text FROM chunks ORDER BY id")]
    db.close()
    (target / "chunks.json").write_text(json.dumps(rows))
    return target
