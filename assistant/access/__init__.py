"""Access: who may see what. Knows nothing of Slack.

`tenancy` keeps workspaces apart (whose a record is, who administers a workspace, which content folder it
is answered from); `audiences` decides which content a person may see, from the user groups they are in
(a `Viewer`, read from a cache in the database that fails closed); `viewers` is the use case: what a
person may see now, an item's audience in the serving index.

Public surface: `Viewer`, `GroupDirectory`, `GroupSource`, `UserGroupInfo`, `WITHHELD_NOTICE`,
`visible_to_all`, `inherited_audience`, `Workspaces`, `WorkspaceError`, `ContentScope`, `DEFAULT_TEAM`.
"""

from assistant.access.audiences import (
    WITHHELD_NOTICE,
    GroupDirectory,
    GroupSource,
    UserGroupInfo,
    Viewer,
    inherited_audience,
    visible_to_all,
)
from assistant.access.tenancy import DEFAULT_TEAM, ContentScope, WorkspaceError, Workspaces

__all__ = [
    "DEFAULT_TEAM",
    "WITHHELD_NOTICE",
    "ContentScope",
    "GroupDirectory",
    "GroupSource",
    "UserGroupInfo",
    "Viewer",
    "WorkspaceError",
    "Workspaces",
    "inherited_audience",
    "visible_to_all",
]
