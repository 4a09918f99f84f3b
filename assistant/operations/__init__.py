"""Operations: indexing (one path for the CLI, Slack and the worker), index versions published through the
database so every host picks them up, and the status an admin reads. Knows nothing of Slack.

Public surface: `IndexOperations`, `RunView`, `Status`, `collect_status`.
"""

from assistant.operations.operations import IndexOperations, RunView, Status, collect_status

__all__ = ["IndexOperations", "RunView", "Status", "collect_status"]
