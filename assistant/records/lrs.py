"""HTTP client that delivers xAPI statements to a Learning Record Store (LRS).

Delivery outcomes are values, never exceptions: a batch is delivered, retryable (the LRS is down, slow,
overloaded or failing) or rejected (the LRS refused it; resending the same batch will not help).

Re-sending a batch whose response was lost is safe: statement ids already stored with the same content
count as delivered. Ralph answers 204 for such a batch, or 409 Conflict when a resent statement has no
``timestamp`` (it stamps "now" before comparing); on a 409 the client reads the stored statements back
and compares them, so only a real conflict (another statement under the same id) is reported as rejected.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.auth import HTTPBasicAuth

logger = logging.getLogger(__name__)

XAPI_VERSION = "1.0.3"
REASON_MAX_CHARS = 500
# Statement fields an LRS must keep as sent; "stored", "authority" and "version" are the LRS's own.
_IMMUTABLE_FIELDS = ("actor", "verb", "object", "result", "context", "attachments")


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one POST: ``delivered`` ids, or ``retryable`` (with ``retry_after``), or ``rejected`` reason."""

    delivered: tuple[str, ...] = ()
    retryable: bool = False
    retry_after: float | None = None
    rejected: str | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        """True when the LRS holds every statement of the batch."""
        return not self.retryable and self.rejected is None


class LrsQueryError(Exception):
    """The LRS could not say (unreachable, slow, an error status, an answer that is not a statement result)."""


class LrsClient:
    """Posts xAPI statements to ``{endpoint}statements`` with HTTP basic auth."""

    def __init__(
        self,
        endpoint: str,
        username: str,
        password: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.username = username
        self._auth = HTTPBasicAuth(username, password)
        self.timeout = timeout
        self._session = session or requests.Session()
        self._headers = {"X-Experience-API-Version": XAPI_VERSION, "Content-Type": "application/json"}

    def __repr__(self) -> str:
        return f"LrsClient(endpoint={self.endpoint!r}, username={self.username!r}, timeout={self.timeout!r})"

    @property
    def statements_url(self) -> str:
        return self.endpoint + "statements"

    def has_statement(self, agent: Mapping[str, Any], verb: str, activity: str) -> bool:
        """Whether the LRS holds a statement of `agent` with `verb` about the activity `activity` (the xAPI
        statements resource queried by agent, verb and activity, one statement at most). Raises
        `LrsQueryError` when it cannot tell."""
        params = {"agent": json.dumps(agent), "verb": verb, "activity": activity, "limit": 1}
        try:
            response = self._session.get(
                self.statements_url, params=params, auth=self._auth, headers=self._headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise LrsQueryError(f"LRS unreachable at {self.statements_url}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise LrsQueryError(_reason(response))
        try:
            body = response.json()
        except ValueError:
            raise LrsQueryError("the LRS answered a statement query with something other than JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
            raise LrsQueryError("the LRS answered a statement query without a statements list")
        return bool(body["statements"])

    def send(self, statements: Sequence[Mapping[str, Any]]) -> DeliveryResult:
        """Post a batch; the LRS stores all of it or none of it."""
        if not statements:
            return DeliveryResult()
        return self._send(list(statements), resolve_conflicts=True)

    def send_each(self, statements: Sequence[Mapping[str, Any]]) -> list[DeliveryResult]:
        """Post statements one by one, to tell the bad ones of a rejected batch; results follow input order.

        Stops at the first retryable failure: the statements not tried are reported retryable too.
        """
        results: list[DeliveryResult] = []
        for index, statement in enumerate(statements):
            result = self.send([statement])
            results.append(result)
            if result.retryable:
                skipped = DeliveryResult(retryable=True, retry_after=result.retry_after, status=result.status)
                results.extend(skipped for _ in statements[index + 1 :])
                break
        return results

    def _send(self, statements: list[Mapping[str, Any]], resolve_conflicts: bool) -> DeliveryResult:
        try:
            response = self._session.post(
                self.statements_url,
                data=json.dumps(statements),
                auth=self._auth,
                headers=self._headers,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            logger.warning("LRS unreachable at %s: %s", self.statements_url, type(error).__name__)
            return DeliveryResult(retryable=True)

        status = response.status_code
        logger.debug("LRS answered %s to a batch of %d statements", status, len(statements))
        sent_ids = [str(s["id"]) for s in statements if s.get("id")]
        if status in (200, 204):
            returned = _json_list(response) if status == 200 else []
            return DeliveryResult(delivered=tuple(dict.fromkeys([*sent_ids, *returned])), status=status)
        if status == 429 or status >= 500:
            return DeliveryResult(retryable=True, retry_after=_retry_after(response), status=status)
        if status == 409 and resolve_conflicts:
            return self._resolve_conflict(statements, response)
        return DeliveryResult(rejected=_reason(response), status=status)

    def _resolve_conflict(self, statements: list[Mapping[str, Any]], response: requests.Response) -> DeliveryResult:
        """After a 409: ids stored with the same content are delivered; the rest is posted again once."""
        already: list[str] = []
        remaining: list[Mapping[str, Any]] = []
        for statement in statements:
            statement_id = statement.get("id")
            stored = self._stored(str(statement_id)) if statement_id else None
            if isinstance(stored, DeliveryResult):
                return stored
            if stored is None:
                remaining.append(statement)
            elif _equivalent(statement, stored):
                already.append(str(statement_id))
            else:
                return DeliveryResult(rejected=_reason(response), status=409)
        if not remaining:
            return DeliveryResult(delivered=tuple(already), status=409)
        if not already:
            return DeliveryResult(rejected=_reason(response), status=409)
        result = self._send(remaining, resolve_conflicts=False)
        if not result.ok:
            return result
        return DeliveryResult(delivered=tuple(dict.fromkeys([*already, *result.delivered])), status=result.status)

    def _stored(self, statement_id: str) -> dict[str, Any] | DeliveryResult | None:
        """The statement the LRS holds under this id, None if none, or a failed DeliveryResult."""
        try:
            response = self._session.get(
                self.statements_url,
                params={"statementId": statement_id},
                auth=self._auth,
                headers=self._headers,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            logger.warning("LRS unreachable at %s: %s", self.statements_url, type(error).__name__)
            return DeliveryResult(retryable=True)
        if response.status_code == 404:
            return None
        if response.status_code == 429 or response.status_code >= 500:
            return DeliveryResult(retryable=True, retry_after=_retry_after(response), status=response.status_code)
        if response.status_code != 200:
            reason = f"409 Conflict, and the stored statement could not be read back: {_reason(response)}"
            return DeliveryResult(rejected=reason[:REASON_MAX_CHARS], status=409)
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and isinstance(body.get("statements"), list):  # Ralph wraps single statements
            matches = [s for s in body["statements"] if isinstance(s, dict) and s.get("id") == statement_id]
            return matches[0] if matches else None
        if isinstance(body, dict) and body.get("id") == statement_id:
            return body
        return None


def _equivalent(sent: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    if any(sent.get(field) != stored.get(field) for field in _IMMUTABLE_FIELDS):
        return False
    if "timestamp" in sent and "timestamp" in stored:
        return _same_instant(sent["timestamp"], stored["timestamp"])
    return True


def _same_instant(a: Any, b: Any) -> bool:
    try:
        return datetime.fromisoformat(str(a)) == datetime.fromisoformat(str(b))
    except ValueError:
        return a == b


def _json_list(response: requests.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    return [str(item) for item in body] if isinstance(body, list) else []


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _reason(response: requests.Response) -> str:
    """``"<status> <reason>: <LRS's detail>"``, at most 500 characters."""
    detail: str = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = _format_detail(body["detail"])
    elif isinstance(body, dict) and "message" in body:
        detail = str(body["message"])
    head = f"{response.status_code} {response.reason or ''}".strip()
    if response.status_code == 401:
        head += " (check the LRS username and password)"
    text = f"{head}: {detail}" if detail else head
    return text[:REASON_MAX_CHARS]


def _format_detail(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI/pydantic validation errors
        parts = []
        for error in detail:
            if isinstance(error, dict):
                loc = ".".join(str(part) for part in error.get("loc", []) if part != "body")
                parts.append(f"{loc}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
            else:
                parts.append(str(error))
        return "; ".join(parts)
    return str(detail)
