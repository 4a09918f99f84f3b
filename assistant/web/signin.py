"""Sign in with Slack (OpenID Connect through slack_sdk), without HTTP framework: the authorize URL, and the
code exchanged for an id_token whose signature (Slack's JWKS), issuer, audience, expiry and nonce are checked.

Slack's addresses come from the settings: `MOMENT_SLACK_URL` (authorize, keys, the issuer) and `SLACK_API_URL`
(`openid.connect.token`), so a stand-in on loopback can play Slack in tests.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import jwt
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator

from assistant.settings import Settings

log = logging.getLogger(__name__)

SCOPES = ["openid", "profile", "email"]
LEEWAY_SECONDS = 30  # clock skew tolerated on iat / exp


class SignInError(Exception):
    """Sign-in failed; the message is safe to show (it names no token, code or key)."""


@dataclass(frozen=True)
class SlackIdentity:
    user_id: str
    team_id: str
    name: str
    email: str | None


class SlackSignIn:
    """The relying party: `authorize_url(state, nonce, redirect_uri)`, then `identity(code, nonce, redirect_uri)`."""

    def __init__(self, settings: Settings) -> None:
        if not (settings.slack_client_id and settings.slack_client_secret):
            raise SignInError("Sign in with Slack needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        self.client_id = settings.slack_client_id
        self.client_secret = settings.slack_client_secret.get_secret_value()
        self.issuer = settings.slack_url.rstrip("/")
        self.authorization_url = f"{self.issuer}/openid/connect/authorize"
        self.client = WebClient(base_url=settings.slack_api_url, timeout=int(settings.slack_timeout_seconds))
        self.keys = jwt.PyJWKClient(f"{self.issuer}/openid/connect/keys", lifespan=3600, timeout=10)

    def authorize_url(self, state: str, nonce: str, redirect_uri: str) -> str:
        generator = OpenIDConnectAuthorizeUrlGenerator(
            client_id=self.client_id,
            scopes=SCOPES,
            redirect_uri=redirect_uri,
            authorization_url=self.authorization_url,
        )
        return generator.generate(state=state, nonce=nonce)

    def identity(self, code: str, nonce: str, redirect_uri: str) -> SlackIdentity:
        """Exchange `code` at Slack and check the id_token; SignInError for anything short of a valid one."""
        try:
            response = self.client.openid_connect_token(
                client_id=self.client_id, client_secret=self.client_secret, code=code, redirect_uri=redirect_uri
            )
        except SlackApiError as exc:
            raise SignInError(f"Slack did not accept the sign-in ({exc.response.get('error')})") from None
        except Exception as exc:  # Slack unreachable
            log.warning("openid.connect.token failed: %s", type(exc).__name__)
            raise SignInError("Slack could not be reached to finish signing in") from None
        try:
            key = self.keys.get_signing_key_from_jwt(response["id_token"])
            claims = jwt.decode(
                response["id_token"],
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "sub", "nonce"]},
            )
        except (jwt.PyJWTError, KeyError) as exc:
            log.warning("an id_token was refused: %s", type(exc).__name__)
            raise SignInError("Slack's answer could not be verified") from None
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            log.warning("an id_token was refused: its nonce is not this sign-in's")
            raise SignInError("Slack's answer belongs to another sign-in")
        user, team = claims.get("https://slack.com/user_id"), claims.get("https://slack.com/team_id")
        if not user or not team:
            raise SignInError("Slack's answer names no person or workspace")
        return SlackIdentity(user, team, str(claims.get("name") or user), claims.get("email"))
