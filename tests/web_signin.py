"""Signing in to the admin pages through the Slack stand-in's OpenID Connect endpoints, as a browser does
(following the redirects by hand, so each step can be looked at)."""

from __future__ import annotations

import requests

CLIENT_ID = "3333.4444"
CLIENT_SECRET = "oidc-client-secret-for-tests"
WEB_SECRET = "web-cookie-signing-key-for-tests-0123456789"
ADMIN = "U0ADMIN001"


def web_env(slack_api, **extra) -> dict[str, str | None]:
    """The settings that switch the admin pages on, with the stand-in playing slack.com."""
    slack_api.client_id, slack_api.client_secret = CLIENT_ID, CLIENT_SECRET
    return {
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "MOMENT_WEB_SECRET": WEB_SECRET,
        "MOMENT_SLACK_URL": slack_api.base_url,
        "MOMENT_WEB_COOKIE_SECURE": "off",  # plain http on 127.0.0.1
        "MOMENT_ADMINS": ADMIN,
        **extra,
    }


def start(server) -> tuple[requests.Session, str]:
    """Open /admin/login: (the browser, the URL of Slack's authorize page it is sent to)."""
    browser = requests.Session()
    response = browser.get(server.url + "/admin/login", allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return browser, response.headers["Location"]


def approve(browser: requests.Session, authorize_url: str) -> str:
    """Slack's authorize page approves: the callback URL it sends the browser back to."""
    response = browser.get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def sign_in(server, slack_api, user: str = ADMIN, team: str = "T0MOMENT1", **details) -> requests.Response:
    """The whole sign-in as `user` of `team`; the callback's answer (its `.browser` holds the cookies)."""
    slack_api.openid.sign_in_as(user, team_id=team, **details)
    browser, authorize_url = start(server)
    response = browser.get(approve(browser, authorize_url), allow_redirects=False, timeout=10)
    response.browser = browser
    return response
