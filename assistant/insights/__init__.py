"""Insights for L&D: what the admin pages show, aggregated in the database, and the content gaps with their
owners. Knows nothing of HTTP or Slack.

Every figure is one workspace's (`team_id`) over a `Period`, computed with GROUP BY in SQL (a page is a few
queries, whatever the number of interactions; Overview and Content sum the daily roll-ups of `rollups` for
the days they hold and count the others live), with the definitions of `assistant.records.reports`: a
question is any interaction but an empty one, "answered" is of the questions searched (system errors left
out), "helpful" is of the votes.

  overview.overview(...)           questions per week, answered %, helpful %, hand-offs, median minutes to a
                                   mentor, active askers; each against the period before
  effectiveness.content_items(...) per content item: shown first, helpful / not helpful, hand-offs after it
                                   was shown first, last reviewed, stale; worst first, or sorted by a column
  questions.question_page(...)     the questions of a period, newest first, a page at a time, filtered by what
                                   became of them; askers and text shown as `Privacy` allows
  mentors.mentor_figures(...)      per mentor: offers, accepted, declined, timed out, resolved, median minutes
                                   to respond
  rollups.roll_up(...)             the closed days of each workspace rolled up, changed days recomputed (the
                                   worker's `insight-rollups` job; `Insights.roll_up`)
  gaps.Gaps                        content gaps: declined, voted-down and handed-off questions clustered by
                                   meaning (label, size, examples, trend), given to an owner, closed by an
                                   admin or when re-asking finds them answered, with their history
                                   (`clustering`: grouping and labels, no database; `gap_inputs`: which
                                   questions, their kept embeddings; `gap_views`: what the edges receive)

Public surface: `Period`, `Overview`, `overview`, `ContentItem`, `content_items`, `CONTENT_SORTS`,
`QuestionRow`, `QuestionPage`, `question_page`, `OUTCOME_FILTERS`, `Privacy`, `MentorRow`, `mentor_figures`;
`Gaps`, `GapSummary`, `GapDetail`, `GapQuestionView`, `GapEventView`, `GapError`, `GapNotFound`, `RefreshResult`,
`RecheckResult`, `GAP_STATUSES`.
"""

from assistant.insights.effectiveness import CONTENT_SORTS, ContentItem, content_items
from assistant.insights.gap_views import (
    GapDetail,
    GapEventView,
    GapQuestionView,
    GapSummary,
    RecheckResult,
    RefreshResult,
)
from assistant.insights.gaps import STATUSES as GAP_STATUSES
from assistant.insights.gaps import GapError, GapNotFound, Gaps
from assistant.insights.mentors import MentorRow, mentor_figures
from assistant.insights.overview import Overview, overview
from assistant.insights.period import Period
from assistant.insights.questions import OUTCOME_FILTERS, Privacy, QuestionPage, QuestionRow, question_page

__all__ = [
    "CONTENT_SORTS",
    "GAP_STATUSES",
    "OUTCOME_FILTERS",
    "ContentItem",
    "GapDetail",
    "GapError",
    "GapEventView",
    "GapNotFound",
    "GapQuestionView",
    "GapSummary",
    "Gaps",
    "MentorRow",
    "Overview",
    "Period",
    "Privacy",
    "QuestionPage",
    "QuestionRow",
    "RecheckResult",
    "RefreshResult",
    "content_items",
    "mentor_figures",
    "overview",
    "question_page",
]
