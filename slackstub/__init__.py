"""A stand-in for Slack, for the tests and the benchmarks: the Web API (`api.SlackAPIStub`; `transport`
serves it over HTTP, `blockkit` refuses what Slack would refuse), signed requests to the app
(`signing.SlackSender`), payloads shaped as Slack sends them (`payloads`). The pytest fixtures that run
the real `moment serve` against it are in tests/slack_fixtures.py.

Only Slack is replaced: the app, its HTTP server, database, index and model are the real ones. Not part
of the installed package (pyproject's packages are `assistant` and `indexer`).
"""

from slackstub.api import SlackAPIStub
from slackstub.signing import SlackSender
from slackstub.transport import Call

__all__ = ["Call", "SlackAPIStub", "SlackSender"]
