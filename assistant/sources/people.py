"""Who the readers of a synced item are in Slack: e-mail -> Slack user id (`users.lookupByEmail`), cached.

Anyone Moment cannot map (no such Slack user, no way to ask Slack) is outside the item's audience: an item
shared at its source with nobody Moment can find is not indexed at all (fail closed).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import select

from assistant.db.database import Database
from assistant.db.models import SourcePerson, utcnow

log = logging.getLogger(__name__)

FOUND_FOR = dt.timedelta(days=7)  # a mapping found is kept this long
MISSING_FOR = dt.timedelta(hours=1)  # "no such user" is asked again sooner (they may join Slack)


class PeopleDirectory:
    """E-mail -> Slack user id of one workspace, through `client` (a slack_sdk WebClient, or None: nobody
    can be looked up, so only cached mappings count)."""

    def __init__(self, database: Database, client=None, team_id: str = "default") -> None:
        self.database = database
        self.client = client
        self.team_id = team_id

    def slack_ids(self, emails: Iterable[str], now: dt.datetime | None = None) -> dict[str, str | None]:
        """{e-mail: Slack user id, or None when they are not (known to be) in Slack}."""
        now = now or utcnow()
        wanted = sorted({e.strip().lower() for e in emails if e and "@" in e})
        out: dict[str, str | None] = {}
        with self.database.session() as session:
            cached = {
                row.email: row
                for row in session.scalars(
                    select(SourcePerson).where(SourcePerson.team_id == self.team_id, SourcePerson.email.in_(wanted))
                )
            }
            for email in wanted:
                row = cached.get(email)
                if row is not None and now - row.looked_up_at < (FOUND_FOR if row.user_id else MISSING_FOR):
                    out[email] = row.user_id
                    continue
                found, answered = self._lookup(email)
                if not answered:  # Slack could not be asked: an older mapping is better than none
                    out[email] = row.user_id if row is not None else None
                    continue
                out[email] = found
                if row is None:
                    session.add(SourcePerson(team_id=self.team_id, email=email, user_id=found, looked_up_at=now))
                else:
                    row.user_id, row.looked_up_at = found, now
        return out

    def _lookup(self, email: str) -> tuple[str | None, bool]:
        """(user id or None, whether Slack answered)."""
        if self.client is None:
            return None, False
        from slack_sdk.errors import SlackApiError

        try:
            user = self.client.users_lookupByEmail(email=email)["user"]
        except SlackApiError as exc:
            if exc.response.get("error") == "users_not_found":
                return None, True
            log.warning("users.lookupByEmail failed: %s", exc.response.get("error"))
            return None, False
        except Exception as exc:  # the network: try again next sync
            log.warning("users.lookupByEmail failed: %r", exc)
            return None, False
        if user.get("deleted") or user.get("is_bot"):
            return None, True
        return user.get("id"), True
