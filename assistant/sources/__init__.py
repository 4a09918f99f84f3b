"""Content sources that stay in sync: the registry (in the database), the sync and the prune pass.

    sources = Sources(operations)                         # operations: assistant.operations.IndexOperations
    sources.add("web", "intranet", "https://intranet.example/kb/", options={"max_pages": 500})
    result = sources.sync("intranet")                     # changes since the cursor, then one index build
    sources.show("intranet").last_failures                # each item that failed, with its reason

A sync claims the source's lease (a conditional UPDATE of its row, so two syncs of one source never run at
once on any host), asks the connector (`indexer.connectors`) what changed since the source's cursor, writes
the changed items into the source's items folder (`assistant.sources.items`), deletes the deleted ones, and
builds through the one indexing path (`IndexOperations.index`), which embeds only what changed and publishes
atomically. One item that fails is listed with its reason and the others go on; a source that fails as a
whole (`SourceUnavailable`) changes nothing, so its last good items keep answering, and says so. The cursor
moves only when a sync completes.

The content folder is the default source, `content` (kind `folder`, read in place, at the index's root):
`moment index` and `moment demo` build it as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import or_, select, update

from assistant.db.models import ContentSource, utcnow
from assistant.sources.items import ItemFolder, item_meta
from assistant.sources.people import PeopleDirectory
from assistant.sources.views import describe, when  # noqa: F401  (the lines `show` prints)
from indexer.connectors import KINDS, Change, SourceError, SourceUnavailable, open_connector

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "content"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LEASE = dt.timedelta(minutes=10)
RENEW_EVERY = 60.0  # seconds between lease renewals during a long sync
CREDENTIAL_WORDS = ("token", "password", "secret", "apikey", "api_key", "client_secret", "private_key")


class SourceNotFound(SourceError):
    """No source of that name."""


class SourceBusy(SourceError):
    """Another sync of the source holds its lease."""


@dataclass(frozen=True)
class SourceView:
    """A source as `moment source show` and `/moment status` show it (no cursor, no credentials)."""

    name: str
    kind: str
    target: str
    settings: dict
    schedule_minutes: int
    prune_hours: int
    team_id: str | None
    items: int
    added_by: str | None
    added_at: dt.datetime | None
    last_status: str | None
    last_started_at: dt.datetime | None
    last_finished_at: dt.datetime | None
    last_good_at: dt.datetime | None
    last_changes: dict | None
    last_failures: list | None
    last_error: str | None
    next_run_at: dt.datetime | None
    last_prune_at: dt.datetime | None
    running: bool = False

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in out.items()}


@dataclass
class SyncResult:
    """What one sync (or prune pass) did."""

    name: str
    status: str = "ok"  # ok | partial (some items failed) | failed (the source as a whole) | interrupted
    added: int = 0
    changed: int = 0
    deleted: int = 0
    failures: list[dict] = field(default_factory=list)  # [{"id": ..., "reason": ...}]
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    items: int = 0
    index_version: str | None = None
    published: bool = False
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return self.added + self.changed + self.deleted

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _view(row: ContentSource, now: dt.datetime) -> SourceView:
    running = row.lease_holder is not None and row.lease_until is not None and row.lease_until > now
    return SourceView(
        **{f: getattr(row, f) for f in SourceView.__dataclass_fields__ if f != "running"},
        running=running,
    )


def _secret_options(options: dict) -> list[str]:
    """Options that look like credentials themselves (options naming where they are, `*_env` and
    `secrets_file`, are fine)."""
    named = [k for k in options if any(word in k.lower().replace("-", "_") for word in CREDENTIAL_WORDS)]
    return [k for k in named if not k.endswith("_env") and k != "secrets_file"]


def resolve_secrets(options: dict) -> dict:
    """The credentials a source's options point at: `X_env: VAR` reads $VAR as X, `secrets_file: PATH` reads a
    YAML mapping. Raises `SourceUnavailable` (the sync fails as a whole, its items stay) when one is missing;
    values are never logged."""
    import yaml

    found: dict = {}
    if path := options.get("secrets_file"):
        try:
            data = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SourceUnavailable(f"The secrets file {path} cannot be read ({type(exc).__name__}).") from None
        if not isinstance(data, dict):
            raise SourceUnavailable(f"The secrets file {path} must be a YAML mapping of names to values.")
        found.update({str(k): str(v) for k, v in data.items()})
    for key, variable in options.items():
        if key.endswith("_env"):
            value = os.environ.get(str(variable))
            if not value:
                raise SourceUnavailable(f"The environment variable {variable} (the source's {key}) is not set.")
            found[key[: -len("_env")]] = value
    return found


class Sources:
    """The sources of one deployment. `operations` builds the index after a sync (None: only the registry);
    `people` maps readers' e-mails to Slack users (None: restricted items are withheld)."""

    def __init__(self, operations, people: PeopleDirectory | None = None) -> None:
        self.operations = operations
        self.settings = operations.settings
        self.database = operations.database
        self.people = people
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- the registry ------------------------------------------------------------------------------

    def ensure_default(self) -> None:
        """The content folder as the source `content` (read in place; synced only on request, as the
        nightly re-index and `moment index` build it anyway)."""
        with self.database.session() as session:
            if session.get(ContentSource, DEFAULT_SOURCE) is None:
                session.add(
                    ContentSource(
                        name=DEFAULT_SOURCE,
                        kind="folder",
                        target=str(self.settings.content_dir),
                        settings={"in_place": True},
                        schedule_minutes=0,
                        prune_hours=0,
                        items=0,
                    )
                )

    def add(
        self,
        kind: str,
        name: str,
        target: str,
        *,
        options: dict | None = None,
        schedule_minutes: int = 60,
        prune_hours: int = 24,
        team_id: str | None = None,
        by: str | None = None,
    ) -> SourceView:
        """Register a source (it syncs at the worker's next pass, or with `sync`); raises `SourceError`
        with what to change."""
        options = dict(options or {})
        if not NAME.match(name or ""):
            raise SourceError(
                f"'{name}' cannot name a source: use lower-case letters, digits, - and _ (up to 64), like intranet."
            )
        if kind not in KINDS:
            raise SourceError(f"Unknown source kind '{kind}': use one of {', '.join(KINDS)}.")
        if secret := _secret_options(options):
            raise SourceError(
                f"Credentials are never stored with a source ({', '.join(secret)}): put them in an environment "
                "variable or a secrets file and name it (--option secrets_file=/path/to/file)."
            )
        if (Path(self.settings.content_dir) / name).exists():
            raise SourceError(
                f"The content folder already has {name}/: a source's items appear as {name}/… in the index. "
                "Choose another name."
            )
        if kind == "folder":
            folder = Path(target).expanduser()
            if not folder.is_dir():
                raise SourceError(f"The folder {target} does not exist on this host.")
            target = str(folder.resolve())
        open_connector(
            kind, target, {k: v for k, v in options.items() if k != "secrets_file" and not k.endswith("_env")}
        )
        with self.database.session() as session:
            if session.get(ContentSource, name) is not None:
                raise SourceError(f"There is already a source called {name}: remove it first, or choose another name.")
            row = ContentSource(
                name=name,
                kind=kind,
                target=target,
                settings=options,
                schedule_minutes=max(0, int(schedule_minutes)),
                prune_hours=max(0, int(prune_hours)),
                team_id=team_id,
                items=0,
                added_by=by,
                next_run_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _view(row, utcnow())

    def list(self) -> list[SourceView]:
        self.ensure_default()
        now = utcnow()
        with self.database.session() as session:
            return [_view(r, now) for r in session.scalars(select(ContentSource).order_by(ContentSource.name))]

    def show(self, name: str) -> SourceView:
        if name == DEFAULT_SOURCE:
            self.ensure_default()
        with self.database.session() as session:
            row = session.get(ContentSource, name)
            if row is None:
                raise SourceNotFound(self._unknown(session, name))
            return _view(row, utcnow())

    @staticmethod
    def _unknown(session, name: str) -> str:
        names = session.scalars(select(ContentSource.name).order_by(ContentSource.name)).all()
        return f"There is no source called '{name}'. Sources: {', '.join(names) or 'none'}."

    def remove(self, name: str, *, rebuild: bool = True):
        """Forget a source and its items; with `rebuild`, build the index so they stop answering now."""
        if name == DEFAULT_SOURCE:
            raise SourceError("The content folder is the default source and cannot be removed.")
        with self.database.session() as session:
            row = session.get(ContentSource, name)
            if row is None:
                raise SourceNotFound(self._unknown(session, name))
            now = utcnow()
            if row.lease_holder and row.lease_until and row.lease_until > now:
                raise SourceBusy(f"{name} is syncing now; remove it when the sync is over.")
            session.delete(row)
        ItemFolder(self.settings.home, name).remove_all()
        return self.operations.index() if rebuild else None

    # -- the lease ---------------------------------------------------------------------------------

    def _claim(self, name: str) -> ContentSource:
        now = utcnow()
        with self.database.session() as session:
            won = session.execute(
                update(ContentSource)
                .where(
                    ContentSource.name == name,
                    or_(ContentSource.lease_holder.is_(None), ContentSource.lease_until < now),
                )
                .values(lease_holder=self.holder, lease_until=now + LEASE, last_started_at=now)
            ).rowcount
            row = session.get(ContentSource, name)
            if row is None:
                raise SourceNotFound(self._unknown(session, name))
            if not won:
                raise SourceBusy(
                    f"{name} is already syncing ({row.lease_holder.split(':')[0]}, since "
                    f"{row.last_started_at:%H:%M:%S} UTC); try again when it is done."
                )
            session.expunge(row)
            return row

    def _renew(self, name: str) -> None:
        with self.database.session() as session:
            session.execute(
                update(ContentSource)
                .where(ContentSource.name == name, ContentSource.lease_holder == self.holder)
                .values(lease_until=utcnow() + LEASE)
            )

    def _finish(self, name: str, result: SyncResult, started: dt.datetime, cursor, row: ContentSource) -> None:
        now = utcnow()
        values = {
            "lease_holder": None,
            "lease_until": None,
            "last_status": result.status,
            "last_finished_at": now,
            "last_changes": {"added": result.added, "changed": result.changed, "deleted": result.deleted},
            "last_failures": result.failures[:200],
            "last_error": result.error,
            "items": result.items,
        }
        if result.status in ("ok", "partial"):
            values["cursor"] = cursor
            values["last_good_at"] = now
        retry = getattr(result, "_retry_after", None)
        if row.schedule_minutes:
            wait = dt.timedelta(minutes=row.schedule_minutes)
            if result.status == "failed":  # try again sooner (but no sooner than the source asked)
                wait = max(min(wait, dt.timedelta(minutes=15)), dt.timedelta(seconds=retry or 0))
            values["next_run_at"] = now + wait
        else:
            values["next_run_at"] = None
        with self.database.session() as session:
            session.execute(
                update(ContentSource)
                .where(ContentSource.name == name, ContentSource.lease_holder == self.holder)
                .values(**values)
            )

    # -- sync --------------------------------------------------------------------------------------

    def sync(self, name: str, *, on_change: Callable[[Change], None] | None = None, build: bool = True) -> SyncResult:
        """Sync one source now (see the module docstring). Raises `SourceBusy` when another sync holds
        it and `SourceNotFound` for an unknown name; everything else is in the result."""
        if name == DEFAULT_SOURCE:
            self.ensure_default()
        clock = time.perf_counter()
        row = self._claim(name)
        started = utcnow()
        result = SyncResult(name)
        cursor = row.cursor
        try:
            cursor = self._sync(row, result, on_change)
            if build and (result.changes or not self._indexed()):
                self._build(row, result)
        except SourceUnavailable as exc:
            result.status = "failed"
            result._retry_after = exc.retry_after  # type: ignore[attr-defined]
            kept = row.items or 0
            result.error = f"{exc} Nothing was changed: the {kept} items of the last good sync keep answering."
            result.items = kept
        except SourceError as exc:
            result.status = "failed"
            result.error = f"{exc} Nothing was changed: the items of the last good sync keep answering."
            result.items = row.items or 0
        except BaseException as exc:  # Ctrl-C, a bug: the last good index keeps serving
            result.status = "failed" if isinstance(exc, Exception) else "interrupted"
            result.error = (
                f"The sync stopped ({exc!r}); the index was not published, the last good items keep answering."
            )
            result.items = row.items or 0
            result.seconds = time.perf_counter() - clock
            self._finish(name, result, started, row.cursor, row)
            raise
        if result.status == "ok" and result.failures:
            result.status = "partial"
        result.seconds = time.perf_counter() - clock
        self._finish(name, result, started, cursor, row)
        log.info(
            "source %s synced: %s, +%d ~%d -%d, %d failed",
            name,
            result.status,
            result.added,
            result.changed,
            result.deleted,
            len(result.failures),
        )
        return result

    def _indexed(self) -> bool:
        return self.operations.store.current() is not None

    def _connector(self, row: ContentSource):
        settings = row.settings or {}
        options = {
            k: v for k, v in settings.items() if k not in ("in_place", "secrets_file") and not k.endswith("_env")
        }
        target = str(self.settings.content_dir) if row.name == DEFAULT_SOURCE else row.target  # it may have moved
        return open_connector(row.kind, target, options, secrets=resolve_secrets(settings))

    def _sync(self, row: ContentSource, result: SyncResult, on_change) -> dict:
        connector = self._connector(row)
        in_place = bool((row.settings or {}).get("in_place"))
        folder = ItemFolder(self.settings.home, row.name)
        renewed = time.monotonic()
        for change in connector.changes(row.cursor):
            if time.monotonic() - renewed > RENEW_EVERY:
                self._renew(row.name)
                renewed = time.monotonic()
            try:
                self._apply(row, connector, folder, change, result, in_place)
            except Exception as exc:  # one item never stops the others
                log.warning("source %s: item %s failed: %r", row.name, change.id, exc)
                result.failures.append({"id": change.id, "reason": f"Could not be stored ({exc})."})
            if on_change is not None:
                on_change(change)
        result.notes.extend(getattr(connector, "notes", ()))
        result.items = len(connector.cursor.get("digests", {})) if in_place else folder.count()
        return connector.cursor

    def _apply(self, row, connector, folder: ItemFolder, change: Change, result: SyncResult, in_place: bool) -> None:
        known = row.cursor is not None and (
            change.id in (row.cursor.get("digests") or row.cursor.get("pages") or row.cursor.get("items") or {})
        )
        if change.error:
            result.failures.append({"id": change.id, "reason": change.error})
            return
        if change.deleted:
            if in_place or (self._delete_copy(folder, change.id) if row.kind == "folder" else folder.delete(change.id)):
                result.deleted += 1
            return
        if in_place:
            if known:
                result.changed += 1
            else:
                result.added += 1
            return
        item = change.item
        if item.content is None:
            item = connector.fetch(item.id)
        if row.kind == "folder":
            folder.write_file(item.id, item.content)
            for sidecar in (".yml", ".yaml"):
                path = (connector.root / item.id).with_suffix(sidecar)
                if path.is_file():
                    folder.write_file(str(Path(item.id).with_suffix(sidecar)), path.read_bytes())
        else:
            audience = None
            if not item.access.public:
                readers = item.access.readers()
                mapped = self._slack_ids(readers)
                audience = sorted({user for user in mapped.values() if user})
                if not audience:
                    existed = folder.delete(item.id)
                    result.deleted += int(existed)
                    result.failures.append(
                        {
                            "id": item.id,
                            "reason": f"Shared at its source with {len(readers)} people, none of whom Moment can "
                            "find in Slack by e-mail: not answered from (it would otherwise be shown to people "
                            "who may not read it).",
                        }
                    )
                    return
            owner = None
            if item.owner and "@" in item.owner:
                owner = self._slack_ids([item.owner]).get(item.owner.lower())
            existed = bool(folder.files_of(item.id))
            folder.write(item, item_meta(item, row.name, owner, audience))
            if existed:
                result.changed += 1
            else:
                result.added += 1
            return
        if known:
            result.changed += 1
        else:
            result.added += 1

    @staticmethod
    def _delete_copy(folder: ItemFolder, relative: str) -> bool:
        """A folder source's copied file and its sidecar."""
        stem = str(Path(relative).with_suffix(""))
        for sidecar in (".yml", ".yaml"):
            folder.delete_file(stem + sidecar)
        return folder.delete_file(relative)

    def _slack_ids(self, emails) -> dict[str, str | None]:
        if self.people is None:
            return {e.lower(): None for e in emails}
        return self.people.slack_ids(emails)

    def _build(self, row: ContentSource, result: SyncResult) -> None:
        indexed = self.operations.index()
        report = indexed.report
        result.index_version = report.version
        result.published = report.published
        prefix = "" if (row.settings or {}).get("in_place") else f"{row.name}/"
        for failure in report.failed:
            if failure.path.startswith(prefix):
                result.failures.append({"id": failure.path, "reason": failure.reason})

    # -- prune -------------------------------------------------------------------------------------

    def prune(self, name: str) -> SyncResult:
        """The prune pass: ask the source for the ids it has now (ids only) and delete every item it no
        longer has, then build. A source that cannot be asked changes nothing."""
        clock = time.perf_counter()
        row = self._claim(name)
        result = SyncResult(name)
        try:
            if (row.settings or {}).get("in_place"):
                return result
            connector = self._connector(row)
            listed = connector.ids()
            if listed is None:  # no listing cheaper than a sync (a crawled site): its syncs remove what is gone
                result.notes.append("No prune pass for this kind of source: each sync removes what is gone.")
                return result
            present = set(listed)
            folder = ItemFolder(self.settings.home, name)
            local = set(((row.cursor or {}).get("pages") or (row.cursor or {}).get("items") or {}).keys())
            local |= set(((row.cursor or {}).get("digests") or {}).keys())
            gone = sorted(local - present)
            for item_id in gone:
                if self._delete_copy(folder, item_id) if row.kind == "folder" else folder.delete(item_id):
                    result.deleted += 1
            if result.deleted:
                self._build(row, result)
            result.items = folder.count()
        except SourceUnavailable as exc:
            result.status, result.error = "failed", f"Prune skipped: {exc}"
        finally:
            result.seconds = time.perf_counter() - clock
            with self.database.session() as session:
                values = {"lease_holder": None, "lease_until": None, "last_prune_at": utcnow()}
                if result.deleted:
                    values["items"] = result.items
                    cursor = dict(row.cursor or {})
                    for key in ("pages", "items", "digests"):
                        if key in cursor:
                            cursor[key] = {k: v for k, v in cursor[key].items() if k in present}
                    values["cursor"] = cursor
                session.execute(
                    update(ContentSource)
                    .where(ContentSource.name == name, ContentSource.lease_holder == self.holder)
                    .values(**values)
                )
        return result

    # -- the worker --------------------------------------------------------------------------------

    def run_due(self, now: dt.datetime | None = None) -> list[SyncResult]:
        """Sync every source whose next run has come (the worker, every minute)."""
        now = now or utcnow()
        with self.database.session() as session:
            due = session.scalars(
                select(ContentSource.name).where(
                    ContentSource.schedule_minutes > 0,
                    or_(ContentSource.next_run_at.is_(None), ContentSource.next_run_at <= now),
                )
            ).all()
        done = []
        for name in due:
            try:
                done.append(self.sync(name))
            except SourceBusy:
                continue
        return done

    def prune_due(self, now: dt.datetime | None = None) -> list[SyncResult]:
        """The prune pass of every source whose prune interval has passed."""
        now = now or utcnow()
        done = []
        with self.database.session() as session:
            rows = session.scalars(select(ContentSource).where(ContentSource.prune_hours > 0)).all()
            due = [
                r.name
                for r in rows
                if r.last_good_at is not None
                and (r.last_prune_at is None or r.last_prune_at + dt.timedelta(hours=r.prune_hours) <= now)
            ]
        for name in due:
            try:
                done.append(self.prune(name))
            except SourceBusy:
                continue
        return done
