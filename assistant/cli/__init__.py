"""The `moment` command: the front door for operators, admins and other tools.

Every command works on the embedded defaults (see `assistant.settings`). Commands with `--json` print
one JSON object whose keys other tools rely on. This module is the table of contents; each topic's
commands live in a module of their own, and `common` holds what they share.

Public surface: `main` (the `moment` entry point) and the exit statuses `EXIT_OK`, `EXIT_ERROR`, `EXIT_PARTIAL`.
"""

from assistant.cli import asking, content, courses, demotions, gaps, model, people, records, serving, sources, verified
from assistant.cli.common import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main

for command in (
    model.model,  # prepare, train-reader, export-reader, train-embedder
    content.index_command,
    asking.ask,
    content.eval_command,
    serving.serve,
    serving.worker,
    records.report_command,
    records.export_command,
    gaps.gaps,  # show, assign, close, reopen, refresh
    people.workspace,  # list, content
    people.forget,
    records.xapi,  # flush, status
    content.demo,
    verified.verify,
    verified.verified,  # list, remove
    demotions.demotions,  # list, remove
    sources.source,  # add, list, show, sync, remove
    courses.courses,  # import, embed, list
):
    main.add_command(command)

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "main"]
