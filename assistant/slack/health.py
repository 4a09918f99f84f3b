"""`/healthz` for load balancers: answered within `DEADLINE` seconds whatever the database does, and never
in the way of acknowledging Slack.

The checks (the database answers a query and takes a write, an index is loaded: `Overview.health`)
run in one thread of their own; a probe waits for a running check at most until the deadline, then answers
503 saying what did not answer. A result is reused for `CACHE_SECONDS`, so probes from several load
balancers cost one check, and while a check hangs (a database that accepts connections and never answers)
no second one is started: nothing piles up on the hung server and request threads stay free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEADLINE = 1.5  # seconds a probe waits for the checks
CACHE_SECONDS = 2.0  # a result this fresh is answered without checking again

Check = Callable[[], tuple[bool, dict[str, str]]]


class HealthCheck:
    def __init__(self, check: Check, deadline: float = DEADLINE, cache_seconds: float = CACHE_SECONDS) -> None:
        self._check = check
        self.deadline = deadline
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._result: tuple[bool, dict[str, str]] | None = None
        self._checked_at = float("-inf")
        self._running: threading.Event | None = None  # set when the running check is done
        self._started_at = 0.0

    def __call__(self) -> tuple[int, dict[str, str]]:
        """(HTTP status, body)."""
        with self._lock:
            fresh = time.monotonic() - self._checked_at < self.cache_seconds
            if fresh and self._result is not None:
                return self._answer(*self._result)
            done = self._running
            if done is None:
                done = self._running = threading.Event()
                self._started_at = time.monotonic()
                threading.Thread(target=self._run, args=(done,), name="moment-health", daemon=True).start()
        left = self._started_at + self.deadline - time.monotonic()
        if done.wait(max(0.0, left)):
            with self._lock:
                result = self._result
            if result is not None:
                return self._answer(*result)
        waited = time.monotonic() - self._started_at
        return self._answer(False, {"database": f"no answer within {waited:.1f} s", "index": "not checked"})

    def _run(self, done: threading.Event) -> None:
        try:
            result = self._check()
        except Exception as exc:  # a check that raises is a failed check, never a stuck one
            result = (False, {"error": f"{type(exc).__name__}: {exc}"[:200]})
        with self._lock:
            self._result = result
            self._checked_at = time.monotonic()
            self._running = None
        done.set()

    @staticmethod
    def _answer(ok: bool, checks: dict[str, str]) -> tuple[int, dict[str, str]]:
        body = dict(checks)
        body["status"] = "ok" if ok else "unavailable"
        return (200 if ok else 503), body
