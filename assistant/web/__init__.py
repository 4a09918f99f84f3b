"""The admin web app at /admin: Sign in with Slack, then Overview, Content, Questions and Mentors, per
workspace, over `assistant.insights` (through `MomentService`). An edge like Slack and the CLI: it renders
what the core computes and reaches no database itself. `MomentWSGI` mounts it in `moment serve`.

Public surface: `create_web_app`.
"""

from assistant.web.app import create_web_app

__all__ = ["create_web_app"]
