"""Database models (SQLAlchemy 2.0, typed). The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite keeps no time zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


# Where a question came from.
SURFACES = ("mention", "dm", "slash_command", "shortcut", "app_home", "cli", "api", "help_channel")


class Interaction(Base):
    """One question and what Moment answered."""

    __tablename__ = "interactions"
    # The admin pages read one workspace's period; on PostgreSQL the index carries what the overview counts.
    __table_args__ = (
        Index(
            "ix_interactions_team_created",
            "team_id",
            "created_at",
            postgresql_include=["outcome", "answered", "user_id"],
        ),
        # Who asked in a period (the overview's active askers): people one after the other, looked up by time.
        Index("ix_interactions_team_user", "team_id", "user_id", "created_at", postgresql_include=["outcome"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    enterprise_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    surface: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    question_chars: Mapped[int] = mapped_column(Integer)  # length as received, before any truncation
    answered: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    index_version: Mapped[str | None] = mapped_column(String(64))
    features: Mapped[dict | None] = mapped_column(JSON)
    answer: Mapped[dict | None] = mapped_column(JSON)  # what was shown, to share or show again
    # A question put to Moment in Slack: its message (`assistant.records.deliveries.message_key`), by which
    # its record made on arrival (perhaps spooled on the host) and its answer's record find each other.
    receipt_key: Mapped[str | None] = mapped_column(String(128), unique=True, index=True)
    # Set when its answer is recorded, cleared when the answer's post succeeded: set long after, the process
    # stopped in between and the worker posts it (`Interactions.answers_unposted`).
    unposted_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)

    sources: Mapped[list[InteractionSource]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan", order_by="InteractionSource.rank"
    )
    votes: Mapped[list[Vote]] = relationship(back_populates="interaction", cascade="all, delete-orphan")


class InteractionSource(Base):
    """A document shown for an interaction, with its rank and score."""

    __tablename__ = "interaction_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512), index=True)
    title: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    url: Mapped[str | None] = mapped_column(Text)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    # The user groups that could see the item when it was shown (None or empty: everyone); used when the
    # item is no longer in the index.
    audience: Mapped[list | None] = mapped_column(JSON)

    interaction: Mapped[Interaction] = relationship(back_populates="sources")


class Vote(Base):
    """Helpful or not, one per person per answer (a new vote replaces the old one)."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id", name="uq_vote_per_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    interaction: Mapped[Interaction] = relationship(back_populates="votes")


class ProcessedEvent(Base):
    """Slack deliveries already handled (event ids, and other idempotency keys), across processes."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# -- mentors ------------------------------------------------------------------------------------


class Mentor(Base):
    """A peer mentor: seeded from content/mentors.yml, then managed from Slack. The database is the truth."""

    __tablename__ = "mentors"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a mentor of this workspace
    slack_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    topics: Mapped[list] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=2)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    working_hours: Mapped[str] = mapped_column(String(16), default="09:00-17:00")
    working_days: Mapped[list] = mapped_column(JSON, default=lambda: ["mon", "tue", "wed", "thu", "fri"])
    vetted_by: Mapped[str | None] = mapped_column(String(64))
    vetted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # kept, so a re-seed does not revive
    added_by: Mapped[str | None] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_offered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # fair sharing among equals

    @property
    def vetted(self) -> bool:
        return self.vetted_at is not None

    @property
    def active(self) -> bool:
        return self.removed_at is None and not self.paused


# Lifecycle of a mentor request.
REQUEST_OPEN = ("searching", "offered", "escalated")  # nobody owns it yet
REQUEST_STATES = (*REQUEST_OPEN, "accepted", "resolved", "cancelled")


class MentorRequest(Base):
    """A question handed to people: offered to one mentor at a time until one accepts."""

    __tablename__ = "mentor_requests"
    __table_args__ = (Index("ix_mentor_requests_interaction", "interaction_id"),)  # hand-offs of an answer

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))
    asker_id: Mapped[str] = mapped_column(String(64), index=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    enterprise_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    offer_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    followed_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    conversation_id: Mapped[str | None] = mapped_column(String(64))  # the group DM, once accepted
    thread_note_ts: Mapped[str | None] = mapped_column(String(32))  # "… is helping" in the asker's thread
    resolution: Mapped[str | None] = mapped_column(Text)

    offers: Mapped[list[MentorOffer]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="MentorOffer.id"
    )


class MentorOffer(Base):
    """One offer of a request to one mentor, and how it ended."""

    __tablename__ = "mentor_offers"
    __table_args__ = (Index("ix_mentor_offers_team_offered", "team_id", "offered_at"),)  # a period's offers

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    request_id: Mapped[int] = mapped_column(ForeignKey("mentor_requests.id", ondelete="CASCADE"), index=True)
    mentor_id: Mapped[str] = mapped_column(String(64), index=True)
    offered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")  # accepted|declined|timeout|withdrawn
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")  # why this mentor, in one line
    score: Mapped[float] = mapped_column(Float, default=0.0)
    channel_id: Mapped[str | None] = mapped_column(String(64))  # where the offer was posted, to update it
    message_ts: Mapped[str | None] = mapped_column(String(32))

    request: Mapped[MentorRequest] = relationship(back_populates="offers")


class Draft(Base):
    """A mentor's answer saved as a job-aid draft, waiting for an admin's decision."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("mentor_requests.id", ondelete="SET NULL"))
    author_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    path: Mapped[str] = mapped_column(String(512))  # relative to the content root (drafts/… then its home)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)  # draft|approved|rejected
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Who may see it once approved: the audience of the restricted content the question was answered from
    # (None or empty: everyone). Shown at review and written into the job aid's front matter.
    audience: Mapped[list | None] = mapped_column(JSON)


class VerifiedAnswer(Base):
    """A question a mentor or admin taught Moment to answer from one section (`assistant.answering.verified`)."""

    __tablename__ = "verified_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    question: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list] = mapped_column(JSON)  # the question's vector (the index's embedding model)
    embedding_model: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(512), index=True)  # the item, relative to the content root
    heading_path: Mapped[list] = mapped_column(JSON)  # the section; empty: the text before the first heading
    content_hash: Mapped[str] = mapped_column(String(64))  # the section's text when taught (sha256)
    taught_by: Mapped[str] = mapped_column(String(64))
    taught_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    interaction_id: Mapped[int | None] = mapped_column(Integer)  # the answer it was taught on, if any


class PassageDemotion(Base):
    """A person's *Not helpful* on an answer: its section is not shown again for questions close to that one
    (`assistant.answering.demotions`). Held while the vote stands; the voter forgotten, it goes."""

    __tablename__ = "passage_demotions"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id", name="uq_demotion_per_vote"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    interaction_id: Mapped[int] = mapped_column(Integer, index=True)  # the answer voted on
    user_id: Mapped[str] = mapped_column(String(64), index=True)  # who voted Not helpful
    question: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list] = mapped_column(JSON)  # the question's vector (the index's embedding model)
    embedding_model: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(512))  # the section shown, by item and heading path
    heading_path: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- operations ---------------------------------------------------------------------------------


class AuditEvent(Base):
    """Admin and mentor actions, including refused attempts."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    enterprise_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)


class IndexRun(Base):
    """One re-index: who asked, when, what it did."""

    __tablename__ = "index_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    reply_channel: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|running|done|failed
    report: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class PublishedIndex(Base):
    """An index version published through the database, so web processes on other hosts can fetch it."""

    __tablename__ = "published_indexes"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    archive: Mapped[bytes] = mapped_column(LargeBinary)


class XapiStatement(Base):
    """The xAPI outbox: statements written with the interaction they describe, delivered later."""

    __tablename__ = "xapi_statements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the statement id, fixed when queued
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)  # to void on `moment forget`
    verb: Mapped[str] = mapped_column(String(64))
    statement: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|sent|rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


# -- help channels ------------------------------------------------------------------------------


class HelpChannel(Base):
    """A channel where Moment answers people's questions unasked (chosen by admins with /moment channel)."""

    __tablename__ = "help_channels"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    types: Mapped[list] = mapped_column(JSON, default=list)  # content scope: empty means every type
    tags: Mapped[list] = mapped_column(JSON, default=list)
    folders: Mapped[list] = mapped_column(JSON, default=list)  # path prefixes inside the content folder
    answer_bots: Mapped[bool] = mapped_column(Boolean, default=False)  # bots and Workflow Builder forms
    offer_mentor: Mapped[bool] = mapped_column(Boolean, default=True)  # unconfident: a private offer
    min_confidence: Mapped[float | None] = mapped_column(Float)  # None: the deployment's default
    added_by: Mapped[str | None] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # One process at a time answers a channel's queue, in order, paced (a lease, not a lock).
    drainer: Mapped[str | None] = mapped_column(String(64))
    drain_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class HelpQueueItem(Base):
    """A top-level message in a help channel that looked like a question, waiting for its turn."""

    __tablename__ = "help_queue"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "message_ts", name="uq_help_queue_message"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    message_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|answered|silent|...
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))


class QuestionFollower(Base):
    """Someone who said "I have this question too" on another person's answer: they hear how it ends."""

    __tablename__ = "question_followers"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id", name="uq_question_follower"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- user groups (content audiences) ----------------------------------------------------------------


class UserGroup(Base):
    """A Slack user group as last read from Slack (`assistant.access.audiences.GroupDirectory`)."""

    __tablename__ = "usergroups"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handle: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")


class UserGroupMember(Base):
    """A person in a user group."""

    __tablename__ = "usergroup_members"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class UserGroupSync(Base):
    """When a workspace's user groups were last read from Slack, and the last failure to read them."""

    __tablename__ = "usergroup_syncs"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the last complete read
    attempted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


# -- workspaces ---------------------------------------------------------------------------------


class Workspace(Base):
    """A Slack workspace Moment serves: who installed it, its admins, its own content folder if any.

    Its tokens are not here: they live in slack_sdk's installation tables (`slack_bots`,
    `slack_installations`), which Bolt reads to answer each event with the workspace's own token.
    """

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    content_folder: Mapped[str | None] = mapped_column(String(512))  # None: the shared content
    generated_answers: Mapped[bool | None] = mapped_column(Boolean)  # False: switched off (None: on where configured)
    admins: Mapped[list] = mapped_column(JSON, default=list)  # besides MOMENT_ADMINS
    installed_by: Mapped[str | None] = mapped_column(String(64))
    installed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    uninstalled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ContentSource(Base):
    """A place content is synced from (assistant/sources/): its settings, cursor, last sync and lease.
    Credentials are never stored here: `settings` may name an environment variable or a secrets file."""

    __tablename__ = "content_sources"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    schedule_minutes: Mapped[int] = mapped_column(Integer, default=60)  # 0: only on request
    prune_hours: Mapped[int] = mapped_column(Integer, default=24)
    team_id: Mapped[str | None] = mapped_column(String(64))  # None: the content is everyone's
    cursor: Mapped[dict | None] = mapped_column(JSON)
    items: Mapped[int] = mapped_column(Integer, default=0)
    added_by: Mapped[str | None] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last sync: ok | partial (some items failed) | failed (the source as a whole)
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_good_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_changes: Mapped[dict | None] = mapped_column(JSON)  # {"added": n, "changed": n, "deleted": n}
    last_failures: Mapped[list | None] = mapped_column(JSON)  # [{"id": ..., "reason": ...}]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_prune_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Two syncs of one source never run at once, on any host: a lease claimed by a conditional UPDATE.
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SourcePerson(Base):
    """Who an e-mail is in Slack (users.lookupByEmail), cached; `user_id` None: nobody (fails closed)."""

    __tablename__ = "source_people"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    looked_up_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- courses (assistant/learning/) ---------------------------------------------------------------


class Course(Base):
    """A course or learning path of the workspace's catalogue (a file, or an LMS): suggested after repeated
    questions on its topic. `activity_id` is its xAPI activity IRI (the URL when the catalogue gave none):
    re-imports update the course under it, and the LRS is asked whether a person completed it."""

    __tablename__ = "courses"
    __table_args__ = (
        UniqueConstraint("team_id", "activity_id", name="uq_course_activity"),
        Index("ix_courses_team_url", "team_id", "url"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    activity_id: Mapped[str] = mapped_column(String(1000))
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    topics: Mapped[list] = mapped_column(JSON, default=list)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    audience: Mapped[list | None] = mapped_column(JSON)  # user groups that alone may be offered it; None: everyone
    origin: Mapped[str] = mapped_column(String(64))  # "file" or the LMS it was read from
    text_hash: Mapped[str] = mapped_column(String(64))  # of what is embedded: a change embeds it again
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 vector; None: not embedded yet
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourseInterest(Base):
    """A question of a person's that matched a course (counted towards suggesting it)."""

    __tablename__ = "course_interests"
    __table_args__ = (Index("ix_course_interests_person", "team_id", "user_id", "course_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    interaction_id: Mapped[int | None] = mapped_column(Integer)
    cosine: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourseSuggestion(Base):
    """A course suggested to a person (once per person and course), and what they did with it."""

    __tablename__ = "course_suggestions"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id", "course_id", name="uq_course_suggestion_per_person"),
        Index("ix_course_suggestions_course", "course_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    interaction_id: Mapped[int | None] = mapped_column(Integer)  # the answer it was added to
    surface: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the first click
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    dismissed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # Not now
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # seen in the LRS after the suggestion
