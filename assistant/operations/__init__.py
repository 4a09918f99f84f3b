"""Operations: indexing (one path for the CLI, Slack and the worker), index versions published through the
database so every host picks them up, and what an operator or admin reads (`oversight`: status, reports,
health). Knows nothing of Slack.

Public surface: `IndexOperations`, `RunView`, `Status`, `Oversight`.
"""

from assistant.operations.operations import IndexOperations, RunView, Status
from assistant.operations.oversight import Oversight

__all__ = ["IndexOperations", "Oversight", "RunView", "Status"]
