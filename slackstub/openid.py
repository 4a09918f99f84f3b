"""Sign in with Slack (OpenID Connect) on the stand-in: Slack's authorize page, `openid.connect.token` and
the signing keys, as Slack documents them (https://docs.slack.dev/authentication/sign-in-with-slack).

    slack.openid.sign_in_as("U0ADMIN01", team_id="T0MOMENT1", name="Ada")   # who approves at the next authorize
    GET  {base}/openid/connect/authorize?response_type=code&scope=openid%20profile%20email&client_id=..
         &redirect_uri=..&state=..&nonce=..     -> 302 to redirect_uri?code=..&state=..  (error=access_denied
                                                   when nobody is set to sign in)
    POST {base}/api/openid.connect.token (HTTP Basic client id / secret, code, redirect_uri)
         -> {"ok": true, "access_token", "token_type": "Bearer", "id_token"}   (RS256, `kid` in the header)
    GET  {base}/openid/connect/keys              -> the JWKS

The id_token carries Slack's claims: iss (the stand-in's base URL, where Slack's is https://slack.com), sub,
aud (the client id), iat, exp, auth_time, nonce, `https://slack.com/user_id`, `https://slack.com/team_id`,
`https://slack.com/team_name`, name, email. `tamper` changes the next id_token (claims replaced, or
`foreign_key=True`: signed with a key the JWKS does not hold) for the tests of a forged token.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CODE_SECONDS = 600  # Slack's codes expire after ten minutes
TOKEN_SECONDS = 3600


@dataclass
class Person:
    user_id: str
    team_id: str
    name: str = "Test Person"
    email: str = "person@example.com"
    team_name: str = "Moment test workspace"


class OpenIDProvider:
    """The OpenID Connect side of `SlackAPIStub` (`stub.openid`)."""

    def __init__(self, stub) -> None:
        self.stub = stub
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"moment-stub-{uuid.uuid4().hex[:8]}"
        self.person: Person | None = None
        self.codes: dict[str, tuple[Person, str | None, str, str, float]] = {}
        self.tampering: dict = {}
        self.authorized: list[dict] = []  # the query of every authorize request
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def sign_in_as(self, user_id: str, team_id: str, **details) -> None:
        """Who approves the next sign-ins (until changed); None-like: nobody (access_denied)."""
        self.person = Person(user_id, team_id, **details)

    def tamper(self, foreign_key: bool = False, **claims) -> None:
        """Change the next id_token only: other claims (e.g. nonce="x", exp=0), or a signature by another key."""
        self.tampering = {"foreign_key": foreign_key, "claims": claims}

    # -- the three endpoints ------------------------------------------------------------------------

    def authorize(self, query: str) -> tuple[int, dict[str, str]]:
        params = dict(parse_qsl(query))
        self.authorized.append(params)
        redirect = params.get("redirect_uri", "")
        if params.get("client_id") != self.stub.client_id or not redirect or params.get("response_type") != "code":
            return 400, {}
        if "openid" not in params.get("scope", "").replace(",", " ").split():  # slack_sdk joins them with commas
            return 400, {}
        back = {"state": params.get("state", "")}
        if self.person is None:
            back["error"] = "access_denied"
        else:
            code = f"{int(time.time())}.{next(self._ids)}.oidc"
            with self._lock:
                self.codes[code] = (self.person, params.get("nonce"), params["client_id"], redirect, time.time())
            back["code"] = code
        return 302, {"Location": f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(back)}"}

    def keys(self) -> dict:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def token(self, params: dict, client: tuple[str, str] | None) -> dict:
        if client is None or client != (self.stub.client_id, self.stub.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        with self._lock:
            found = self.codes.pop(params.get("code") or "", None)
        if found is None or time.time() - found[4] > CODE_SECONDS:
            return {"ok": False, "error": "invalid_code"}
        person, nonce, client_id, redirect, _ = found
        if params.get("redirect_uri") != redirect:
            return {"ok": False, "error": "bad_redirect_uri"}
        now = int(time.time())
        claims = {
            "iss": self.stub.base_url,
            "sub": person.user_id,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "auth_time": now,
            "https://slack.com/user_id": person.user_id,
            "https://slack.com/team_id": person.team_id,
            "https://slack.com/team_name": person.team_name,
            "name": person.name,
            "email": person.email,
            "email_verified": True,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        tampering, self.tampering = self.tampering, {}
        claims.update(tampering.get("claims", {}))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if tampering.get("foreign_key") else None
        id_token = jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})
        access = f"xoxp-oidc-{uuid.uuid4().hex}"
        return {"ok": True, "access_token": access, "token_type": "Bearer", "id_token": id_token}
