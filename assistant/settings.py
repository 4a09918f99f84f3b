"""Configuration, read once from the environment (and an optional `.env`) into one object.

Everything has an embedded default, so `moment` works on a bare laptop: a SQLite file and the index
under `.moment/`, the bundled model, the demo content in `content/`. The object is passed down to
whatever needs it; nothing below the entry points reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TEAM = "default"  # the workspace of single-token mode and of records older than workspaces


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting Moment has, with its environment variable."""

    # Each setting is read from its own variable only (never from its field name: `home` must not come
    # from $HOME). In code, pass settings by field name through `load_settings`.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)

    # Where things live
    home: Path = Field(Path(".moment"), validation_alias=_env("MOMENT_HOME"))
    content_dir: Path = Field(Path("content"), validation_alias=_env("MOMENT_CONTENT_DIR"))
    index_dir_override: Path | None = Field(None, validation_alias=_env("MOMENT_INDEX_DIR"))
    database_url_override: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    model_cache_override: Path | None = Field(None, validation_alias=_env("MOMENT_MODEL_CACHE"))
    # Bounds on the database (assistant.db.database): connections a process keeps and may add, how long a
    # request waits for one, how long one statement may run (PostgreSQL) or wait for a lock (SQLite), and how
    # long connecting may take (PostgreSQL)
    db_pool_size: int = Field(5, ge=1, validation_alias=_env("MOMENT_DB_POOL_SIZE"))
    db_max_overflow: int = Field(10, ge=0, validation_alias=_env("MOMENT_DB_MAX_OVERFLOW"))
    db_pool_timeout: float = Field(10.0, gt=0, validation_alias=_env("MOMENT_DB_POOL_TIMEOUT"))
    db_statement_timeout: float = Field(30.0, gt=0, validation_alias=_env("MOMENT_DB_STATEMENT_TIMEOUT"))
    db_connect_timeout: float = Field(10.0, gt=0, validation_alias=_env("MOMENT_DB_CONNECT_TIMEOUT"))

    # Embedding and retrieval
    embedding_model: str = Field("all-MiniLM-L6-v2", validation_alias=_env("MOMENT_EMBEDDING_MODEL"))
    embedding_backend: str = Field("onnx", validation_alias=_env("MOMENT_EMBEDDING_BACKEND"))
    embedding_threads: int | None = Field(None, validation_alias=_env("MOMENT_EMBEDDING_THREADS"))
    max_file_mb: float = Field(20.0, validation_alias=_env("MOMENT_MAX_FILE_MB"))
    index_keep: int = Field(3, validation_alias=_env("MOMENT_INDEX_KEEP"))
    faiss_index: str = Field("auto", validation_alias=_env("MOMENT_FAISS_INDEX"))
    content_base_url: str | None = Field(None, validation_alias=_env("MOMENT_CONTENT_BASE_URL"))
    max_question_chars: int = Field(2000, validation_alias=_env("MOMENT_MAX_QUESTION_CHARS"))
    # The reader: a small cross-encoder that chooses the passage and judges whether it answers.
    # On by default: it beats retrieval alone on content nobody here wrote at choosing the passage and at
    # telling near-misses (docs/answer-quality.md); MOMENT_READER=off answers from retrieval alone, and
    # `moment eval` measures both either way.
    reader: bool = Field(True, validation_alias=_env("MOMENT_READER"))
    reader_dir_override: Path | None = Field(None, validation_alias=_env("MOMENT_READER_DIR"))
    # Generated answers (off unless MOMENT_LLM_URL is set): any OpenAI-compatible endpoint (`{url}/chat/completions`)
    # may phrase a one-sentence answer from the top passages, shown only when its quotes are verified in them
    # (`assistant.answering.generation`). The key: MOMENT_LLM_API_KEY, or the file MOMENT_LLM_API_KEY_FILE names.
    llm_url: str | None = Field(None, validation_alias=_env("MOMENT_LLM_URL"))
    llm_model: str | None = Field(None, validation_alias=_env("MOMENT_LLM_MODEL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("MOMENT_LLM_API_KEY"))
    llm_api_key_file: Path | None = Field(None, validation_alias=_env("MOMENT_LLM_API_KEY_FILE"))
    llm_timeout_seconds: float = Field(8.0, gt=0, validation_alias=_env("MOMENT_LLM_TIMEOUT_SECONDS"))
    llm_passages: int = Field(4, ge=1, le=10, validation_alias=_env("MOMENT_LLM_PASSAGES"))
    # How often a web process looks for an index version published through the database (0: never)
    index_sync_seconds: float = Field(30.0, validation_alias=_env("MOMENT_INDEX_SYNC_SECONDS"))

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    # How long a Web API call may take before its outcome is unknown (a post is then looked up, not repeated)
    slack_timeout_seconds: float = Field(15.0, gt=0, validation_alias=_env("MOMENT_SLACK_TIMEOUT_SECONDS"))
    # OAuth install for many workspaces (used when SLACK_BOT_TOKEN is not set): the app's credentials and
    # the public URL Slack redirects to (MOMENT_BASE_URL + /slack/oauth_redirect)
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_CLIENT_SECRET"))
    base_url: str | None = Field(None, validation_alias=_env("MOMENT_BASE_URL"))
    # The admin web app at /admin (Sign in with Slack, OpenID Connect, with SLACK_CLIENT_ID/SECRET): the key
    # its session cookie is signed with (the pages are off without it), how long a sign-in lasts, whether the
    # cookie is Secure (off is honoured for http://127.0.0.1 and localhost only), whether admins see question
    # text, and Slack's own address (authorize, keys, the id_token's issuer; a stand-in's in tests)
    web_secret: SecretStr | None = Field(None, validation_alias=_env("MOMENT_WEB_SECRET"))
    web_session_hours: float = Field(8.0, gt=0, le=24 * 30, validation_alias=_env("MOMENT_WEB_SESSION_HOURS"))
    web_cookie_secure: bool = Field(True, validation_alias=_env("MOMENT_WEB_COOKIE_SECURE"))
    web_question_text: bool = Field(True, validation_alias=_env("MOMENT_WEB_QUESTION_TEXT"))
    slack_url: str = Field("https://slack.com", validation_alias=_env("MOMENT_SLACK_URL"))
    # The workspace of single-token mode, and of every record from before Moment told workspaces apart
    default_team_id: str = Field(DEFAULT_TEAM, validation_alias=_env("MOMENT_DEFAULT_TEAM_ID"))
    port: int = Field(3000, validation_alias=_env("PORT"))
    web_workers: int = Field(2, validation_alias=_env("MOMENT_WEB_WORKERS"))
    web_threads: int = Field(8, validation_alias=_env("MOMENT_WEB_THREADS"))

    # People
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias=_env("MOMENT_ADMINS"))
    admin_usergroup: str | None = Field(None, validation_alias=_env("MOMENT_ADMIN_USERGROUP"))
    admin_channel: str | None = Field(None, validation_alias=_env("MOMENT_ADMIN_CHANNEL"))  # digests
    escalation_channel: str | None = Field(None, validation_alias=_env("MOMENT_ESCALATION_CHANNEL"))
    mentors_file_override: Path | None = Field(None, validation_alias=_env("MOMENT_MENTORS_FILE"))
    mentor_offer_minutes: float = Field(30.0, validation_alias=_env("MOMENT_MENTOR_OFFER_MINUTES"))
    mentor_max_attempts: int = Field(3, validation_alias=_env("MOMENT_MENTOR_MAX_ATTEMPTS"))
    mentor_follow_up_hours: float = Field(24.0, validation_alias=_env("MOMENT_MENTOR_FOLLOW_UP_HOURS"))
    # Help channels: how sure an unasked answer must be (a channel can set its own), and the pace of posts
    channel_min_confidence: float = Field(0.85, validation_alias=_env("MOMENT_CHANNEL_MIN_CONFIDENCE"))
    channel_post_interval: float = Field(1.1, validation_alias=_env("MOMENT_CHANNEL_POST_INTERVAL"))
    # Content audiences: how often the worker reads user groups from Slack, and how old the cache may be
    # before restricted items are withheld (Slack could not be asked for that long)
    audience_refresh_minutes: float = Field(10.0, validation_alias=_env("MOMENT_AUDIENCE_REFRESH_MINUTES"))
    audience_max_age_minutes: float = Field(60.0, validation_alias=_env("MOMENT_AUDIENCE_MAX_AGE_MINUTES"))
    # How long a process keeps a person's groups before reading them from the database cache again (a change
    # made through another process reaches this one that late; 0: read on every question)
    audience_cache_seconds: float = Field(5.0, ge=0, validation_alias=_env("MOMENT_AUDIENCE_CACHE_SECONDS"))
    retention_days: int | None = Field(None, validation_alias=_env("MOMENT_RETENTION_DAYS"))
    workspace_url: str = Field("https://slack.com", validation_alias=_env("MOMENT_WORKSPACE_URL"))
    timezone: str = Field("UTC", validation_alias=_env("MOMENT_TIMEZONE"))  # schedules and reports

    # Learning Record Store
    lrs_endpoint: str | None = Field(None, validation_alias=_env("LRS_ENDPOINT"))
    lrs_username: str | None = Field(None, validation_alias=_env("LRS_USERNAME"))
    lrs_password: SecretStr | None = Field(None, validation_alias=_env("LRS_PASSWORD"))
    xapi_pseudonymise: bool = Field(False, validation_alias=_env("MOMENT_XAPI_PSEUDONYMISE"))
    xapi_salt: SecretStr | None = Field(None, validation_alias=_env("MOMENT_XAPI_SALT"))  # key of the hashed ids

    # Courses (assistant/learning/): a course is suggested once a person has asked about its topic this many
    # times within this many days; the LRS is asked (for that long at most) whether they completed it already.
    course_after: int = Field(3, ge=1, validation_alias=_env("MOMENT_COURSE_AFTER"))
    course_days: float = Field(14.0, gt=0, validation_alias=_env("MOMENT_COURSE_DAYS"))
    course_lrs_timeout: float = Field(3.0, gt=0, validation_alias=_env("MOMENT_COURSE_LRS_TIMEOUT"))
    # The key course links (MOMENT_BASE_URL/c/<token>) are signed with (default: SLACK_SIGNING_SECRET); the same
    # on every web process
    link_secret: SecretStr | None = Field(None, validation_alias=_env("MOMENT_LINK_SECRET"))

    @field_validator("admins", mode="before")
    @classmethod
    def _split_ids(cls, value):
        if isinstance(value, str):
            return [v for v in value.replace(",", " ").split() if v]
        return value

    @property
    def index_dir(self) -> Path:
        """The folder of index versions."""
        return self.index_dir_override or self.home / "index"

    @property
    def mentors_file(self) -> Path:
        """The mentors to seed the registry with."""
        return self.mentors_file_override or self.content_dir / "mentors.yml"

    @property
    def model_cache(self) -> Path:
        """Where the ONNX export of the embedding model is kept."""
        return self.model_cache_override or self.home / "models"

    @property
    def database_url(self) -> str:
        """The interaction database: `DATABASE_URL`, or a SQLite file under `MOMENT_HOME`."""
        return self.database_url_override or f"sqlite:///{(self.home / 'moment.db').as_posix()}"

    @property
    def multi_workspace(self) -> bool:
        """OAuth install for many workspaces: client id and secret set, and no single bot token."""
        return self.slack_bot_token is None and bool(self.slack_client_id and self.slack_client_secret)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def load_settings(**overrides) -> Settings:
    """Read the settings; keyword arguments (field names, e.g. `home=`) win over the environment."""
    clean = {}
    for name, value in overrides.items():
        if value is None:
            continue
        alias = Settings.model_fields[name].validation_alias  # an unknown name is a KeyError, not ignored
        clean[alias.choices[0] if isinstance(alias, AliasChoices) else name] = value
    return Settings(**clean)
