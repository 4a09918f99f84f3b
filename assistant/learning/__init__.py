"""Learning: from questions to courses. Knows nothing of Slack or the web.

`catalogue` reads a course catalogue (CSV or JSON file: `read_catalogue`; an LMS: `lms.Learning360`, 360Learning's
API v2 paths), validates it row by row and stores it per workspace (`store_entries`), embeds it for matching
(`embed_pending`) and lists it (`list_courses`). `suggestions` counts a person's questions about one course's
topic and suggests the course once (`CourseSuggestions`), records clicks through signed links (`links`) and
Not now, and gives per-course figures (`CourseSuggestions.stats`).

Public surface, for the edges (CLI, Slack, the admin web app):
- the catalogue: `import_file(database, path, team_id, embedder=...)`, `import_lms(database, lms, team_id, ...)`
  -> `ImportResult`;
  `list_courses(database, team_id)` -> [`CourseView`]; `count_courses`; `CatalogueError`, `LmsError`, `Learning360`;
- figures: `course_stats(database, team_id)` -> [`CourseStats`] (suggested, clicked, dismissed, completed per
  course ever suggested);
- suggestions: `service.courses` (a `CourseSuggestions`): `.stats(team_id)` (the same), `.click(token)`,
  `.dismiss(suggestion_id, user_id, team_id)`, `.refresh_completions(team_id)`, `.suggestions_of(user_id, team_id)`.

    from assistant.learning import import_file, list_courses
    result = import_file(service.database, Path("catalogue.csv"), "T024BE7LD", embedder=service.retriever.embedder)
    result.errors                                   # [RowError("line 7", "url", "missing"), ...]
    for course in list_courses(service.database, "T024BE7LD"): ...
    for row in course_stats(service.database, "T024BE7LD"): row.suggested, row.clicked, row.completed
"""

from __future__ import annotations

from pathlib import Path

from assistant.learning.catalogue import (
    CatalogueError,
    CourseView,
    ImportResult,
    count_courses,
    embed_pending,
    entries_from,
    list_courses,
    read_catalogue,
    store_entries,
)
from assistant.learning.lms import Learning360, LmsError
from assistant.learning.suggestions import CourseStats, CourseSuggestions, course_stats, suggestion_sentence


def import_file(database, path: Path, team_id: str, *, embedder=None) -> ImportResult:
    """Import a CSV or JSON catalogue into the workspace (valid rows kept, bad rows in `errors`), then, with an
    `embedder`, embed what is new or changed. Raises `CatalogueError` when the file is not a catalogue at all."""
    entries, errors = read_catalogue(path)
    return _store(database, entries, errors, team_id, "file", embedder)


def import_lms(database, lms: Learning360, team_id: str, *, embedder=None) -> ImportResult:
    """Import an LMS's paths into the workspace. Raises `LmsError` when the LMS cannot be read (nothing is
    stored then)."""
    entries, errors = entries_from(lms.rows())
    return _store(database, entries, errors, team_id, "360learning", embedder)


def _store(database, entries, errors, team_id: str, origin: str, embedder) -> ImportResult:
    result = store_entries(database, team_id, entries, origin)
    result.errors = errors
    if embedder is not None:
        result.embedded = embed_pending(database, embedder, team_id)
    return result


__all__ = [
    "CatalogueError",
    "CourseStats",
    "CourseSuggestions",
    "CourseView",
    "ImportResult",
    "Learning360",
    "LmsError",
    "count_courses",
    "course_stats",
    "embed_pending",
    "import_file",
    "import_lms",
    "list_courses",
    "suggestion_sentence",
]
