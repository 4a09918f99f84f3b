"""`moment worker`: the scheduler. One per deployment, beside any number of web processes.

APScheduler 3 with its SQLAlchemy job store in the application's database: the schedule survives
restarts, and a job missed while the worker was down runs once when it is back (coalesced). Each job is
also safe if it ever runs twice: re-index runs and mentor deadlines are claimed with conditional
UPDATEs, xAPI statements have fixed ids, and the digest and reminders claim a key per period in
`processed_events` before sending.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from assistant.db.models import utcnow
from assistant.operations.operations import IndexOperations
from assistant.service import MomentService
from assistant.settings import Settings

log = logging.getLogger(__name__)

JOBS = {
    # id: (function, trigger, trigger arguments)
    "reindex-queue": ("assistant.worker:run_reindex_queue", "interval", {"seconds": 5}),
    "nightly-reindex": ("assistant.worker:nightly_reindex", "cron", {"hour": 2, "minute": 0}),
    "mentor-deadlines": ("assistant.worker:mentor_deadlines", "interval", {"seconds": 30}),
    "xapi-delivery": ("assistant.worker:deliver_xapi", "interval", {"seconds": 60}),
    # Hourly on Monday from 08:00: the first run posts, later ones only if it failed (claimed per day).
    "weekly-digest": ("assistant.worker:weekly_digest", "cron", {"day_of_week": "mon", "hour": "8-20", "minute": 0}),
    "help-channel-queues": ("assistant.worker:help_channel_queues", "interval", {"seconds": 60}),
    "questions-left": ("assistant.worker:questions_left", "interval", {"seconds": 30}),
    "review-reminders": ("assistant.worker:review_reminders", "cron", {"day_of_week": "mon", "hour": 9, "minute": 0}),
    "retention": ("assistant.worker:retention", "cron", {"hour": 3, "minute": 30}),
    # The admin pages' daily roll-ups: closed days added, days changed since recomputed.
    "insight-rollups": ("assistant.worker:roll_up_insights", "interval", {"minutes": 5}),
    # Every MOMENT_AUDIENCE_REFRESH_MINUTES (set in `scheduler`): who is in the user groups content is for.
    "usergroups": ("assistant.worker:refresh_usergroups", "interval", {"minutes": 10}),
    # Content sources: each synced on its own schedule (checked every minute), the prune pass on its own.
    "content-sources": ("assistant.worker:sync_sources", "interval", {"minutes": 1}),
    "content-sources-prune": ("assistant.worker:prune_sources", "interval", {"minutes": 30}),
    # Courses: embed those imported without (`--no-embed`); learn from the LRS who completed what was suggested.
    "course-embeddings": ("assistant.worker:embed_courses", "interval", {"minutes": 10}),
    "course-completions": ("assistant.worker:course_completions", "cron", {"hour": 4, "minute": 0}),
    # New questions into content gaps; after the content changed, the gaps' questions asked again.
    "content-gaps": ("assistant.worker:content_gaps", "interval", {"minutes": 10}),
}


@dataclass
class WorkerContext:
    settings: Settings
    service: MomentService
    operations: IndexOperations
    client: object | None  # a slack_sdk WebClient: with SLACK_BOT_TOKEN, or without a token for OAuth installs
    installations: object | None = None  # assistant.slack.installation.Installations (OAuth installs)

    def client_for(self, team_id: str):
        """The Web API client for a workspace: the one token, or the workspace's own (None when it has none:
        uninstalled, so nothing is sent)."""
        if self.installations is None:
            return self.client
        return self.installations.client_for_workspace(team_id, self.client)

    def teams(self) -> list[str]:
        """The workspaces jobs act for: the default one, or every installed one."""
        if self.installations is None:
            return [self.settings.default_team_id]
        return [w.team_id for w in self.service.workspaces.all() if w.uninstalled_at is None]


_context: WorkerContext | None = None


def context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("the worker context is not set up: start it with `moment worker`")
    return _context


def setup(settings: Settings, service: MomentService | None = None) -> WorkerContext:
    """Build what the jobs use (also used by tests and `moment` commands that run a job once)."""
    global _context
    service = service or MomentService.from_settings(settings)
    operations = service.operations.indexing
    client = installations = None
    if settings.slack_bot_token is not None or settings.multi_workspace:
        from assistant.slack.outbound import group_source, installations_of, web_client

        client = web_client(settings)
        service.access.group_source = group_source(service, client, settings)
        if settings.multi_workspace:
            installations = installations_of(service)
    _context = WorkerContext(settings, service, operations, client, installations)
    return _context


def scheduler(settings: Settings, *, blocking: bool = True):
    """The scheduler with every job registered in the database job store (idempotent)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    kind = BlockingScheduler if blocking else BackgroundScheduler
    sched = kind(
        jobstores={"default": SQLAlchemyJobStore(url=settings.database_url, tablename="apscheduler_jobs")},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=settings.timezone,
    )
    for job_id, (func, trigger, args) in JOBS.items():
        if job_id == "usergroups":
            args = {"minutes": settings.audience_refresh_minutes}
        sched.add_job(func, trigger, id=job_id, name=job_id, replace_existing=True, **args)
    return sched


def run(settings: Settings) -> None:
    """`moment worker`: set up, then run the scheduler until stopped."""
    ctx = setup(settings)
    if ctx.client is None:
        log.warning("SLACK_BOT_TOKEN is not set: digests, reminders and mentor follow-ups are not sent")
    log.info("worker started: %s", ", ".join(JOBS))
    scheduler(settings).start()


# -- jobs (module-level functions, so the job store can refer to them by name) ------------------


def run_reindex_queue() -> int:
    ctx = context()
    from assistant.slack.outbound import post_reindex_summary

    def report(run):
        if ctx.client is not None:
            post_reindex_summary(ctx.client, run)

    return len(ctx.operations.run_queued(on_done=report))


def nightly_reindex() -> None:
    ctx = context()
    ctx.operations.request("schedule", None)
    run_reindex_queue()


def mentor_deadlines(now: dt.datetime | None = None) -> dict[str, int]:
    ctx = context()
    if ctx.client is None:
        return {}
    from assistant.slack.outbound import handoff_for

    if ctx.installations is None:
        return handoff_for(ctx.service, ctx.client, None).sweep(now)
    done: dict[str, int] = {}
    for team in ctx.teams():  # each workspace's deadlines, told with its own token
        client = ctx.client_for(team)
        if client is not None:
            for key, count in handoff_for(ctx.service, client, team).sweep(now).items():
                done[key] = done.get(key, 0) + count
    return done


def help_channel_queues() -> int:
    """Answer help-channel questions a stopped web process left queued."""
    ctx = context()
    if ctx.client is None:
        return 0
    from assistant.slack.outbound import HelpChannelAnswers

    return HelpChannelAnswers(ctx.service).sweep(ctx.client_for)


def questions_left(now: dt.datetime | None = None) -> int:
    """Answer DMs and @mentions a stopped web process recorded and never answered."""
    ctx = context()
    if ctx.client is None:
        return 0
    from assistant.slack.outbound import answer_questions_left

    return answer_questions_left(ctx.service, ctx.client_for, now)


def refresh_usergroups() -> bool:
    """Read the user groups restricted content is for from Slack into the shared cache (nothing to do, and
    no call to Slack, when no content is restricted)."""
    ctx = context()
    source = ctx.service.access.group_source
    if source is None:
        return False
    if ctx.installations is None:
        return source.refresh()
    # OAuth installs: each workspace's groups, read with its own token.
    return all([source.refresh(team, client) for team in ctx.teams() if (client := ctx.client_for(team)) is not None])


def _sources():
    from assistant.sources import Sources
    from assistant.sources.people import PeopleDirectory

    ctx = context()
    people = PeopleDirectory(ctx.operations.database, ctx.client, ctx.settings.default_team_id)
    return Sources(ctx.operations, people)


def sync_sources() -> int:
    """Sync every content source whose time has come (assistant/sources); returns how many synced."""
    return len(_sources().run_due())


def prune_sources() -> int:
    """The prune pass (ids only) of every content source due for one."""
    return len(_sources().prune_due())


def content_gaps() -> dict[str, int]:
    """Each workspace's content gaps brought up to date (`Gaps.update`): new questions clustered;
    when a new index was published since the gaps were last re-asked, their questions asked again."""
    ctx = context()
    done = {"new_questions": 0, "new_gaps": 0, "rechecked": 0, "closed": 0}
    for team in ctx.teams():
        try:
            made, checked = ctx.service.gaps.update(team)
        except Exception as exc:  # one workspace's failure must not stop the others
            log.error("content gaps of %s not refreshed: %r", team, exc)
            continue
        done["new_questions"] += made.new_questions
        done["new_gaps"] += made.new_gaps
        if checked is not None:
            done["rechecked"] += checked.questions
            done["closed"] += len(checked.closed)
            _tell_owners_answered(ctx, team, checked.closed)
    if done["new_questions"] or done["rechecked"]:
        log.info("content gaps: %s", done)
    return done


def _tell_owners_answered(ctx: WorkerContext, team: str, closed: list[int]) -> None:
    """A DM to the owner of each gap Moment closed because its questions are answered now (once per gap)."""
    client = ctx.client_for(team)
    if client is None:
        return
    from assistant.slack.outbound import tell_gap_answered

    for gap_id in closed:
        detail = ctx.service.gaps.detail(team, gap_id)
        key = f"gap-answered:{gap_id}:{detail.gap.updated_at.timestamp():.0f}"  # closed again later: told again
        if detail.gap.owner_id and ctx.service.claims.claim(key)[0]:
            try:
                tell_gap_answered(client, detail)
            except Exception as exc:
                log.error("the owner of gap %s was not told it is answered: %r", gap_id, exc)


def deliver_xapi() -> dict[str, int]:
    return context().service.xapi.flush()


def embed_courses() -> int:
    return context().service.courses.embed_pending()


def course_completions() -> int:
    return context().service.courses.refresh_completions()


def weekly_digest(days: int = 7, now: dt.datetime | None = None) -> bool:
    """The report with its chart, once per day however often it is called: to the admin channel
    (single-token mode), or with OAuth installs to each workspace's admins by DM, each their own
    workspace's report sent with its own token. True when something was delivered."""
    ctx = context()
    now = now or utcnow()
    if ctx.installations is not None:
        delivered = False
        for team in ctx.teams():
            client = ctx.client_for(team)
            if client is None:
                continue
            for admin in sorted(ctx.service.workspaces.admins(team)):
                key = f"digest:{team}:{admin}:{now:%Y-%m-%d}"
                delivered |= _deliver_digest(ctx, client, days, now, key, team=team, admin=admin)
        return delivered
    channel = ctx.settings.admin_channel
    if ctx.client is None or not channel:
        log.warning("weekly digest skipped: set SLACK_BOT_TOKEN and MOMENT_ADMIN_CHANNEL")
        return False
    return _deliver_digest(ctx, ctx.client, days, now, f"digest:{now:%Y-%m-%d}", channel=channel)


def _deliver_digest(
    ctx: WorkerContext,
    client,
    days: int,
    now: dt.datetime,
    key: str,
    *,
    channel: str | None = None,
    team: str | None = None,
    admin: str | None = None,
) -> bool:
    """Post one digest (claimed under `key`, given back when it could not be posted): to `channel`, read by
    non-admins too (no restricted item named), or by DM to `admin` (their workspace `team`'s report)."""
    if not ctx.service.claims.claim(key)[0]:
        return False
    from assistant.slack.outbound import post_digest, upload_digest_files

    try:
        if admin is not None:
            channel = client.conversations_open(users=admin)["channel"]["id"]
            report = ctx.service.operations.report(days, now=now, team_id=team)
        else:
            report = ctx.service.operations.report(
                days, now=now, for_everyone=True
            )  # the channel's members need not be admins
        post_digest(client, channel, report, days)
    except Exception as exc:
        # Not delivered: give the claim back, so the next run (within the hour) sends this week's digest.
        ctx.service.claims.release(key)
        log.error("weekly digest not posted (will retry): %r", getattr(exc, "response", {}).get("error") or exc)
        return False
    upload_digest_files(client, channel, report, now)
    return True


def review_reminders(today: dt.date | None = None) -> int:
    """One DM per content owner listing their items past `reviewed + review_every`; once per week."""
    ctx = context()
    if ctx.client is None or ctx.installations is not None:
        return 0  # content owners are people of the single-token workspace
    today = today or dt.date.today()
    by_owner: dict[str, list] = {}
    for doc in ctx.service.operations.documents_past_review(today):
        by_owner.setdefault(doc.meta.owner, []).append(doc)
    week = f"{today.isocalendar().year}-W{today.isocalendar().week:02d}"
    sent = 0
    from assistant.slack.outbound import review_reminder_text, send_direct_message

    for owner, docs in sorted(by_owner.items()):
        if not ctx.service.claims.claim(f"review-reminder:{owner}:{week}")[0]:
            continue
        text = review_reminder_text(docs, ctx.settings.content_base_url)
        try:
            send_direct_message(ctx.client, owner, text)
            sent += 1
        except Exception as exc:
            log.error("review reminder to %s failed: %r", owner, exc)
    return sent


def roll_up_insights(now: dt.datetime | None = None) -> int:
    """Roll up the closed days of every workspace for the admin pages (`Insights.roll_up`); the
    days recomputed."""
    ctx = context()
    return sum(r.days for r in ctx.service.insights.roll_up(ctx.teams(), now))


def retention(now: dt.datetime | None = None) -> int:
    """Delete interactions older than MOMENT_RETENTION_DAYS (with their sources and votes), and old
    de-duplication keys (`Retention.apply`)."""
    return context().service.retention.apply(now)
