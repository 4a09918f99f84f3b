"""Interaction records as rows: written to the database, or, while it is unavailable, appended to a spool on
the host's disk (`InteractionSpool`) and written when it answers again. A question's record is made when it
arrives (outcome `received`) and completed when it is answered, never twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from pathlib import Path

from sqlalchemy import select

from assistant.access.tenancy import DEFAULT_TEAM
from assistant.db.database import Database
from assistant.db.gap_models import QuestionVector
from assistant.db.models import Interaction, InteractionSource, utcnow
from assistant.records.xapi import XapiOutbox

log = logging.getLogger(__name__)

# A question's outcome until it is answered: recorded on arrival, being answered by its listener, taken by
# the worker (its process stopped, or its listener never started).
RECEIVED, ANSWERING, RESUMING = "received", "answering", "resuming"
UNANSWERED = (RECEIVED, ANSWERING, RESUMING)


def store_row(session, row: dict) -> Interaction | None:
    """Write a recorded interaction: the question's record made on arrival completed (found by `received_id`,
    or by its `receipt_key` when it was spooled on the host), or a new one (None: the record was completed
    already). The answer of a question received in Slack is marked unposted until its post succeeded."""
    received = received_record(session, row.get("received_id"), row.get("receipt_key"))
    if received is not None and received.outcome not in UNANSWERED:
        return None  # completed already (by the worker, or by an earlier replay): never two records
    if received is None:
        interaction = _interaction_from_row(row)
        if interaction.receipt_key is not None:
            interaction.unposted_since = utcnow()
        session.add(interaction)
        session.flush()
        _keep_vector(session, interaction, row.get("vector"))
        return interaction
    for field in (
        "question",
        "question_chars",
        "answered",
        "outcome",
        "confidence",
        "latency_ms",
        "index_version",
        "features",
        "answer",
    ):
        setattr(received, field, row[field])
    received.sources = [InteractionSource(**source) for source in row["sources"]]
    received.unposted_since = utcnow()
    session.flush()
    _keep_vector(session, received, row.get("vector"))
    return received


def vector_row(model: str, vector) -> dict:
    """A declined question's embedding as its record keeps it (JSON: the host's spool too); content gaps
    cluster it without embedding it again (`assistant.insights.gap_inputs`)."""
    import numpy as np

    data = np.ascontiguousarray(np.ravel(vector), dtype=np.float32).tobytes()
    return {"model": model, "embedding": base64.b64encode(data).decode("ascii")}


def _keep_vector(session, interaction: Interaction, row: dict | None) -> None:
    if row is None or session.get(QuestionVector, interaction.id) is not None:
        return
    session.add(QuestionVector(interaction_id=interaction.id, team_id=interaction.team_id,
                               embedding_model=row["model"], embedding=base64.b64decode(row["embedding"])))  # fmt: skip


def received_record(session, received_id: int | None, receipt_key: str | None) -> Interaction | None:
    """A question's record made on arrival: by its id, or by its receipt (the message it came in)."""
    if received_id is not None:
        return session.get(Interaction, received_id)
    if receipt_key is not None:
        return session.scalar(select(Interaction).where(Interaction.receipt_key == receipt_key))
    return None


def _interaction_from_row(row: dict) -> Interaction:
    fields = {k: v for k, v in row.items() if k not in ("sources", "received_id", "vector")}
    fields["created_at"] = dt.datetime.fromisoformat(fields["created_at"])
    interaction = Interaction(**fields)
    interaction.sources = [InteractionSource(**s) for s in row["sources"]]
    return interaction


class InteractionSpool:
    """Interactions that could not be written because the database was down, kept on local disk
    until the next successful write (append-only JSON lines, replayed under a file lock)."""

    def __init__(self, path: Path, default_team_id: str = DEFAULT_TEAM, database: str | None = None) -> None:
        self.path = path
        self.default_team_id = default_team_id  # the workspace of rows spooled before workspaces existed
        # The fingerprint of the database rows are spooled for (`Database.fingerprint`): rows spooled for
        # another database stay in the spool, never written into this one.
        self.database = database

    def append(self, row: dict) -> None:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {**row, "database": self.database}
        with FileLock(str(self.path) + ".lock"), self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _ours(self, row: dict) -> bool:
        """Spooled for this database (rows spooled before spools named their database: for the one configured)."""
        return row.get("database") in (None, self.database)

    def pending(self) -> int:
        try:
            return sum(1 for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip())
        except FileNotFoundError:
            return 0

    def _current(self, row: dict) -> dict:
        if "enterprise_id" not in row:  # spooled by a version before workspaces: the default workspace's
            row["team_id"] = self.default_team_id
        return row

    def replay(self, database: Database, xapi: XapiOutbox | None = None) -> int:
        """Write the interactions spooled for `database` in one transaction, then take them out of the spool
        (only once committed). Rows spooled for another database stay."""
        if not self.path.exists():
            return 0
        from filelock import FileLock

        with FileLock(str(self.path) + ".lock"):
            try:
                rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except FileNotFoundError:
                return 0
            mine = [row for row in rows if self._ours(row)]
            others = [row for row in rows if not self._ours(row)]
            if not mine:
                return 0
            with database.session() as session:
                interactions = [
                    store_row(session, self._current({k: v for k, v in row.items() if k != "database"})) for row in mine
                ]
                for interaction in filter(None, interactions):
                    if xapi is not None:
                        xapi.interaction(session, interaction)
            if others:
                log.warning("%d spooled interactions belong to another database; kept in %s", len(others), self.path)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps(row) + "\n" for row in others), encoding="utf-8")
                os.replace(tmp, self.path)
            else:
                self.path.unlink()
            log.info("wrote %d spooled interactions", len(mine))
        return len(mine)
