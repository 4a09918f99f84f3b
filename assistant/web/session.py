"""The admin session: a signed cookie (itsdangerous, through Flask's session interface) that is HttpOnly,
Secure, SameSite=Lax, scoped to /admin and good for MOMENT_WEB_SESSION_HOURS. A cookie that fails its
signature (forged) or is too old (expired) is not silently dropped: the request learns why
(`rejected_session()`), so the page can say so.
"""

from __future__ import annotations

from flask import g, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, SignatureExpired

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, telling forged and expired cookies apart from missing ones."""

    def open_session(self, app, request_):
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request_.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        try:
            data = serializer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except SignatureExpired:
            g.session_rejected = "expired"
            return self.session_class()
        except BadSignature:
            g.session_rejected = "forged"
            return self.session_class()
        return self.session_class(data)

    def get_cookie_secure(self, app) -> bool:
        # Secure may be switched off (MOMENT_WEB_COOKIE_SECURE=off) for plain-HTTP tests on loopback only.
        return app.config["SESSION_COOKIE_SECURE"] or request.host.rsplit(":", 1)[0] not in LOOPBACK


def rejected_session() -> str | None:
    """Why the request's session cookie was refused ("expired" or "forged"), or None."""
    return g.get("session_rejected")
