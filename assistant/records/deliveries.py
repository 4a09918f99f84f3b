"""Claims on deliveries: one answer per Slack event and per message, across processes and hosts, also while
the database is down.

Slack retries an event it thinks was not acknowledged, may send one event to two processes, and may deliver
one message (team, channel, ts) under several event ids. A delivery is answered by whoever first claims all
of its keys (the event id and the message) in `processed_events`.

Each claim is noted on this host's disk (one file per key, created with O_EXCL; kept an hour, longer than
Slack retries), then made in the database, which decides: a process that died before its claim committed
leaves nothing there, so Slack's retry is answered by another. While the database is unavailable the host's
note decides (a retry of a delivery claimed before the outage is still a duplicate), and the key is also
kept as pending (synced to disk) under the fingerprint of the database it was meant for, and written into
that database before the next claim made there (under a file lock): a retry after the database is back is
still a duplicate. Hosts cannot see each other's disks: during an outage a retry sent to another host may
be answered again; with one host it is not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import ProcessedEvent

log = logging.getLogger(__name__)

KEY_LENGTH = 128  # processed_events.key
LOCAL_KEEP_SECONDS = 3600.0  # Slack retries for a few minutes; the database keeps claims 30 days


def event_keys(body: dict, team_id: str) -> list[str]:
    """The keys of an Events API delivery: its event id, and for a message or mention the message itself."""
    keys = []
    if body.get("event_id"):
        keys.append(f"event:{body['event_id']}")
    event = body.get("event") or {}
    if event.get("type") in ("message", "app_mention") and event.get("channel") and event.get("ts"):
        keys.append(message_key(team_id, event["channel"], event["ts"]))
    return keys


def message_key(team_id: str, channel: str, ts: str) -> str:
    """The key of one Slack message, whichever event delivered it (also the receipt of a question put in it)."""
    return f"message:{team_id}:{channel}:{ts}"[:KEY_LENGTH]


class DeliveryClaims:
    """Claims on this host's disk and in the database (`directory`/<database fingerprint>/)."""

    def __init__(self, database: Database, directory: Path) -> None:
        self.database = database
        self.seen = directory / database.fingerprint / "seen"
        self.directory = directory / database.fingerprint / "pending"
        self._pruned = 0.0

    def claim(self, *keys: str, with_claim=None) -> tuple[bool, object]:
        """(True, ...) when none of `keys` was claimed before: the caller answers. The database decides
        (any process sharing it); while it is unavailable, this host's disk does. `with_claim(session)` adds
        what must be written in the same transaction as the claim (a question's record: a process that
        dies before the commit leaves neither, so Slack's retry is answered); its result is returned
        (None when the database was unavailable)."""
        keys = self.keys(*keys)
        return self.decide(keys, self.note(keys), with_claim)

    def note(self, keys: tuple[str, ...]) -> bool:
        """Note the claim on this host's disk (no database): False when this host had one of `keys` already.
        What answers when the database cannot be asked (`decide`)."""
        return not keys or self._claim_on_disk(self.seen, keys, sync=False)

    def decide(self, keys: tuple[str, ...], first_here: bool, with_claim=None) -> tuple[bool, object]:
        """The claim in the database, after `note` (see `claim`)."""
        if not keys:
            return True, None
        try:
            self.flush()
            with self.database.session() as session:
                if session.scalars(select(ProcessedEvent.key).where(ProcessedEvent.key.in_(keys))).first():
                    return False, None
                session.add_all(ProcessedEvent(key=key) for key in keys)
                session.flush()
                made = with_claim(session) if with_claim is not None else None
            return True, made
        except IntegrityError:
            return False, None  # another process claimed one of them at the same moment
        except DatabaseUnavailableError as exc:
            if not first_here:
                return False, None  # this host had it (before the database went away, or since)
            log.warning("claimed %s on this host only (kept for the database): %s", keys[0], exc)
            self._claim_on_disk(self.directory, keys, sync=True)
            return True, None

    @staticmethod
    def keys(*keys: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k[:KEY_LENGTH] for k in keys if k))

    def release(self, key: str) -> None:
        """Give back a claim whose delivery failed, so that a later attempt can make it."""
        from sqlalchemy import delete

        key = key[:KEY_LENGTH]
        for folder in (self.seen, self.directory):
            _path(folder, key).unlink(missing_ok=True)
        with self.database.session() as session:
            session.execute(delete(ProcessedEvent).where(ProcessedEvent.key == key))

    def pending(self) -> int:
        """Claims made on this host while the database was unavailable that it has not got yet."""
        try:
            return sum(1 for entry in os.scandir(self.directory) if entry.name.endswith(".claim"))
        except FileNotFoundError:
            return 0

    def flush(self) -> int:
        """Write this host's pending claims into the database (raises `DatabaseUnavailableError`)."""
        if not self.pending():
            return 0
        from filelock import FileLock

        written = 0
        with FileLock(str(self.directory) + ".lock", timeout=30):
            keys = {}
            for path in sorted(self.directory.glob("*.claim")):
                try:
                    keys[path.read_text(encoding="utf-8").strip()] = path
                except FileNotFoundError:
                    continue
            if not keys:
                return 0
            with self.database.session() as session:
                known = set(session.scalars(select(ProcessedEvent.key).where(ProcessedEvent.key.in_(list(keys)))))
                for key in keys:
                    if key not in known:
                        session.add(ProcessedEvent(key=key))
                        written += 1
            for path in keys.values():
                path.unlink(missing_ok=True)
        log.info("wrote %d claims made while the database was unavailable", written)
        return written

    def _claim_on_disk(self, folder: Path, keys: tuple[str, ...], *, sync: bool) -> bool:
        """Create a file per key in `folder`; False when one existed (claimed before on this host)."""
        folder.mkdir(parents=True, exist_ok=True)
        self._prune()
        first = True
        for key in keys:
            try:
                fd = os.open(_path(folder, key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                first = False
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(key + "\n")
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
        return first

    def _prune(self) -> None:
        """Forget this host's claims older than `LOCAL_KEEP_SECONDS` (at most once a minute)."""
        now = time.time()
        if now - self._pruned < 60:
            return
        self._pruned = now
        try:
            entries = list(os.scandir(self.seen))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                if now - entry.stat().st_mtime > LOCAL_KEEP_SECONDS:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue


def _path(folder: Path, key: str) -> Path:
    return folder / (hashlib.sha256(key.encode()).hexdigest()[:40] + ".claim")
