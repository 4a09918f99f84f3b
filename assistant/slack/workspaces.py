"""Which workspace a Slack request belongs to, and whether its sender belongs to our organisation.

Every request is read within one workspace (`assistant.access.tenancy`): in single-token mode the default
workspace; with OAuth installs the installation Bolt authorised the request with: a workspace's team id,
or for an org-wide Enterprise Grid install the org's enterprise id (the org is one workspace for Moment:
one set of mentors, settings and reports for everyone in it).

Slack Connect: in a channel shared with another organisation (`is_ext_shared_channel`), Moment answers
only people of its own organisation: the sender's workspace (`user_team`, or the event's `team`) must be
the installation's, or the sender's Grid org the installation's org. Anyone else (or anyone Slack does not
say) is an outsider: a mention or a DM gets a short note and nothing from the content; a message in a help
channel gets nothing at all; a command, shortcut or button click is answered with the note alone (no
listener runs). People of our organisation are answered privately there, never in the
channel, where outsiders would read internal content.
"""

from __future__ import annotations

from slack_bolt import BoltContext, BoltResponse

from assistant.settings import Settings

TEAM = "moment_team"  # context keys set by `tag_request`
OUTSIDER = "moment_outsider"
SHARED = "moment_shared"

OUTSIDER_NOTE = (
    "Sorry, I can only help people in the organisation that runs me. Please ask in your own organisation's channels."
)


def tag_request(settings: Settings):
    """Bolt global middleware: puts the workspace and the sender's standing on the context."""

    def middleware(context: BoltContext, body: dict, next) -> BoltResponse | None:
        if settings.multi_workspace:
            # An org-wide install serves its whole Grid org as one workspace; any other, its own workspace.
            org_wide = context.is_enterprise_install and context.enterprise_id
            context[TEAM] = (context.enterprise_id if org_wide else context.team_id) or settings.default_team_id
        else:
            context[TEAM] = settings.default_team_id
        context[SHARED] = bool(body.get("is_ext_shared_channel"))
        context[OUTSIDER] = _is_outsider(body, context)
        if context[OUTSIDER] and body.get("type") != "event_callback":
            # A command, shortcut or click from another organisation (Slack Connect): nothing internal.
            # A slash command shows this text to its sender alone; the listeners see nothing.
            return BoltResponse(status=200, body=OUTSIDER_NOTE)
        return next()

    return middleware


def team_of(context: BoltContext) -> str:
    """The workspace the request belongs to."""
    return context[TEAM]


def _sender_team(body: dict) -> str | None:
    """The sender's own workspace (or Grid org), as the payload says it."""
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        return event.get("user_team") or event.get("team")
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    team = body.get("team") if isinstance(body.get("team"), dict) else {}
    return user.get("team_id") or body.get("team_id") or team.get("id")


def _is_outsider(body: dict, context: BoltContext) -> bool:
    """The sender is of another organisation than the installation's. In a shared channel, a sender Slack
    does not name is one too."""
    sender = _sender_team(body)
    if sender is None:
        return bool(body.get("is_ext_shared_channel"))
    # The installation's workspace (not the context's team: for a command that is the sender's own)
    installed = context.authorize_result.team_id if context.authorize_result else None
    if installed and sender == installed:
        return False
    # Enterprise Grid: another workspace of the installation's org (Slack may name the org itself)
    org = context.enterprise_id
    return not (org and (sender == org or context.actor_enterprise_id == org))
