"""Installing Moment in many workspaces (OAuth), and uninstalling it.

With SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and MOMENT_BASE_URL set and no SLACK_BOT_TOKEN, Bolt runs the
OAuth flow: `GET /slack/install` offers *Add to Slack* with a one-time `state` (kept in the database, and
in a cookie of the installer's browser), `GET /slack/oauth_redirect` checks it, exchanges the code with
`oauth.v2.access` (through SLACK_API_URL) and saves the installation with slack_sdk's SQLAlchemy
installation store, on the application's database (the tables come from our migrations). Bolt then
answers each request with the bot token of the workspace it came from.

`app_uninstalled` and `tokens_revoked` delete that workspace's tokens at once (Bolt's own revocation
handling), and the workspace is marked uninstalled and audited; a later request from it finds no token,
so nothing is called. Its records stay and follow MOMENT_RETENTION_DAYS like everyone's.
"""

from __future__ import annotations

import logging

from slack_bolt import BoltContext, BoltResponse
from slack_bolt.listener.builtins import TokenRevocationListeners
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from assistant.db.database import DatabaseUnavailableError
from assistant.service import MomentService

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600  # how long an *Add to Slack* link stays good
# The bot scopes an install asks for: the same as manifest.yml's (tests/test_installation.py checks).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:write",
    "reactions:write",
    "users:read",
    "usergroups:read",
)


class Installations:
    """OAuth installs over slack_sdk's SQLAlchemy stores, on the service's database."""

    def __init__(self, service: MomentService) -> None:
        settings = service.settings
        self.service = service
        self.settings = settings
        engine = service.storage_engine()
        self.store = SQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=engine)
        self.states = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine)
        self._revocation = TokenRevocationListeners(self.store)

    def oauth_settings(self) -> OAuthSettings:
        s = self.settings
        return OAuthSettings(
            client_id=s.slack_client_id,
            client_secret=s.slack_client_secret.get_secret_value(),
            scopes=list(BOT_SCOPES),
            redirect_uri=s.base_url.rstrip("/") + REDIRECT_PATH,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=self.store,
            installation_store_bot_only=True,
            state_store=self.states,
            state_expiration_seconds=STATE_SECONDS,
            callback_options=CallbackOptions(success=self._installed, failure=self._failed),
        )

    def _installed(self, args: SuccessArgs) -> BoltResponse:
        installation = args.installation
        team = installation.team_id or installation.enterprise_id
        name = installation.team_name or installation.enterprise_name
        self.service.workspaces.installed(team, installation.enterprise_id, name, installation.user_id)
        detail = "org-wide install" if installation.is_enterprise_install else "workspace install"
        self.service.audit.record(installation.user_id, "app_installed", True, detail, team_id=team)
        log.info("Moment installed in %s (%s)", team, detail)
        return args.default.success(args)

    def _failed(self, args: FailureArgs) -> BoltResponse:
        log.warning("an install was refused: %s", args.reason)  # e.g. invalid_state, access_denied
        return args.default.failure(args)

    def uninstalled(self, context: BoltContext) -> None:
        """`app_uninstalled`: every token of the workspace goes."""
        self._revocation.handle_app_uninstalled_events(context)

    def revoked(self, event: dict, context: BoltContext) -> None:
        """`tokens_revoked`: the revoked tokens go (the bot's: all of the workspace's bot tokens)."""
        self._revocation.handle_tokens_revoked_events(event, context)

    def client_for_workspace(self, team_id: str, base: WebClient) -> WebClient | None:
        """`client_for` one of Moment's workspaces (its Grid org, if any, from the workspaces table)."""
        workspace = self.service.workspaces.get(team_id)
        return self.client_for(team_id, workspace.enterprise_id if workspace else None, base)

    def client_for(self, team_id: str | None, enterprise_id: str | None, base: WebClient) -> WebClient | None:
        """A client with the workspace's bot token (None when it has none: uninstalled), like `base`."""
        try:
            bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
            if bot is None and enterprise_id:  # an org-wide install (its workspace is the org)
                bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True)
        except Exception as exc:  # the store reports database errors as they come
            raise DatabaseUnavailableError(f"The installation store is unavailable ({type(exc).__name__}).") from exc
        if bot is None or not bot.bot_token:
            return None
        return WebClient(
            token=bot.bot_token,
            base_url=base.base_url,
            timeout=base.timeout,
            retry_handlers=list(base.retry_handlers or []),
        )
