"""Mentoring as the edges use it: the hand-off of a question to a mentor within a workspace (told through the
Slack layer's notifier), the mentors of mentors.yml seeded, and who took a question (who may teach its answer).

    mentoring.handoff(notifier, team_id).request(...)      # assistant.mentoring.handoff.Handoff
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant.access.tenancy import Workspaces
from assistant.access.viewers import Viewers
from assistant.db.database import Database
from assistant.db.models import Interaction, MentorRequest
from assistant.mentoring.handoff import Handoff, HandoffError, HandoffSettings, Notifier
from assistant.mentoring.mentors import MentorError, MentorRegistry
from assistant.records.intake import Intake
from assistant.records.xapi import XapiOutbox
from assistant.settings import Settings

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Mentoring:
    """Hand-offs to the mentors of `mentors`, with the settings' deadlines and attempts."""

    settings: Settings
    database: Database
    mentors: MentorRegistry
    workspaces: Workspaces
    xapi: XapiOutbox
    access: Viewers
    # *Ask a mentor* clicks the database could not take in time, on the host's disk (`record_click` writes
    # them when it is back; wired by the composition root).
    clicks: Intake | None = None

    def seed(self) -> int:
        """Add the mentors of mentors.yml the default workspace does not have yet (several processes may
        race)."""
        try:
            added = self.mentors.seed(self.settings.default_team_id, self.settings.mentors_file)
        except IntegrityError:
            return 0  # another process seeded them at the same moment
        except MentorError as exc:
            log.error("mentors not seeded: %s", exc)
            return 0
        if added:
            log.info("added %d mentors from %s", added, self.settings.mentors_file)
        return added

    def spool_click(self, interaction_id: int, asker_id: str, team_id: str | None, enterprise_id: str | None) -> None:
        """Keep an *Ask a mentor* click on the host's disk (synced) when the database cannot take its request
        in time: `record_click` opens the request when the database is back, and the worker's sweep offers it.
        Raises `OSError` when it cannot be kept."""
        if self.clicks is None:
            raise OSError("no spool for mentor requests")
        row = {"interaction_id": interaction_id, "asker_id": asker_id, "team_id": self.workspaces.team(team_id)}
        self.clicks.spool({**row, "enterprise_id": enterprise_id})

    def record_click(self, row: dict) -> int | None:
        """Open the request of a spooled *Ask a mentor* click, left `searching` for the worker's sweep to offer
        (none when the answer is gone or not the clicker's, or a request is open already). Raises
        `DatabaseUnavailableError`."""
        with self.database.session() as session:
            interaction = session.get(Interaction, row["interaction_id"])
            if interaction is None or interaction.team_id != row["team_id"] or interaction.user_id != row["asker_id"]:
                return None
            question, channel_id, thread_ts = interaction.question, interaction.channel_id, interaction.thread_ts
        try:
            view = self._handoff(None, row["team_id"]).request(
                asker_id=row["asker_id"],
                question=question,
                interaction_id=row["interaction_id"],
                team_id=row["team_id"],
                enterprise_id=row.get("enterprise_id"),
                channel_id=channel_id,
                thread_ts=thread_ts,
                offer=False,
            )
        except HandoffError:
            return None  # asked already (the click's own process may have got through after all)
        return view.id

    def handoff(self, notifier: Notifier, team_id: str | None = None) -> Handoff:
        """Mentor hand-off within the workspace `team_id`, telling people through `notifier` (the Slack
        layer's)."""
        return self._handoff(notifier, self.workspaces.team(team_id))

    def handoff_all(self, notifier: Notifier) -> Handoff:
        """Mentor hand-off over every workspace's requests (the worker's deadline sweep, single-token mode)."""
        return self._handoff(notifier, None)

    def _handoff(self, notifier: Notifier, team_id: str | None) -> Handoff:
        s = self.settings
        return Handoff(
            self.database,
            self.mentors,
            notifier,
            HandoffSettings(s.mentor_offer_minutes, s.mentor_max_attempts, s.mentor_follow_up_hours),
            xapi=self.xapi,
            team_id=team_id,
            visible=self.access.visible_sources,
        )

    def mentors_of_interaction(self, interaction_id: int, team_id: str | None = None) -> set[str]:
        """The mentors who took a request for this interaction's question (who may teach its answer)."""
        with self.database.session() as session:
            owners = session.scalars(
                select(MentorRequest.owner_id).where(
                    MentorRequest.interaction_id == interaction_id,
                    MentorRequest.team_id == self.workspaces.team(team_id),
                )
            )
            return {owner for owner in owners if owner}
