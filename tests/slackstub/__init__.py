"""A stand-in for Slack in tests: the Web API (`api.SlackAPIStub`), signed requests to the app
(`signing.SlackSender`), payloads shaped as Slack sends them (`payloads`), and pytest fixtures
(`fixtures`, registered in tests/conftest.py) that run the real `moment serve` against them.

Only Slack is replaced: the app, its HTTP server, database, index and model are the real ones.
"""

from tests.slackstub.api import Call, SlackAPIStub
from tests.slackstub.signing import SlackSender

__all__ = ["Call", "SlackAPIStub", "SlackSender"]
