"""LrsClient against a real Ralph LRS (the lrs_server fixture of tests/lrs.py)."""

from __future__ import annotations

import copy
import logging
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
import requests

from assistant.records.lrs import DeliveryResult, LrsClient

ASKED = "http://adlnet.gov/expapi/verbs/asked"


def ids(test_no: int, count: int) -> list[str]:
    """Fixed statement UUIDs, distinct per test (the LRS is shared by the session)."""
    return [f"6d0e5a1c-0000-4000-8000-{test_no:04d}{i:08d}" for i in range(1, count + 1)]


def statement(statement_id: str, n: int = 1, *, timestamp: bool = True, verb: str = ASKED) -> dict:
    result = {
        "id": statement_id,
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://moment-test.slack.com", "name": "U0TEST0001"},
        },
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": f"https://moment.example/questions/{n}"},
    }
    if timestamp:
        result["timestamp"] = "2026-01-05T10:00:00+00:00"
    return result


def stored_counts(lrs_server, wanted: list[str]) -> dict[str, int]:
    counts = Counter(s["id"] for s in lrs_server.statements())
    return {i: counts[i] for i in wanted}


class _CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def request(self, *args, **kwargs):
        self.count += 1
        return super().request(*args, **kwargs)


@pytest.fixture
def client(lrs_server) -> LrsClient:
    return LrsClient(lrs_server.endpoint, lrs_server.username, lrs_server.password, timeout=5)


def test_batch_of_three_arrives(client, lrs_server):
    batch = [statement(i, n) for n, i in enumerate(ids(1, 3))]
    result = client.send(batch)
    assert result.ok, result
    assert result.delivered == tuple(ids(1, 3))
    assert not result.retryable and result.rejected is None
    stored = {s["id"]: s for s in lrs_server.statements() if s["id"] in ids(1, 3)}
    assert sorted(stored) == sorted(ids(1, 3))
    for sent in batch:
        assert stored[sent["id"]]["verb"]["id"] == ASKED
        assert stored[sent["id"]]["actor"]["account"] == sent["actor"]["account"]
        assert stored[sent["id"]]["object"]["id"] == sent["object"]["id"]
    assert lrs_server.statements(statementId=ids(1, 3)[0])[0]["id"] == ids(1, 3)[0]


def test_same_batch_sent_again_is_delivered_and_stored_once(client, lrs_server):
    batch = [statement(i, n) for n, i in enumerate(ids(2, 3))]
    assert client.send(batch).ok
    again = client.send(copy.deepcopy(batch))
    assert again.ok, again
    assert again.status == 204  # Ralph: every id already stored with the same content
    assert again.delivered == tuple(ids(2, 3))
    assert stored_counts(lrs_server, ids(2, 3)) == dict.fromkeys(ids(2, 3), 1)


def test_resent_statements_without_timestamp_are_delivered_not_conflicts(client, lrs_server):
    # Ralph stamps a missing timestamp with "now" before comparing, so it answers 409 to an identical resend.
    batch = [statement(i, n, timestamp=False) for n, i in enumerate(ids(3, 2))]
    assert client.send(batch).ok
    again = client.send(batch)
    assert again.ok, again
    assert again.status == 409
    assert again.delivered == tuple(ids(3, 2))
    assert stored_counts(lrs_server, ids(3, 2)) == dict.fromkeys(ids(3, 2), 1)


def test_resend_mixing_stored_and_new_statements_stores_the_new_once(client, lrs_server):
    old, new = ids(4, 2)
    assert client.send([statement(old, timestamp=False)]).ok
    result = client.send([statement(old, timestamp=False), statement(new, timestamp=False)])
    assert result.ok, result
    assert set(result.delivered) == {old, new}
    assert stored_counts(lrs_server, [old, new]) == {old: 1, new: 1}


def test_other_statement_under_a_stored_id_is_rejected(client, lrs_server):
    (statement_id,) = ids(5, 1)
    assert client.send([statement(statement_id)]).ok
    result = client.send([statement(statement_id, verb="http://adlnet.gov/expapi/verbs/answered")])
    assert not result.ok and not result.retryable
    assert result.status == 409
    assert "Differing statements already exist" in (result.rejected or "")
    stored = lrs_server.statements(statementId=statement_id)
    assert [s["verb"]["id"] for s in stored] == [ASKED]


def test_invalid_statement_is_rejected_with_a_reason(client, lrs_server):
    (statement_id,) = ids(6, 1)
    bad = statement(statement_id)
    del bad["verb"]
    result = client.send([bad])
    assert result.rejected is not None and not result.retryable and not result.ok
    assert result.status == 422
    assert "verb" in result.rejected and "Field required" in result.rejected
    assert len(result.rejected) <= 500
    assert result.delivered == ()
    assert stored_counts(lrs_server, [statement_id]) == {statement_id: 0}


def test_send_each_tells_which_statements_are_bad(client, lrs_server):
    good1, bad_id, good2 = ids(7, 3)
    bad = statement(bad_id)
    del bad["verb"]
    batch = [statement(good1), bad, statement(good2)]
    assert client.send(batch).rejected is not None  # the batch is all or nothing
    assert stored_counts(lrs_server, [good1, bad_id, good2]) == {good1: 0, bad_id: 0, good2: 0}

    results = client.send_each(batch)
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].delivered == (good1,) and results[2].delivered == (good2,)
    assert "verb" in (results[1].rejected or "") and not results[1].retryable
    assert stored_counts(lrs_server, [good1, bad_id, good2]) == {good1: 1, bad_id: 0, good2: 1}


def test_lrs_down_is_retryable_then_up_again_everything_arrives_once(client, lrs_server):
    first, *rest = ids(8, 4)
    assert client.send([statement(first)]).ok
    batch = [statement(first)] + [statement(i, n) for n, i in enumerate(rest)]
    lrs_server.stop()
    try:
        down = client.send(batch)
        assert down.retryable and down.rejected is None and not down.ok
        assert down.delivered == ()
        attempts = _CountingSession()
        counted = LrsClient(lrs_server.endpoint, lrs_server.username, lrs_server.password, session=attempts)
        each = counted.send_each(batch)
        assert [r.retryable for r in each] == [True] * len(batch)
        assert attempts.count == 1  # send_each stops at the first retryable failure
    finally:
        lrs_server.start()
    assert stored_counts(lrs_server, [first]) == {first: 1}  # same data dir after the restart
    up = client.send(batch)
    assert up.ok, up
    assert set(up.delivered) == {first, *rest}
    assert client.send(batch).ok  # a retry after a lost response
    assert stored_counts(lrs_server, [first, *rest]) == dict.fromkeys([first, *rest], 1)


def test_wrong_password_is_rejected_with_a_clear_reason(lrs_server):
    (statement_id,) = ids(9, 1)
    wrong = LrsClient(lrs_server.endpoint, lrs_server.username, "not-the-password", timeout=5)
    result = wrong.send([statement(statement_id)])
    assert not result.ok and not result.retryable
    assert result.status == 401
    assert "401" in (result.rejected or "") and "username and password" in (result.rejected or "")
    assert stored_counts(lrs_server, [statement_id]) == {statement_id: 0}


def test_password_is_never_shown(lrs_server, caplog):
    secret = "s3cret-Pa55word-never-shown"
    client = LrsClient(lrs_server.endpoint, lrs_server.username, secret, timeout=2)
    down = LrsClient("http://127.0.0.1:9/xAPI", "someone", secret, timeout=2)
    with caplog.at_level(logging.DEBUG):
        assert client.send([statement(ids(10, 1)[0])]).status == 401
        assert down.send([statement(ids(10, 1)[0])]).retryable
    assert secret not in repr(client) and secret not in str(client)
    assert secret not in caplog.text
    assert down.statements_url == "http://127.0.0.1:9/xAPI/statements"


class _Overloaded(BaseHTTPRequestHandler):
    responses_to_give: ClassVar[list[tuple[int, str | None, bytes]]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, retry_after, body = self.responses_to_give.pop(0)
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_429_and_5xx_are_retryable_with_retry_after_and_long_reasons_are_cut():
    # Ralph never sends 429/503 with Retry-After: a stand-in HTTP server on loopback does.
    _Overloaded.responses_to_give = [
        (429, "7", b""),
        (503, None, b""),
        (500, "Wed, 21 Oct 2015 07:28:00 GMT", b""),
        (400, None, b"x" * 2000),
    ]
    server = HTTPServer(("127.0.0.1", 0), _Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = LrsClient(f"http://127.0.0.1:{server.server_address[1]}/xAPI/", "u", "p", timeout=5)
        batch = [statement(ids(11, 1)[0])]
        assert client.send(batch) == DeliveryResult(retryable=True, retry_after=7.0, status=429)
        assert client.send(batch) == DeliveryResult(retryable=True, retry_after=None, status=503)
        assert client.send(batch) == DeliveryResult(retryable=True, retry_after=0.0, status=500)  # a past date
        rejected = client.send(batch)
        assert not rejected.retryable and rejected.status == 400
        assert rejected.rejected is not None and len(rejected.rejected) == 500
        assert rejected.rejected.startswith("400 Bad Request: xxx")
    finally:
        server.shutdown()
        server.server_close()
