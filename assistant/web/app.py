"""The admin web app (Flask), mounted at /admin by `MomentWSGI`: Sign in with Slack, then the pages.

    GET  /admin/                  Overview          GET /admin/overview.csv
    GET  /admin/content           Content           GET /admin/content.csv
    GET  /admin/questions         Questions         GET /admin/questions.csv
    GET  /admin/mentors           Mentors           GET /admin/mentors.csv
    GET  /admin/courses           Courses           GET /admin/courses.csv
    GET  /admin/gaps              Gaps              GET /admin/gaps.csv
    GET  /admin/gaps/<id>         a gap: its questions, its history, and the forms that change it:
    POST /admin/gaps/<id>/assign  (owner: a Slack user id, told by DM), /close (note), /reopen (note); CSRF token
    GET  /admin/signin            the Sign in with Slack page; /admin/login starts it, /admin/oidc/callback ends it
    POST /admin/signout           (CSRF token)

Every page is one workspace's (the one the admin signed in with), rendered on the server (Jinja2, autoescaped),
with no script and no asset from elsewhere. A refusal is a page of its own with its status: 400 (a bad
parameter, a forged cookie, a missing or used sign-in state, a form without its CSRF token, a change a gap
refuses), 401 (a session that expired), 403 (not an admin of a workspace Moment serves), 404 (a gap that is not
the workspace's), 503 (the pages are not configured).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from pathlib import Path

from flask import Flask, Response, flash, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from assistant.insights import CONTENT_SORTS, OUTCOME_FILTERS, GapError, GapNotFound, Period
from assistant.web import tables
from assistant.web.admins import AdminCheck
from assistant.web.session import AdminSessionInterface, rejected_session
from assistant.web.signin import SignInError, SlackSignIn

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PERIODS = (7, 28, 90, 365)  # days a page may cover
DEFAULT_DAYS = 28
STATE_SECONDS = 600  # a sign-in must end within ten minutes of its start
PAGES = (
    ("overview", "Overview"),
    ("gaps", "Gaps"),
    ("content", "Content"),
    ("questions", "Questions"),
    ("mentors", "Mentors"),
    ("courses", "Courses"),
)
COURSES_PER_PAGE = 100  # of the catalogue (the CSV has all of it)
GAP_FILTERS = ("active", "open", "assigned", "closed", "all")  # active: open and assigned
OPEN = ("signin", "login", "callback", "static")  # the endpoints that need no session


class Refusal(HTTPException):
    """A refusal shown as a page: `code`, a title and what to do."""

    def __init__(self, code: int, title: str, message: str, *, sign_in: bool = False) -> None:
        super().__init__(message)
        self.code, self.title, self.message, self.sign_in = code, title, message, sign_in


def create_web_app(settings, service, *, workspace_client=None) -> Flask:
    """The admin app for `service`'s database and index, configured by `settings`. `workspace_client`: team id
    -> a slack_sdk WebClient with that workspace's bot token (OAuth installs; `MomentWSGI` passes it), for
    reading the admin user group; by default the one bot token's."""
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    missing = [
        name
        for name, value in (
            ("MOMENT_WEB_SECRET", settings.web_secret),
            ("SLACK_CLIENT_ID", settings.slack_client_id),
            ("SLACK_CLIENT_SECRET", settings.slack_client_secret),
        )
        if not value
    ]
    app.config.update(
        SECRET_KEY=settings.web_secret.get_secret_value() if settings.web_secret else secrets.token_hex(32),
        SESSION_COOKIE_NAME="moment_admin",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web_cookie_secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.web_session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.session_interface = AdminSessionInterface()
    signin = None if missing else SlackSignIn(settings)
    admins = AdminCheck(settings, service, workspace_client)
    states = service.web_signin_states(STATE_SECONDS)

    @app.errorhandler(HTTPException)
    def refused(exc: HTTPException):
        if isinstance(exc, Refusal):
            title, message, sign_in = exc.title, exc.message, exc.sign_in
        else:
            title, message, sign_in = exc.name, exc.description, False
        return render_template("refusal.html", title=title, message=message, sign_in=sign_in), exc.code

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def guard():
        if missing:
            raise Refusal(503, "The admin pages are not set up", f"Set {', '.join(missing)} (see docs/deploying.md).")
        why = rejected_session()
        if why == "expired":
            raise Refusal(401, "Your session has expired", "Sign in with Slack again.", sign_in=True)
        if why == "forged":
            raise Refusal(400, "Your sign-in is not valid", "Its cookie is not one Moment signed.", sign_in=True)
        if request.endpoint in OPEN:
            return None
        if "user" not in session:
            return redirect(url_for("signin"))
        if not admins.is_admin(session["user"], session["team"]):
            session.clear()
            raise Refusal(403, "Not a Moment admin", "Only Moment's admins of this workspace can open these pages.")
        if request.method == "POST":
            token = request.form.get("csrf_token", "")
            if not hmac.compare_digest(token, session.get("csrf", "")):
                raise Refusal(400, "This form has expired", "Go back, reload the page and try again.")
        return None

    @app.context_processor
    def shared():
        return {"pages": PAGES, "person": session.get("name"), "csrf_token": session.get("csrf", "")}

    # -- signing in ---------------------------------------------------------------------------------

    def redirect_uri() -> str:
        base = (settings.base_url or request.host_url).rstrip("/")
        return f"{base}/admin/oidc/callback"

    @app.get("/signin", endpoint="signin")
    def signin_page():
        return render_template("signin.html")

    @app.get("/login")
    def login():
        state, nonce = states.issue(), secrets.token_urlsafe(24)
        session.clear()
        session["signin"] = {"state": state, "nonce": nonce}
        session.permanent = True
        return redirect(signin.authorize_url(state, nonce, redirect_uri()))

    @app.get("/oidc/callback")
    def callback():
        pending = session.pop("signin", None)
        state = request.args.get("state", "")
        if request.args.get("error"):
            raise Refusal(403, "Sign-in was not approved", "Slack did not sign you in.", sign_in=True)
        if not state or not request.args.get("code"):
            raise Refusal(400, "This sign-in is incomplete", "Slack's answer carries no state or code.", sign_in=True)
        if not pending or not hmac.compare_digest(state, pending["state"]):
            raise Refusal(
                400, "This sign-in was not started here", "It was started in another browser, or already used.",
                sign_in=True,
            )  # fmt: skip
        if not states.consume(state):
            raise Refusal(400, "This sign-in has expired", "It was already used, or took too long.", sign_in=True)
        try:
            identity = signin.identity(request.args["code"], pending["nonce"], redirect_uri())
        except SignInError as exc:
            raise Refusal(400, "Sign-in failed", f"{exc}.", sign_in=True) from None
        team = admins.workspace_of(identity)
        if team is None:
            log.warning("web sign-in refused: %s of %s (a workspace Moment does not serve)", identity.user_id,
                        identity.team_id)  # fmt: skip
            raise Refusal(403, "Not a workspace Moment serves", "Moment is not installed in your Slack workspace.")
        allowed = admins.is_admin(identity.user_id, team)
        service.audit.record(identity.user_id, "web sign-in", allowed, team_id=team)
        if not allowed:
            raise Refusal(403, "Not a Moment admin", "Only Moment's admins of this workspace can open these pages.")
        session.clear()
        session.update(user=identity.user_id, team=team, name=identity.name, csrf=secrets.token_urlsafe(32))
        session.permanent = True
        return redirect(url_for("overview"))

    @app.post("/signout")
    def signout():
        session.clear()
        return redirect(url_for("signin"))

    # -- pages --------------------------------------------------------------------------------------

    def period() -> Period:
        days = request.args.get("days", str(DEFAULT_DAYS))
        if not days.isdigit() or int(days) not in PERIODS:
            raise Refusal(400, "Not a period these pages show", f"days is one of {', '.join(map(str, PERIODS))}.")
        return Period.last(int(days))

    def choice(name: str, allowed, default: str) -> str:
        value = request.args.get(name, default)
        if value not in allowed:
            raise Refusal(400, f"Not a {name} these pages know", f"{name} is one of {', '.join(allowed)}.")
        return value

    def csv_response(name: str, header_rows) -> Response:
        header, rows = header_rows
        return Response(
            tables.csv_lines(header, rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="moment-{name}-{dt.date.today()}.csv"'},
        )

    def page(template: str, **values):
        return render_template(template, days=values.pop("period").days, periods=PERIODS, **values)

    @app.get("/")
    def overview():
        p = period()
        return page("overview.html", period=p, overview=service.insights.overview(p, session["team"]))

    @app.get("/overview.csv")
    def overview_csv():
        return csv_response("overview", tables.overview_rows(service.insights.overview(period(), session["team"])))

    def content_listing():
        sort = choice("sort", CONTENT_SORTS, "worst")
        descending = choice("order", ("asc", "desc"), "asc") == "desc"
        p = period()
        items = service.insights.content_effectiveness(p, session["team"], sort=sort, descending=descending)
        return p, items, sort, descending

    @app.get("/content", endpoint="content")
    def content_page():
        p, items, sort, descending = content_listing()
        return page("content.html", period=p, items=items, sort=sort, descending=descending)

    @app.get("/content.csv")
    def content_csv():
        return csv_response("content", tables.content_rows(content_listing()[1]))

    @app.get("/questions")
    def questions():
        show = choice("show", OUTCOME_FILTERS, "all")
        before = request.args.get("before")
        if before is not None and not before.isdigit():
            raise Refusal(400, "Not a page of questions", "before is the number of a question.")
        p = period()
        found = service.insights.questions(p, session["team"], show=show, before=int(before) if before else None)
        return page("questions.html", period=p, found=found, show=show, filters=OUTCOME_FILTERS)

    @app.get("/questions.csv")
    def questions_csv():
        show = choice("show", OUTCOME_FILTERS, "all")
        rows = service.insights.all_questions(period(), session["team"], show=show)
        return csv_response("questions", tables.question_rows(rows))

    @app.get("/mentors")
    def mentors():
        p = period()
        return page("mentors.html", period=p, mentors=service.insights.mentor_figures(p, session["team"]))

    @app.get("/mentors.csv")
    def mentors_csv():
        return csv_response("mentors", tables.mentor_rows(service.insights.mentor_figures(period(), session["team"])))

    @app.get("/courses")
    def courses():
        p = period()
        number = request.args.get("page", "1")
        if not number.isdigit() or int(number) < 1:
            raise Refusal(400, "Not a page of the catalogue", "page is a number from 1.")
        number = int(number)
        catalogue, total = service.insights.course_catalogue(
            session["team"], limit=COURSES_PER_PAGE, offset=(number - 1) * COURSES_PER_PAGE
        )
        figures = service.insights.course_figures(p, session["team"])
        page_count = max(1, -(-total // COURSES_PER_PAGE))
        return page("courses.html", period=p, catalogue=catalogue, total=total, figures=figures,
                    by_course={f.course_id: f for f in figures}, number=number, page_count=page_count)  # fmt: skip

    @app.get("/courses.csv")
    def courses_csv():
        p = period()
        catalogue, _ = service.insights.course_catalogue(session["team"])
        figures = {f.course_id: f for f in service.insights.course_figures(p, session["team"])}
        return csv_response("courses", tables.course_rows(catalogue, figures))

    # -- gaps ---------------------------------------------------------------------------------------

    def gap_listing():
        status = choice("status", GAP_FILTERS, "active")
        p = period()
        found = service.gaps.list(session["team"], None if status == "active" else status, days=p.days, now=p.end,
                                  privacy=service.insights.question_privacy())  # fmt: skip
        return p, status, found

    @app.get("/gaps")
    def gaps():
        p, status, found = gap_listing()
        return page("gaps.html", period=p, gaps=found, status=status, filters=GAP_FILTERS)

    @app.get("/gaps.csv")
    def gaps_csv():
        return csv_response("gaps", tables.gap_rows(gap_listing()[2]))

    def gap_page(gap_id: int, *, error: str | None = None, code: int = 200, typed=None):
        """The gap's page; after a refused change, with why (`error`) and what was typed in its form kept."""
        p = period()
        try:
            detail = service.gaps.detail(session["team"], gap_id, days=p.days, now=p.end,
                                         privacy=service.insights.question_privacy())  # fmt: skip
        except GapNotFound as exc:
            raise Refusal(404, "No such gap", str(exc)) from None
        return page("gap.html", period=p, detail=detail, gap=detail.gap, error=error, typed=typed or {}), code

    @app.get("/gaps/<int:gap_id>")
    def gap(gap_id: int):
        return gap_page(gap_id)

    def change_gap(gap_id: int, action: str, change):
        """`change(team, actor)` -> (what to say, what the audit log adds), made by the signed-in admin and written
        to the audit log, allowed or refused: back to the gap's page saying what was done, or the page again
        saying why not (400), or a 404 for a gap that is not the workspace's."""
        team, user = session["team"], session["user"]
        try:
            said, audited = change(team, user)
        except GapError as exc:
            service.audit.record(user, f"web gap {action}", False, f"gap {gap_id}: {exc}"[:500], team_id=team)
            if isinstance(exc, GapNotFound):
                raise Refusal(404, "No such gap", str(exc)) from None
            return gap_page(gap_id, error=str(exc), code=400, typed=request.form)
        service.audit.record(user, f"web gap {action}", True, f"gap {gap_id}{audited}"[:500], team_id=team)
        flash(said)
        return redirect(url_for("gap", gap_id=gap_id))

    def note() -> tuple[str | None, str]:
        """The form's note (why), and how the audit log adds it."""
        why = request.form.get("note", "").strip()[:500] or None
        return why, f": {why}" if why else ""

    @app.post("/gaps/<int:gap_id>/assign")
    def assign_gap(gap_id: int):
        def assign(team: str, user: str):
            detail = service.gaps.assign(team, gap_id, request.form.get("owner", ""), user)
            owner = detail.gap.owner_id
            return f"Gap {gap_id} is assigned to {owner}; {tell_owner(team, detail, user)}.", f" to {owner}"

        return change_gap(gap_id, "assign", assign)

    def tell_owner(team: str, detail, user: str) -> str:
        """DM the gap's new owner its questions (`tell_gap_owner`); what came of it, as the page says it."""
        from slack_sdk.errors import SlackApiError

        from assistant.slack.outbound import tell_gap_owner

        client = admins.client(team)
        if client is None:
            return "they were not told: Moment has no Slack token for this workspace"
        try:
            tell_gap_owner(client, detail, user)
        except SlackApiError as exc:
            return f"they were not told: Slack said {exc.response.get('error')}"
        except OSError as exc:
            log.error("the owner of gap %s was not told: %r", detail.gap.id, exc)
            return "they were not told: Slack could not be reached"
        return "Moment told them by DM, with its questions"

    @app.post("/gaps/<int:gap_id>/close")
    def close_gap(gap_id: int):
        why, audited = note()
        return change_gap(gap_id, "close", lambda team, user: (
            f"Gap {service.gaps.close(team, gap_id, user, why).gap.id} is closed.", audited))  # fmt: skip

    @app.post("/gaps/<int:gap_id>/reopen")
    def reopen_gap(gap_id: int):
        why, audited = note()
        return change_gap(gap_id, "reopen", lambda team, user: (
            f"Gap {gap_id} is {service.gaps.reopen(team, gap_id, user, why).gap.status} again.", audited))  # fmt: skip

    return app
