"""The composition root: builds Moment's collaborators from the settings and exposes the use cases that Slack,
the CLI, the web process and the worker call. It holds no behaviour of its own.

    service = MomentService.from_settings(load_settings())
    answer = service.asking.ask("how do i reset my vpn token", Asker(user_id="U123", surface="cli"))
    service.records.vote(answer.interaction_id, "U123", helpful=True)

The use cases, each in its feature package:

- `asking` (`assistant.answering.asking.Asking`): ask, ask in a thread, teach a question its answer, the
  taught pairs;
- `records` (`assistant.records.interactions.Interactions`): questions recorded on arrival and answered,
  votes, who follows a question, a person's recent questions, the answer shown for an interaction;
- `access` (`assistant.access.viewers.Viewers`): what a person may see, an item's audience;
- `mentoring` (`assistant.mentoring.routing.Mentoring`): hand-offs to mentors, seeding mentors.yml;
- `operations` (`assistant.operations.oversight.Oversight`): status, reports, health, index operations;
- `insights` (`assistant.insights.pages.Insights`): what the admin pages show;
- `gaps` (`assistant.insights.gaps.Gaps`): content gaps, their owners, and bringing them up to date;
- `help_channels` (`assistant.helpchannels.HelpDesk`), `retention` (`assistant.records.retention`),
  `audit` (`assistant.records.audit.AuditLog`), `claims` (`assistant.records.deliveries.DeliveryClaims`);
- and the stores they share: `workspaces`, `mentors`, `drafts`, `verified`, `courses`, `xapi`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from assistant.access.audiences import GroupDirectory
from assistant.access.tenancy import Workspaces
from assistant.access.viewers import Viewers
from assistant.answering.asking import Asking
from assistant.answering.demotions import Demotions
from assistant.answering.generation import AnswerGenerator
from assistant.answering.reader import ReaderState, reader_for
from assistant.answering.retrieval import RetrievalParams, Retriever
from assistant.answering.verified import VerifiedAnswers, confirmed_by_votes
from assistant.db.database import Database, DatabaseUnavailableError
from assistant.helpchannels.helpchannels import HelpDesk
from assistant.insights.gaps import Gaps
from assistant.insights.pages import Insights
from assistant.learning.suggestions import CourseSuggestions
from assistant.mentoring.drafts import Drafts
from assistant.mentoring.mentors import MentorRegistry
from assistant.mentoring.routing import Mentoring
from assistant.operations.oversight import Oversight
from assistant.records.audit import AuditLog
from assistant.records.deliveries import DeliveryClaims
from assistant.records.intake import Intake
from assistant.records.interactions import Interactions
from assistant.records.retention import Retention
from assistant.records.spool import InteractionSpool
from assistant.records.xapi import XapiOutbox
from assistant.settings import Settings
from indexer.store import IndexStore

if TYPE_CHECKING:
    from indexer.embedding import Embedder

log = logging.getLogger(__name__)


def load_embedder_for(settings: Settings) -> Embedder:
    """The embedding model the settings name, loaded as a service of those settings uses it."""
    from indexer.embedding import load_embedder

    return load_embedder(
        settings.embedding_model,
        settings.embedding_backend,
        settings.model_cache,
        settings.embedding_threads,
        spinning=not settings.reader,  # two models' spinning threads would fight for the cores
    )


class MomentService:
    """One database, one index (its retriever) and the use cases over them."""

    def __init__(
        self, settings: Settings, database: Database, retriever: Retriever, reader_state: ReaderState | None = None
    ) -> None:
        self.settings = settings
        self.reader_state = reader_state or ReaderState(
            retriever.reader is not None, "on" if retriever.reader else "off"
        )
        self.database = database
        self.retriever = retriever
        # The stores the use cases share.
        self.workspaces = Workspaces(database, settings.default_team_id)
        self.xapi = XapiOutbox(settings, database)
        self.claims = DeliveryClaims(database, settings.home / "spool" / "claims")
        self.mentors = MentorRegistry(database, retriever.embedder)
        self.verified = VerifiedAnswers(database, retriever.embedder)
        self.courses = CourseSuggestions(settings, database, retriever.embedder, self.xapi)  # assistant.learning
        groups = GroupDirectory(
            database,
            max_age=dt.timedelta(minutes=settings.audience_max_age_minutes),
            cache_seconds=settings.audience_cache_seconds,
        )
        self.access = Viewers(groups, retriever.version)
        self.drafts = Drafts(database, self.access.audience_of)
        self.audit = AuditLog(database, self.workspaces)
        # The use cases.
        spool = InteractionSpool(
            settings.home / "spool" / "interactions.jsonl", settings.default_team_id, database.fingerprint
        )
        self.records = Interactions(database, self.workspaces, self.xapi, spool, self.access)
        # Questions received while the database was away (the next process on the host writes them, too).
        self.records.arrivals = Intake(
            settings.home / "spool" / "questions.jsonl", database.fingerprint, self.records.store_receipt
        )
        self.records.ballots = Intake(
            settings.home / "spool" / "votes.jsonl", database.fingerprint, self.records.store_ballot
        )
        self.asking = Asking(
            settings, retriever, self.workspaces, self.verified, self.records, self.access, self.audit, self.courses
        )
        self.records.on_helpful = lambda interaction_id, team_id: confirmed_by_votes(
            self.asking, interaction_id, team_id
        )
        self.asking.demotions = Demotions(database, retriever.embedder)
        self.records.on_not_helpful = self.asking.demote
        self.mentoring = Mentoring(settings, database, self.mentors, self.workspaces, self.xapi, self.access)
        self.mentoring.clicks = Intake(
            settings.home / "spool" / "mentor-clicks.jsonl", database.fingerprint, self.mentoring.record_click
        )
        self.operations = Oversight(
            settings, database, retriever, self.reader_state, self.mentors, self.workspaces, self.xapi, self.access
        )
        self.help_channels = HelpDesk(database, settings.channel_min_confidence, self.workspaces.team)
        self.retention = Retention(database, self.xapi, settings.retention_days)
        self.insights = Insights(settings, database, retriever, self.workspaces)
        self.gaps = Gaps(
            database,
            retriever.embedder,
            ask_again=self.asking.ask_again,
            index_version=lambda: retriever.version().version,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, migrate: bool = True, embedder: Embedder | None = None
    ) -> MomentService:
        """Wire the service from settings: model, index, database (migrated to the latest schema). `embedder`:
        one already loaded with these settings' model, backend and threads (several services in one process)."""
        if embedder is None:
            embedder = load_embedder_for(settings)
        reader, reader_state = reader_for(settings)
        params = RetrievalParams.calibrated(settings.home, reader=reader is not None)
        retriever = Retriever(IndexStore(settings.index_dir, keep=settings.index_keep), embedder, params, reader=reader)
        database = Database.from_settings(settings)
        service = cls(settings, database, retriever, reader_state)
        service.asking.generator = AnswerGenerator.from_settings(settings)  # LLMConfigError: a key file unread
        if migrate:
            try:
                database.upgrade(settings.default_team_id)
                service.mentoring.seed()
            except DatabaseUnavailableError as exc:
                log.warning("database not migrated: %s", exc)
        return service

    @property
    def database_fingerprint(self) -> str:
        """Which database records go to, without credentials (what a host's spool is kept for)."""
        return self.database.fingerprint

    def storage_engine(self):
        """The SQLAlchemy engine of Moment's database, for stores that keep their own tables in it (slack_sdk's
        OAuth installation and state stores): they share its migrations and connection pool."""
        return self.database.engine

    def web_signin_states(self, expiration_seconds: int):
        """slack_sdk's OAuth state store over the `web_signin_states` table: one-time states with an expiry,
        for Sign in with Slack (the install flow keeps its own)."""
        from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

        return SQLAlchemyOAuthStateStore(
            expiration_seconds=expiration_seconds, engine=self.database.engine, table_name="web_signin_states"
        )

    def close(self) -> None:
        """Release the database connections (a process that starts and stops several services)."""
        self.database.dispose()
