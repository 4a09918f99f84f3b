"""What operators and admins see of a running Moment: its status (`/moment status`, an admin's App Home), the
L&D report, whether this process can answer (`/healthz`), and the index operations (indexing, re-index runs,
publication) of the index it serves.

    oversight.status("T1").index_version
    oversight.indexing.index()            # assistant.operations.operations.IndexOperations
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import select

from assistant.access.tenancy import Workspaces
from assistant.access.viewers import Viewers
from assistant.answering.reader import ReaderState
from assistant.answering.retrieval import Retriever
from assistant.db.database import Database
from assistant.db.models import REQUEST_OPEN, MentorRequest, utcnow
from assistant.mentoring.mentors import MentorRegistry
from assistant.operations.operations import IndexOperations, Status
from assistant.records.reports import build_report
from assistant.records.xapi import XapiOutbox
from assistant.settings import Settings
from indexer.store import IndexMissingError

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Oversight:
    """Status, reports and health of the service these collaborators make up."""

    settings: Settings
    database: Database
    retriever: Retriever
    reader_state: ReaderState
    mentors: MentorRegistry
    workspaces: Workspaces
    xapi: XapiOutbox
    access: Viewers

    @cached_property
    def indexing(self) -> IndexOperations:
        """Indexing, re-index runs and publication for this service's index (one per service, so that its
        runs queue on one lock in this process)."""
        return IndexOperations(self.settings, self.database, self.retriever.store, self.retriever.embedder)

    def status(self, team_id: str | None = None, today: dt.date | None = None) -> Status:
        """Everything `/moment status` shows for a workspace (its mentors and requests; the index is everyone's);
        parts that fail are reported, not raised."""
        team_id = self.workspaces.team(team_id)
        today = today or dt.date.today()
        status = Status()
        try:
            version = self.retriever.version()
            status.index_version = version.version
            status.index_age = utcnow() - version.created_at
            status.by_type = version.meta.get("by_type", {})
            status.documents = len(version.documents)
            status.chunks = version.size
            status.stale = sorted(
                ((d.path, d.meta.title, d.meta.review_due()) for d in version.documents if d.meta.is_stale(today)),
                key=lambda s: s[2],
            )
        except (IndexMissingError, Exception) as exc:
            status.index_problem = str(exc)
        status.reader = self.reader_state.description
        status.reader_problem = self.reader_state.problem
        status.runs = self.indexing.recent_runs(5)
        stats = self.mentors.stats(team_id)
        status.mentors_total = sum(1 for s in stats if s.mentor.vetted)
        status.mentors_available = sum(1 for s in stats if s.available_now)
        with self.database.session() as session:
            for request in session.scalars(
                select(MentorRequest).where(
                    MentorRequest.team_id == team_id, MentorRequest.status.in_((*REQUEST_OPEN, "accepted"))
                )
            ).all():
                status.open_requests[request.status] = status.open_requests.get(request.status, 0) + 1
        names = self.access.audience_names()
        if names:
            status.restricted_items = len(self.retriever.version().restricted)
            try:
                status.groups = self.access.groups.status(None, names)
            except Exception as exc:  # the database: reported like the rest
                log.warning("user group status unavailable: %r", exc)
        try:
            from assistant.sources import Sources

            status.sources = Sources(self.indexing).list()
        except Exception as exc:  # the database: reported like the rest
            log.warning("content sources unavailable: %r", exc)
        if self.xapi.enabled:
            x = self.xapi.status()
            status.xapi = {"queued": x.queued, "sent": x.sent, "rejected": x.rejected}
        return status

    def report(
        self, days: int = 7, now: dt.datetime | None = None, team_id: str | None = None, *, for_everyone: bool = False
    ):
        """The workspace's L&D report for `days` days up to `now` (`assistant.records.reports.build_report`).
        `for_everyone`: a report posted where non-admins read it (the weekly digest) names no item restricted
        to some groups."""
        hidden = None
        if for_everyone:
            hidden = lambda path, recorded: bool(self.access.audience_of(path, recorded))  # noqa: E731
        return build_report(
            self.database, days, self.retriever.embedder, now=now, hidden=hidden, team_id=self.workspaces.team(team_id)
        )

    def health(self) -> tuple[bool, dict[str, str]]:
        """Whether this process can answer: the database reachable and taking writes, and an index loaded
        (with what failed). It may take as long as the database does: `/healthz` runs it with a deadline."""
        checks: dict[str, str] = {}
        ok = True
        try:
            self.database.check_writable()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = str(exc)
            ok = False
        try:
            version = self.retriever.version()
            checks["index"] = "ok"
            checks["index_version"] = version.version
            checks["chunks"] = str(version.size)
        except Exception as exc:
            checks["index"] = str(exc)
            ok = False
        return ok, checks

    def warm_up(self) -> None:
        """Load the index now, not on the first question (raises what loading it raises)."""
        self.retriever.version()

    def documents_past_review(self, today: dt.date) -> list:
        """The indexed documents with an owner and a review date that has passed."""
        return [d for d in self.retriever.version().documents if d.meta.owner and d.meta.is_stale(today)]
