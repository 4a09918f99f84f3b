"""Records: what happened, for L&D and the organisation's Learning Record Store. Knows nothing of Slack.

`reports` reads the interaction log into usage, content gaps and mentor figures (Markdown, CSV, JSON,
charts); `xapi` queues xAPI statements in an outbox and delivers them through the `lrs` client;
`privacy` forgets a person. The use cases: `interactions` (each question recorded on arrival and answered,
votes, followers; `spool` keeps records on the host while the database is down), `retention`, `audit`.
Through faults: `deliveries` claims each Slack delivery once (in the
database, on the host's disk while it is away); `intake` records work before it is acknowledged, or
spools it on the host and writes it when the database is back.

Public surface: `build_report`, `Report`, `to_markdown`, `to_csv`, `to_json`, `chart_image`, `chart_png`,
`CHART_FORMATS`, `counted`, `export_csv`, `XapiOutbox`, `LrsClient`, `forget_user`.
"""

from assistant.records.lrs import LrsClient
from assistant.records.privacy import forget_user
from assistant.records.reports import (
    CHART_FORMATS,
    Report,
    build_report,
    chart_image,
    chart_png,
    counted,
    export_csv,
    to_csv,
    to_json,
    to_markdown,
)
from assistant.records.xapi import XapiOutbox

__all__ = [
    "CHART_FORMATS",
    "LrsClient",
    "Report",
    "XapiOutbox",
    "build_report",
    "chart_image",
    "chart_png",
    "counted",
    "export_csv",
    "forget_user",
    "to_csv",
    "to_json",
    "to_markdown",
]
