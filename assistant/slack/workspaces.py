"""Which workspace a Slack request belongs to, and whether its sender belongs to our organisation.

Every request is read within one workspace (`assistant.tenancy`): in single-token mode the default
workspace; with OAuth installs the workspace whose installation Bolt authorised the request with (for an
org-wide Enterprise Grid install without a workspace in the payload, the org itself).

Slack Connect: in a channel shared with another organisation (`is_ext_shared_channel`), Moment answers
only people of its own organisation: the sender's workspace (`user_team`, or the event's `team`) must be
the installation's, or the sender's Grid org the installation's org. Anyone else (or anyone Slack does not
say) is an outsider: a mention gets a short private note and nothing from the content; a message in a
help channel gets nothing at all. People of our organisation are answered privately there, never in the
channel, where outsiders would read internal content.
"""

from __future__ import annotations

from slack_bolt import BoltContext

from assistant.settings import Settings

TEAM = "moment_team"  # context keys set by `tag_request`
OUTSIDER = "moment_outsider"
SHARED = "moment_shared"

OUTSIDER_NOTE = (
    "Sorry, I can only help people in the organisation that runs me. Please ask in your own organisation's channels."
)


def tag_request(settings: Settings):
    """Bolt global middleware: puts the workspace and the sender's standing on the context."""

    def middleware(context: BoltContext, body: dict, next) -> None:
        if settings.multi_workspace:
            context[TEAM] = context.team_id or context.enterprise_id or settings.default_team_id
        else:
            context[TEAM] = settings.default_team_id
        shared = bool(body.get("is_ext_shared_channel"))
        context[SHARED] = shared
        context[OUTSIDER] = shared and not _own_organisation(body, context)
        next()

    return middleware


def team_of(context: BoltContext) -> str:
    """The workspace the request belongs to."""
    return context[TEAM]


def _own_organisation(body: dict, context: BoltContext) -> bool:
    event = body.get("event") or {}
    sender = event.get("user_team") or event.get("team")
    if sender is None:
        return False  # Slack doesn't say: not shown anything internal
    if context.team_id and sender == context.team_id:
        return True
    # Enterprise Grid: another workspace of the same org (Slack may give the org id itself)
    return bool(context.enterprise_id) and (
        sender == context.enterprise_id or context.actor_enterprise_id == context.enterprise_id
    )
