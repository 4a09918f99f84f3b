"""Signed course links: `MOMENT_BASE_URL/c/<token>`, where the token names a suggestion and carries an HMAC of it.

A token cannot be forged or enumerated without the key (MOMENT_LINK_SECRET, else SLACK_SIGNING_SECRET, else a
key file made once under MOMENT_HOME, for a single host). Every web process must have the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SIGNATURE_CHARS = 22  # 132 bits of the HMAC-SHA256, base64url
KEY_FILE = "link.key"


def link_key(settings) -> bytes:
    """The key links are signed with (derived, so that the Slack signing secret itself is never used as is)."""
    secret = settings.link_secret or settings.slack_signing_secret
    material = secret.get_secret_value().encode() if secret is not None else _key_file(Path(settings.home) / KEY_FILE)
    return hashlib.sha256(b"moment course link\0" + material).digest()


def _key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _signature(key: bytes, suggestion_id: int) -> str:
    digest = hmac.new(key, f"course-suggestion:{suggestion_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:SIGNATURE_CHARS]


def sign(key: bytes, suggestion_id: int) -> str:
    """The token of a suggestion's link."""
    return f"{suggestion_id}.{_signature(key, suggestion_id)}"


def verify(key: bytes, token: str) -> int | None:
    """The suggestion a token names, or None when it is not one of ours (malformed, forged, another key)."""
    number, _, signature = token.partition(".")
    if not number.isdigit() or len(number) > 12 or len(signature) != SIGNATURE_CHARS:
        return None
    suggestion_id = int(number)
    return suggestion_id if hmac.compare_digest(signature, _signature(key, suggestion_id)) else None
