"""Serving the Slack app: HTTP (a WSGI app under gunicorn) or Socket Mode.

/slack/events   events, slash commands, shortcuts and interactivity (signed by Slack)
/admin          the admin web app (`assistant.web`: Sign in with Slack, then the L&D pages)
/healthz        for the load balancer: 200 when the database answers and takes writes and an index is loaded
                (within 1.5 s whatever the database does: `health.HealthCheck`)
/c/<token>      a course suggestion's link: 302 to the course, the click recorded (`assistant.learning`)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.service import MomentService
from assistant.settings import Settings, load_settings
from assistant.slack.guard import RequestGuard
from assistant.slack.health import HealthCheck

if TYPE_CHECKING:
    from indexer.embedding import Embedder

log = logging.getLogger(__name__)

# Listeners (answering, posting) run in threads of the web process, and Python lets a busy thread keep
# the interpreter for the switch interval (5 ms by default) before a waiting one gets it: a request
# thread that needs it a dozen times to acknowledge waits behind every busy listener. A shorter interval
# keeps acknowledgements quick while help channels are busy (bench/help_channels.py).
SWITCH_INTERVAL_S = 0.001


class MomentWSGI:
    """Routes /healthz itself, /admin to the admin web app and everything else to Bolt's WSGI handler."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        """`embedder`: the model already loaded (by `load_embedder_for(settings)`), for several apps in one
        process; by default each app loads its own."""
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        from assistant.slack.app import create_app
        from assistant.web import create_web_app

        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.service = MomentService.from_settings(settings, embedder=embedder)
        self.health = HealthCheck(self.service.operations.health)
        try:
            self.service.operations.warm_up()  # load the index now, not on the first question
        except Exception as exc:
            log.error("no usable index at start-up: %s", exc)
        self.bolt = SlackRequestHandler(create_app(settings, self.service), path="/slack/events")
        self.requests = RequestGuard(self.bolt, settings.slack_signing_secret)  # malformed requests: 400
        self.web = create_web_app(settings, self.service, workspace_client=_workspace_clients(settings, self.service))
        # Bolt logs the whole body of a badly signed request at INFO (questions, tokens): keep it out.
        # (Set after create_app: Bolt copies the root logger's level onto its loggers when it makes them.)
        logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
        self._stop = threading.Event()
        start_index_sync(settings, self.service, self._stop)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            status, body = self.health()
            payload = json.dumps(body).encode()
            start_response(
                f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        path = environ.get("PATH_INFO", "")
        if path == "/admin" or path.startswith("/admin/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/admin"
            environ["PATH_INFO"] = path[len("/admin") :] or "/"
            return self.web(environ, start_response)
        if path.startswith("/c/"):
            return course_link(self.service, environ, start_response)
        return self.requests(environ, start_response)

    def close(self) -> None:
        """Stop what the app runs in the background (after the HTTP server stopped taking requests): the
        index sync, then the listeners, each finishing what it is doing; then the database connections."""
        self._stop.set()
        self.bolt.app.listener_runner.listener_executor.shutdown(wait=True)
        self.service.close()


def _workspace_clients(settings: Settings, service: MomentService):
    """For the admin pages with OAuth installs: team id -> a client with the workspace's bot token (None in
    single-token mode: the pages use the one token)."""
    if not settings.multi_workspace:
        return None
    from slack_sdk import WebClient

    from assistant.slack.outbound import installations_of

    installations = installations_of(service)
    base = WebClient(base_url=settings.slack_api_url, timeout=int(settings.slack_timeout_seconds))
    return lambda team_id: installations.client_for_workspace(team_id, base)


def course_link(service: MomentService, environ, start_response):
    """A course suggestion's signed link: 302 to the course (the click recorded); 404 for a token that is not
    one (forged, or a suggestion since forgotten), 503 while the database cannot say. No referrer goes along."""

    def plain(status: str, text: str, headers=()):
        body = text.encode()
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *headers]
        )
        return [body]

    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return plain("405 Method Not Allowed", "Method not allowed.\n", [("Allow", "GET, HEAD")])
    try:
        url = service.courses.click(environ["PATH_INFO"][3:], environ.get("HTTP_USER_AGENT", ""))
    except Exception as exc:
        log.warning("course link not followed: %s", exc)
        return plain("503 Service Unavailable", "Moment cannot open this link just now; try again in a minute.\n")
    if url is None:
        return plain("404 Not Found", "This course link is not valid (or no longer is).\n")
    headers = [("Location", url), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")]
    return plain("302 Found", f"The course is at {url}\n", headers)


def start_index_sync(settings: Settings, service: MomentService, stop: threading.Event | None = None) -> None:
    """Pick up index versions published through the database by a worker on another host (until `stop`)."""
    if settings.index_sync_seconds > 0:
        service.operations.indexing.start_sync(settings.index_sync_seconds, stop)


def wsgi_app() -> MomentWSGI:
    """Factory for WSGI servers: `gunicorn 'assistant.slack.server:wsgi_app()'`."""
    _configure_logging()

    def make() -> MomentWSGI:
        settings = load_settings()
        return MomentWSGI(share_cores(settings, settings.web_workers))

    return boot_worker(make)


WORKER_BOOT_ERROR = 3  # gunicorn's: the arbiter stops the server instead of starting the worker again


def boot_worker(make: Callable[[], MomentWSGI], failure=None) -> MomentWSGI:
    """The start-up boundary of a web worker (`assistant.errors`): an error is logged as one line (with the
    traceback under MOMENT_DEBUG=1), kept in `failure` (shared with `moment serve`, which exits with its
    status) and ends the server, rather than gunicorn's tracebacks and workers started again and again."""
    from assistant.errors import debug_requested, explain

    try:
        return make()
    except Exception as exc:
        line, status = explain(exc)
        if debug_requested():
            log.exception("web worker could not start")
        log.error("web worker could not start: %s", line)
        if failure is not None:
            failure.put(line, status)
        sys.exit(WORKER_BOOT_ERROR)


class BootFailure:
    """The first start-up error of any web worker, in memory shared across gunicorn's fork."""

    def __init__(self) -> None:
        import multiprocessing

        self._status = multiprocessing.Value("i", 0)
        self._line = multiprocessing.Array("c", 1024)

    def put(self, line: str, status: int) -> None:
        with self._status.get_lock():
            if not self._status.value:
                self._line.value = line.encode()[:1023]
                self._status.value = status

    def get(self) -> tuple[str, int] | None:
        return (self._line.value.decode(errors="replace"), self._status.value) if self._status.value else None


def share_cores(settings: Settings, workers: int) -> Settings:
    """Unless MOMENT_EMBEDDING_THREADS says otherwise, give each worker process its share of the cores:
    more threads than cores make every request wait (bench/slack_ack.py)."""
    if settings.embedding_threads is not None:
        return settings
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return settings.model_copy(update={"embedding_threads": threads})


def serve_http(settings: Settings, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in this process with `workers` processes of `threads` threads each."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"0.0.0.0:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("accesslog", "-")
            # Slack's signature headers and our own paths only; never log request bodies (they carry tokens).
            self.cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms')

        def load(self):
            _configure_logging()
            return boot_worker(lambda: MomentWSGI(share_cores(settings, workers)), failure)

    from assistant.errors import EXIT_INTERNAL, MomentError

    failure = BootFailure()
    try:
        Server().run()
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        line, status = failure.get() or ("see the log above", EXIT_INTERNAL)
        raise MomentError(f"The web server stopped: a worker could not start: {line}", status) from None


def serve_socket_mode(settings: Settings) -> None:
    """Run over Socket Mode (no public URL needed), with SLACK_APP_TOKEN."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from assistant.slack.app import create_app
    from assistant.slack.outbound import check_settings

    check_settings(settings, socket_mode=True)
    _configure_logging()
    service = MomentService.from_settings(settings)
    start_index_sync(settings, service)
    app = create_app(settings, service, socket_mode=True)
    SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
