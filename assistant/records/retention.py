"""How long records are kept, and forgetting a person: interactions older than MOMENT_RETENTION_DAYS go (with
their sources, votes and places in content gaps, the gaps left empty and the demotions their Not helpful votes
made), with finished mentor requests as old and old de-duplication keys; `forget` deletes everything held
about one person (`assistant.records.privacy`).

    Retention(database, xapi, settings.retention_days).apply()     # the worker, daily
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select

from assistant.db.database import Database
from assistant.db.models import Interaction, MentorRequest, PassageDemotion, ProcessedEvent, utcnow
from assistant.insights.gaps import Gaps
from assistant.records.privacy import forget_user
from assistant.records.xapi import XapiOutbox

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Retention:
    """Deletes what is kept no longer (`retention_days`: 0 or None keeps interactions forever)."""

    database: Database
    xapi: XapiOutbox
    retention_days: int | None

    def apply(self, now: dt.datetime | None = None) -> int:
        """Delete interactions older than MOMENT_RETENTION_DAYS (their sources and votes go with them) and
        finished mentor requests as old, and de-duplication keys older than 30 days; the interactions deleted."""
        now = now or utcnow()
        deleted = 0
        with self.database.session() as session:
            session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < now - dt.timedelta(days=30)))
            if self.retention_days:
                cutoff = now - dt.timedelta(days=self.retention_days)
                old = session.scalars(select(Interaction.id).where(Interaction.created_at < cutoff)).all()
                for start in range(0, len(old), 500):
                    ids = old[start : start + 500]
                    for row in session.scalars(select(Interaction).where(Interaction.id.in_(ids))).all():
                        session.delete(row)  # sources and votes go with it (ORM cascade)
                    session.execute(delete(PassageDemotion).where(PassageDemotion.interaction_id.in_(ids)))
                session.execute(
                    delete(MentorRequest).where(
                        MentorRequest.created_at < cutoff, MentorRequest.status.in_(("resolved", "cancelled"))
                    )
                )
                deleted = len(old)
                Gaps.drop_empty(session)  # gaps whose questions all went with them
        if deleted:
            log.info("retention: deleted %d interactions older than %d days", deleted, self.retention_days)
        return deleted

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything held about a person (`assistant.records.privacy.forget_user`)."""
        return forget_user(self.database, self.xapi, user_id)
