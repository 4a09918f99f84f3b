"""The audit log of each workspace: who did what, and whether they were allowed (admin commands, teaching
answers, installs, uninstalls).

    audit.record("U123", "verify", True, "#4 'how do i reset my token' -> it/vpn.md", team_id="T1")
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.access.tenancy import Workspaces
from assistant.db.database import Database
from assistant.db.models import AuditEvent


@dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class AuditLog:
    """Writes audit events, each in its workspace's log."""

    database: Database
    workspaces: Workspaces

    def record(
        self,
        user_id: str,
        action: str,
        allowed: bool,
        detail: str | None = None,
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> None:
        """Write an audit event in the workspace's log (admin commands, installs, uninstalls)."""
        with self.database.session() as session:
            session.add(
                AuditEvent(
                    user_id=user_id,
                    action=action,
                    allowed=allowed,
                    detail=detail,
                    team_id=self.workspaces.team(team_id),
                    enterprise_id=enterprise_id,
                )
            )
