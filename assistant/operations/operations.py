"""Indexing, re-indexing on request, index versions published through the database, and the status.

`IndexOperations.index()` is the one indexing path: `moment index`, `moment demo`, `/moment reindex` and
the worker's runs all go through it. It writes the mentor answers approved since (on any host: they
wait in the database) into the content folder, builds, and publishes the new version through the
database.

`/moment reindex` queues an `IndexRun`; the worker (or, when no worker picks it up within a few
seconds, the web process that queued it) claims queued runs one at a time, oldest first, and builds.
Claims are conditional UPDATEs, so no run is built twice and two requests run one after the other.

Every published version is also stored in the database (`published_indexes`, a gzipped tar of the
version folder): a web process on another host fetches a newer one within `sync_interval` seconds,
without a restart and without a shared disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select, update

from assistant.db.database import Database, DatabaseUnavailableError
from assistant.db.models import IndexRun, PublishedIndex, utcnow
from assistant.mentoring.drafts import Drafts
from assistant.mentoring.views import snapshot
from assistant.settings import Settings
from assistant.sources.items import synced_roots
from indexer.documents import BuildReport
from indexer.store import IndexMissingError, IndexStore

log = logging.getLogger(__name__)

KEEP_PUBLISHED = 3


@dataclass
class Indexed:
    """What one pass of the indexing path did."""

    report: BuildReport
    answers_written: list[str] = field(default_factory=list)  # approved mentor answers written into the content
    database_problem: str | None = None  # what was skipped because the database could not be reached
    database_published: bool = False  # the unchanged serving version was published to a database that lacked it


@dataclass(frozen=True)
class RunView:
    """A re-index run as its readers see it (the status, the summary posted when it is done): a snapshot."""

    id: int
    requested_at: dt.datetime
    requested_by: str | None
    reply_channel: str | None
    status: str  # queued | running | done | failed
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    report: dict | None = None
    error: str | None = None


class IndexOperations:
    """Re-index runs and index publication, for one content folder and one index store."""

    def __init__(self, settings: Settings, database: Database, store: IndexStore, embedder) -> None:
        self.settings = settings
        self.database = database
        self.store = store
        self.embedder = embedder
        self._run_lock = threading.Lock()

    # -- re-index runs ---------------------------------------------------------------------------

    def request(self, by: str | None, reply_channel: str | None = None) -> tuple[RunView, int]:
        """Queue a run; returns it and how many runs are ahead of it."""
        with self.database.session() as session:
            ahead = len(session.scalars(select(IndexRun.id).where(IndexRun.status.in_(("queued", "running")))).all())
            run = IndexRun(requested_by=by, reply_channel=reply_channel, status="queued")
            session.add(run)
            session.flush()
            return snapshot(RunView, run), ahead

    def run_queued(self, on_done: Callable[[RunView], None] | None = None) -> list[RunView]:
        """Build every queued run, oldest first, one at a time; returns the runs this call built."""
        done = []
        with self._run_lock:
            while True:
                run = self._claim_next()
                if run is None:
                    return done
                run = snapshot(RunView, self._build(run))
                done.append(run)
                if on_done is not None:
                    try:
                        on_done(run)
                    except Exception:
                        log.exception("could not report re-index run %s", run.id)

    def _claim_next(self) -> IndexRun | None:
        with self.database.session() as session:
            queued = session.scalars(
                select(IndexRun).where(IndexRun.status == "queued").order_by(IndexRun.requested_at, IndexRun.id)
            ).all()
            for run in queued:
                won = session.execute(
                    update(IndexRun)
                    .where(IndexRun.id == run.id, IndexRun.status == "queued")
                    .values(status="running", started_at=utcnow())
                ).rowcount
                session.commit()
                if won:
                    return session.get(IndexRun, run.id)
        return None

    def index(
        self,
        content_dir: Path | None = None,
        *,
        full: bool = False,
        publish: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Indexed:
        """Build `content_dir` (default: the configured one) into the store, incrementally.

        With `publish` (the deployment's index) the approved mentor answers are written into the content
        folder first and a new version is published through the database; a database that cannot be
        reached stops neither (`Indexed.database_problem` says what was skipped). Raises
        `FileNotFoundError` when the content folder does not exist.
        """
        from indexer.build import build_index

        content_dir = Path(content_dir or self.settings.content_dir)
        written: list[str] = []
        problems: list[str] = []
        previous = self.reviewed_dates() if publish else {}
        if publish and content_dir.is_dir():
            try:
                written = Drafts(self.database).write_approved(content_dir)
            except DatabaseUnavailableError as exc:
                problems.append(f"approved mentor answers not written ({exc})")
        report = build_index(
            content_dir,
            self.store,
            self.embedder,
            full=full,
            max_file_bytes=self.settings.max_file_bytes,
            faiss_kind=self.settings.faiss_index,
            on_progress=on_progress,
            extra_roots=synced_roots(self.settings.home) if publish else None,  # the synced sources' items
        )
        republish = False
        if publish and report.version:
            try:
                # Nothing changed, but the database may not hold the serving version (a new, empty database, or
                # one that was down when it was built): other hosts get it only from there.
                republish = not report.published and not self.is_published(report.version)
                if report.published or republish:
                    self.after_publish(report.version, previous)
            except DatabaseUnavailableError as exc:
                republish = False
                problems.append(f"not published to the database, web processes on other hosts keep the old one ({exc})")
        return Indexed(report, written, "; ".join(problems) or None, republish)

    def _build(self, run: IndexRun) -> IndexRun:
        try:
            indexed = self.index()
            if indexed.database_problem:
                log.error("re-index run %s: %s", run.id, indexed.database_problem)
            result = indexed.report.to_dict()
            status, error = "done", None
        except Exception as exc:
            log.exception("re-index run %s failed", run.id)
            result, status, error = None, "failed", str(exc)[:2000]
        with self.database.session() as session:
            session.execute(
                update(IndexRun)
                .where(IndexRun.id == run.id)
                .values(status=status, finished_at=utcnow(), report=result, error=error)
            )
            return session.get(IndexRun, run.id)

    def run_soon(self, grace: float = 8.0, on_done: Callable[[RunView], None] | None = None) -> threading.Thread:
        """In a web process: if no worker has claimed the queued runs after `grace` seconds, build them here."""

        def later():
            time.sleep(grace)
            try:
                self.run_queued(on_done)
            except Exception:
                log.exception("in-process re-index failed")

        thread = threading.Thread(target=later, name="moment-reindex", daemon=True)
        thread.start()
        return thread

    def recent_runs(self, limit: int = 5) -> list[RunView]:
        with self.database.session() as session:
            runs = session.scalars(select(IndexRun).order_by(IndexRun.id.desc()).limit(limit)).all()
            return [snapshot(RunView, run) for run in runs]

    # -- publication through the database --------------------------------------------------------

    def reviewed_dates(self) -> dict[str, tuple]:
        """{path: (reviewed, owner, title, type)} of the serving version, to spot reviews in the next build."""
        try:
            version = self.store.open(search=False)
        except IndexMissingError:
            return {}
        try:
            return {d.path: (d.meta.reviewed, d.meta.owner, d.meta.title, d.meta.type) for d in version.documents}
        finally:
            version.close()

    def after_publish(self, version: str, previous: dict[str, tuple]) -> int:
        """Publish a new version through the database, and record "reviewed" xAPI statements for items
        whose `reviewed` date moved forward (their owner checked them). Returns how many were reviewed."""
        from assistant.records.xapi import XapiOutbox

        self.publish(version)
        outbox = XapiOutbox(self.settings, self.database)
        if not outbox.enabled or not previous:
            return 0
        current = self.store.open(version, search=False)
        reviewed = [
            d
            for d in current.documents
            if d.path in previous
            and d.meta.reviewed
            and d.meta.owner
            and (previous[d.path][0] is None or d.meta.reviewed > previous[d.path][0])
        ]
        current.close()
        with self.database.session() as session:
            for d in reviewed:
                outbox.reviewed(session, d.meta.owner, d.path, d.meta.title, d.meta.type)
        return len(reviewed)

    def is_published(self, version: str) -> bool:
        """Whether the database holds `version` for web processes on other hosts."""
        with self.database.session() as session:
            return session.scalar(select(PublishedIndex.version).where(PublishedIndex.version == version)) is not None

    def publish(self, version: str) -> None:
        """Store a version in the database for web processes on other hosts; keeps the newest few."""
        archive = self.store.export(version)
        with self.database.session() as session:
            if session.get(PublishedIndex, version) is None:
                session.add(
                    PublishedIndex(
                        version=version,
                        size_bytes=len(archive),
                        sha256=hashlib.sha256(archive).hexdigest(),
                        archive=archive,
                    )
                )
            keep = session.scalars(
                select(PublishedIndex.version).order_by(PublishedIndex.version.desc()).limit(KEEP_PUBLISHED)
            ).all()
            session.execute(delete(PublishedIndex).where(PublishedIndex.version.not_in(keep)))
        log.info("published index version %s through the database (%d bytes)", version, len(archive))

    def sync(self) -> str | None:
        """Install the newest version published in the database if it is newer than the local one;
        returns the version installed, or None."""
        local = self.store.current()
        with self.database.session() as session:
            newest = session.scalar(select(PublishedIndex.version).order_by(PublishedIndex.version.desc()).limit(1))
            if newest is None or (local is not None and newest <= local):
                return None
            row = session.get(PublishedIndex, newest)
            archive, digest = row.archive, row.sha256
        if hashlib.sha256(archive).hexdigest() != digest:
            log.error("published index %s is corrupt (checksum mismatch); not installed", newest)
            return None
        if self.store.install(newest, archive):
            log.info("installed index version %s from the database", newest)
            return newest
        return None

    def start_sync(self, interval: float = 30.0, stop: threading.Event | None = None) -> threading.Thread:
        """A daemon thread that calls `sync()` every `interval` seconds, until `stop` is set."""
        stop = stop or threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    self.sync()
                except DatabaseUnavailableError as exc:
                    log.warning("index sync skipped: %s", exc)
                except Exception:
                    log.exception("index sync failed")
                stop.wait(interval)

        thread = threading.Thread(target=loop, name="moment-index-sync", daemon=True)
        thread.start()
        return thread


# -- status ------------------------------------------------------------------------------------


@dataclass
class Status:
    """`/moment status`: the state of the index, the runs, the content and the mentors."""

    index_version: str | None = None
    index_age: dt.timedelta | None = None
    index_problem: str | None = None
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    documents: int = 0
    chunks: int = 0
    stale: list[tuple[str, str, dt.date]] = field(default_factory=list)  # (path, title, due)
    runs: list[RunView] = field(default_factory=list)
    mentors_total: int = 0
    mentors_available: int = 0
    open_requests: dict[str, int] = field(default_factory=dict)
    xapi: dict[str, int] = field(default_factory=dict)
    restricted_items: int = 0  # items with an audience
    groups: object | None = None  # assistant.access.audiences.SyncStatus, when some item has an audience
    reader: str = ""  # the reader's state in words ("on: cross-encoder ...", "off ...", "unavailable ...")
    reader_problem: str | None = None  # why the reader could not be loaded
    sources: list = field(default_factory=list)  # assistant.sources.SourceView of every content source
