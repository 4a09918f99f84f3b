"""The processes of a deployment: `moment serve` (Slack) and `moment worker` (the scheduler)."""

from __future__ import annotations

import click

from assistant.cli.common import (
    settings_of,
)


@click.command("serve")
@click.option("--socket", "socket_mode", is_flag=True, help="Socket Mode (needs SLACK_APP_TOKEN) instead of HTTP.")
@click.option("--port", type=int, help="HTTP port (default $PORT, else 3000).")
@click.option("--workers", type=int, help="HTTP worker processes (default $MOMENT_WEB_WORKERS, else 2).")
@click.pass_context
def serve(ctx: click.Context, socket_mode: bool, port: int | None, workers: int | None) -> None:
    """Run the Slack app: HTTP on /slack/events (and /healthz), or Socket Mode."""
    from assistant.slack.outbound import check_settings, check_slack
    from assistant.slack.server import serve_http, serve_socket_mode

    settings = settings_of(ctx)
    check_settings(settings, socket_mode=socket_mode)  # before any worker forks, so the message is seen
    check_slack(settings)  # a wrong or unreachable token: one line and exit status 5, not workers failing
    if socket_mode:
        serve_socket_mode(settings)
    else:
        serve_http(settings, port or settings.port, workers or settings.web_workers, settings.web_threads)


@click.command("worker")
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the scheduler: re-index runs and the nightly re-index, mentor deadlines, xAPI delivery,
    the weekly digest, review reminders and retention. Run one per deployment."""
    from assistant.slack.server import _configure_logging
    from assistant.worker import run

    _configure_logging()
    run(settings_of(ctx))
