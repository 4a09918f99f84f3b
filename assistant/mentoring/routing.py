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
from assistant.db.models import MentorRequest
from assistant.mentoring.handoff import Handoff, HandoffSettings, Notifier
from assistant.mentoring.mentors import MentorError, MentorRegistry
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
