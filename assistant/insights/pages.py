"""The use case of the admin pages (`assistant.web`): each page's figures for a workspace and a period, from the
modules of this package, with the index's items for the content page and what admins may see of questions.

    insights.overview(Period.last(28), "T1").questions
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from assistant.access.tenancy import Workspaces
from assistant.answering.retrieval import Retriever
from assistant.db.database import Database
from assistant.insights.effectiveness import CatalogueItem, content_items
from assistant.insights.mentors import mentor_figures as figures_of_mentors
from assistant.insights.overview import overview as figures_overview
from assistant.insights.questions import Privacy, question_page
from assistant.insights.questions import all_questions as every_question
from assistant.records.xapi import pseudonym_key
from assistant.settings import Settings

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Insights:
    """What the admin pages show, of the index `retriever` serves and the records in `database`."""

    settings: Settings
    database: Database
    retriever: Retriever
    workspaces: Workspaces

    def content_catalogue(self, today: dt.date | None = None) -> list:
        """Every item of the index as the content page lists it (`assistant.insights.effectiveness`); empty
        while no index is loaded."""
        try:
            documents = self.retriever.version().documents
        except Exception as exc:  # no index yet: the page still shows what answers came from
            log.warning("content page without the index: %s", exc)
            return []
        return [
            CatalogueItem(d.path, d.meta.title, d.meta.type, d.meta.reviewed, d.meta.is_stale(today)) for d in documents
        ]

    def overview(self, period, team_id: str | None = None):
        """The overview figures of `period` against the period before (`assistant.insights.overview`)."""
        return figures_overview(self.database, self.workspaces.team(team_id), period)

    def content_effectiveness(self, period, team_id: str | None = None, *, sort: str = "worst", descending=False):
        """Every content item and how it did in `period` (`assistant.insights.content_items`)."""
        catalogue = self.content_catalogue(period.end.date())
        return content_items(
            self.database, self.workspaces.team(team_id), period, catalogue, sort=sort, descending=descending
        )

    def question_privacy(self):
        """What admins may see of people's questions (`assistant.insights.Privacy`)."""
        s = self.settings
        return Privacy(show_text=s.web_question_text, pseudonymise=s.xapi_pseudonymise, key=pseudonym_key(s))

    def questions(self, period, team_id: str | None = None, *, show: str = "all", before: int | None = None):
        """A page of the period's questions, newest first (`assistant.insights.question_page`)."""
        return question_page(
            self.database, self.workspaces.team(team_id), period, self.question_privacy(), show=show, before=before
        )

    def all_questions(self, period, team_id: str | None = None, *, show: str = "all"):
        """Every question of the period, streamed (`assistant.insights.questions.all_questions`)."""
        return every_question(self.database, self.workspaces.team(team_id), period, self.question_privacy(), show=show)

    def mentor_figures(self, period, team_id: str | None = None):
        """Every mentor and how they responded in `period` (`assistant.insights.mentor_figures`)."""
        return figures_of_mentors(self.database, self.workspaces.team(team_id), period)

    def course_catalogue(self, team_id: str | None = None, *, limit: int | None = None, offset: int = 0):
        """The workspace's courses by title, a page at a time, and how many there are (`assistant.learning`)."""
        from assistant.learning import count_courses, list_courses

        team = self.workspaces.team(team_id)
        return list_courses(self.database, team, limit=limit, offset=offset), count_courses(self.database, team)

    def course_figures(self, period, team_id: str | None = None) -> list:
        """Per course suggested in `period`: suggested, clicked, Not now, completed; most suggested first."""
        from assistant.learning import course_stats

        return course_stats(self.database, self.workspaces.team(team_id), since=period.start)

    def roll_up(self, team_ids, now: dt.datetime | None = None) -> list:
        """Roll up the workspaces' closed days for the admin pages, and recompute the days changed since
        (`assistant.insights.rollups.roll_up`)."""
        from assistant.insights.rollups import roll_up

        return roll_up(self.database, [self.workspaces.team(t) for t in team_ids], now)
