"""Work recorded before it is acknowledged: a write to the database within a deadline, or else a line in a
local spool (synced to disk) that is written to the database when it answers again.

Slack is acknowledged within 3 seconds; the database may be down (fails at once), hung (answers never) or
slow. `Intake.record(row)` tries the database for at most `DEADLINE` seconds in a thread of its own; when
it fails or takes longer, the row goes to the spool, named for the database it was meant for
(`Database.fingerprint`), and a background thread writes it there when it can (`write` must be idempotent:
the late database write and the spooled one may both arrive). Rows spooled for another database stay.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from assistant.db.database import DatabaseUnavailableError

log = logging.getLogger(__name__)

DEADLINE = 1.0  # seconds the acknowledgement may wait for the database
RETRY_SECONDS = 5.0  # how often the spool is tried while it holds rows


class Intake:
    """Rows of one kind: `write(row)` puts one in the database (raising `DatabaseUnavailableError`), and is
    safe to call twice for the same row."""

    def __init__(
        self, path: Path, database_fingerprint: str, write: Callable[[dict], object], deadline: float = DEADLINE
    ) -> None:
        self.path = path
        self.fingerprint = database_fingerprint
        self.write = write
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moment-intake")
        self._lock = threading.Lock()
        self._retrying = False
        if self.path.exists():
            self._retry_later()  # rows a stopped process left

    def record(self, row: dict) -> tuple[bool, object]:
        """(True, what `write` returned) when the database took the row in time; (False, None) when it was
        spooled instead (never waiting on the database longer than the deadline: a background thread writes
        spooled rows)."""
        future = self._pool.submit(self.write, row)
        try:
            return True, future.result(timeout=self.deadline)
        except FutureTimeout:
            log.error("the database did not answer within %.1f s: spooled (%s)", self.deadline, self.path.name)
        except DatabaseUnavailableError as exc:
            log.error("spooled (%s): %s", self.path.name, exc)
        self.spool(row)
        return False, None

    def spool(self, row: dict) -> None:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**row, "database": self.fingerprint}) + "\n"
        with FileLock(str(self.path) + ".lock"), self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._retry_later()

    def pending(self) -> int:
        try:
            return sum(1 for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip())
        except FileNotFoundError:
            return 0

    def replay(self) -> int:
        """Write the spooled rows meant for this database (in order); the rest stay. Stops at the first row the
        database refuses (it is still away). One replay at a time (across processes); the spool itself is
        locked only to read and rewrite it, never while the database is written, so that spooling (before an
        acknowledgement) never waits on a hung database."""
        if not self.path.exists():
            return 0
        from filelock import FileLock

        with FileLock(str(self.path) + ".replay.lock"):
            with FileLock(str(self.path) + ".lock"):
                lines = self._lines()
            written = set()
            for i, line in enumerate(lines):
                row = json.loads(line)
                if row.get("database") != self.fingerprint:
                    continue
                try:
                    self.write({k: v for k, v in row.items() if k != "database"})
                except DatabaseUnavailableError:
                    break
                written.add(i)
            if not written:
                return 0
            with FileLock(str(self.path) + ".lock"):
                current = self._lines()  # only appended to since: replays are one at a time
                kept = [line for i, line in enumerate(lines) if i not in written] + current[len(lines) :]
                if kept:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
                    os.replace(tmp, self.path)
                else:
                    self.path.unlink()
        log.info("wrote %d spooled rows (%s)", len(written), self.path.name)
        return len(written)

    def _lines(self) -> list[str]:
        try:
            return [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def _retry_later(self) -> None:
        with self._lock:
            if self._retrying:
                return
            self._retrying = True
        threading.Thread(target=self._retry, name="moment-intake-retry", daemon=True).start()

    def _retry(self) -> None:
        import time

        try:
            while True:
                time.sleep(RETRY_SECONDS)
                try:
                    self.replay()
                except Exception:
                    log.exception("spool %s not replayed", self.path.name)
                if not any(r.get("database") == self.fingerprint for r in self._rows()):
                    return
        finally:
            with self._lock:
                self._retrying = False

    def _rows(self) -> list[dict]:
        return [json.loads(line) for line in self._lines()]
