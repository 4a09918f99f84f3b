"""Who may see which item now: a person's `Viewer` (their user groups, read from Slack again when the cache
is stale), an item's audience in the serving index, and the sources several people may all see.

    viewers = Viewers(groups, retriever.version)
    viewers.viewer_for("U123", "T1").may_see(viewers.audience_of("hr/pay.md"))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from assistant.access.audiences import GroupDirectory, GroupSource, Viewer, visible_to_all

log = logging.getLogger(__name__)

# A web process with a stale group cache asks Slack itself, at most this often (the worker refreshes too).
GROUP_REFRESH_RETRY_SECONDS = 60.0


class Viewers:
    """What people may see: their groups from `groups` (the shared cache), audiences from the index that
    `index()` serves (`Retriever.version`)."""

    def __init__(self, groups: GroupDirectory, index: Callable[[], object]) -> None:
        self.groups = groups
        self.group_source: GroupSource | None = None  # set by the Slack layer: asked when the cache is stale
        self._index = index
        self._group_refresh_lock = threading.Lock()
        self._group_refresh_tried = float("-inf")

    def viewer_for(self, user_id: str, team_id: str | None = None) -> Viewer:
        """What `user_id` may see: their user groups from the shared cache. A stale or missing cache is read
        from Slack again first (when a `group_source` is set, at most once a minute per process); when that
        fails too, the viewer is unknown and sees only content for everyone."""
        viewer = self.groups.viewer(user_id, team_id)
        if viewer.known or self.group_source is None:
            return viewer
        with self._group_refresh_lock:
            viewer = self.groups.viewer(user_id, team_id)  # another thread may have just read them
            if viewer.known or time.monotonic() - self._group_refresh_tried < GROUP_REFRESH_RETRY_SECONDS:
                return viewer
            self._group_refresh_tried = time.monotonic()
            try:
                refreshed = self.group_source.refresh(team_id)
            except Exception:
                log.exception("user groups could not be read")
                refreshed = False
        return self.groups.viewer(user_id, team_id) if refreshed else viewer

    def audience_names(self) -> set[str] | None:
        """Every user group some indexed item is restricted to (None: no index to say)."""
        try:
            version = self._index()
        except Exception:
            return None
        # People named one by one (synced sources) are not user groups to read from Slack.
        return {
            name
            for audience in version.restricted.values()
            for name in audience
            if not (name[:1] in "UW" and name.isupper())
        }

    def audience_of(self, path: str, recorded: Iterable[str] | None = None) -> tuple[str, ...]:
        """Who may see the item at `path` now: its audience in the serving index, or, for an item no longer
        indexed, the audience recorded when it was shown."""
        try:
            doc = self._index().by_path.get(path)
        except Exception:
            doc = None
        if doc is not None:
            return doc.meta.audience
        return tuple(recorded or ())

    def visible_sources(self, sources: list[dict], user_ids: Iterable[str], team_id: str | None = None) -> list[dict]:
        """The sources (as stored with an answer) that every one of `user_ids` may see now (a mentor's context:
        the asker and the mentor)."""
        audiences = [self.audience_of(s.get("path", ""), s.get("audience")) for s in sources]
        if not any(audiences):
            return sources
        viewers = [self.viewer_for(u, team_id) for u in dict.fromkeys(user_ids)]
        return [s for s, a in zip(sources, audiences, strict=True) if visible_to_all(a, viewers)]
