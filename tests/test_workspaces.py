"""Workspaces in the core: the migration of single-workspace data, the schema against the models and
slack_sdk's stores, and each workspace's own content folder. Real SQLite and PostgreSQL, the real model."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select, text

import assistant.db.rollup_models  # noqa: F401  (their tables are part of the schema)
from assistant.access.tenancy import WorkspaceError
from assistant.answering.retrieval import Retriever
from assistant.db.database import Database, _alembic_config, head_revision
from assistant.db.models import Base, HelpChannel, Interaction, Mentor, MentorRequest
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings


def test_single_workspace_data_becomes_the_default_workspaces(database_url):
    database = Database(database_url)
    with database.engine.begin() as connection:  # the schema as it was before workspaces
        config = _alembic_config(database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO interactions (created_at, user_id, team_id, surface, question, question_chars, answered,"
                " outcome, confidence, latency_ms) VALUES (:at, 'U0OLD00001', 'T0SLACKID1', 'dm', 'vpn', 3, true,"
                " 'answered', 0.9, 5)"
            ),
            {"at": now},
        )
        connection.execute(
            text(
                "INSERT INTO mentors (slack_id, name, topics, capacity, timezone, working_hours, working_days, paused,"
                " added_at) VALUES ('U0MENTOR01', 'Vera', '[\"vpn\"]', 2, 'UTC', '09:00-17:00', '[\"mon\"]', false,"
                " :at)"
            ),
            {"at": now},
        )
        connection.execute(
            text(
                "INSERT INTO help_channels (channel_id, types, tags, folders, answer_bots, offer_mentor, added_at)"
                " VALUES ('C0ITHELP01', '[]', '[]', '[]', false, true, :at)"
            ),
            {"at": now},
        )
        connection.execute(
            text(
                "INSERT INTO mentor_requests (created_at, asker_id, question, status, attempts)"
                " VALUES (:at, 'U0OLD00001', 'vpn', 'resolved', 1)"
            ),
            {"at": now},
        )
    database.upgrade("T0OURTEAM1")
    with database.session() as session:
        assert session.scalars(select(Interaction.team_id)).all() == ["T0OURTEAM1"]
        assert session.scalars(select(MentorRequest.team_id)).all() == ["T0OURTEAM1"]
        assert session.get(Mentor, ("T0OURTEAM1", "U0MENTOR01")).name == "Vera"
        assert session.get(HelpChannel, ("T0OURTEAM1", "C0ITHELP01")) is not None
        # The same person can now be a mentor of another workspace too.
        session.add(Mentor(team_id="T0ELSEWHR1", slack_id="U0MENTOR01", name="Vera", topics=["hr"]))
    database.upgrade("T0OURTEAM1")  # a no-op when current
    database.dispose()


def test_the_migrations_make_the_schema_of_the_models_and_of_slack_sdks_stores(database_url):
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    expected = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(expected)
    SQLAlchemyInstallationStore.build_installations_table(expected, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(expected, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(expected, "slack_oauth_states")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(expected, "web_signin_states")  # Sign in with Slack
    database = Database(database_url)
    database.upgrade()
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), expected)
    database.dispose()
    assert diff == []


def test_a_current_schema_is_recognised_without_alembic_and_an_older_one_is_not(database_url):
    from alembic.script import ScriptDirectory

    assert head_revision() == ScriptDirectory.from_config(_alembic_config(database_url)).get_current_head()
    database = Database(database_url)
    assert not database.is_current()  # no schema at all
    database.upgrade()
    assert database.is_current()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    assert not database.is_current()  # one migration behind: `upgrade` hands it to alembic
    database.dispose()


@pytest.fixture
def service(corpus, database, embedder, tmp_path) -> MomentService:
    settings = load_settings(home=tmp_path / "home", index_dir_override=corpus.root)
    return MomentService(settings, database, Retriever(corpus, embedder))


def test_a_workspace_with_its_own_folder_is_answered_from_it_and_nobody_else_is(service):
    question = "how do i reset my vpn token"
    acme = Asker(user_id="U0ACME0001", surface="dm", team_id="T0ACME0001")
    beta = Asker(user_id="U0BETA0001", surface="dm", team_id="T0BETA0001")
    assert service.asking.ask(question, beta).sources[0].path == "it/vpn-token.md"  # shared by default

    service.workspaces.set_content_folder("T0ACME0001", "it")
    mine = service.asking.ask(question, acme)
    assert mine.answered and mine.sources[0].path == "it/vpn-token.md"
    assert all(s.path.startswith("it/") for s in service.asking.ask("mileage rate own car", acme).sources)
    others = service.asking.ask(question, beta)
    assert not any(s.path.startswith("it/") for s in others.sources) and not others.answered
    with pytest.raises(WorkspaceError):
        service.workspaces.set_content_folder("T0BETA0001", "it/sub")  # inside Acme's

    service.workspaces.set_content_folder("T0ACME0001", None)  # back to the shared content
    assert service.asking.ask(question, beta).sources[0].path == "it/vpn-token.md"
    assert {i.team_id for i in [service.records.interaction(mine.interaction_id, "T0ACME0001")]} == {"T0ACME0001"}
    assert service.records.interaction(mine.interaction_id, "T0BETA0001") is None  # not Beta's to read


def test_questions_spooled_before_workspaces_are_written_as_the_default_workspaces(database, tmp_path):
    import json

    from assistant.records.spool import InteractionSpool

    spool = InteractionSpool(tmp_path / "spool.jsonl", "T0OURTEAM1")
    old = {  # as a version before workspaces spooled it while the database was down
        "created_at": "2026-12-01T09:00:00+00:00", "user_id": "U0OLD00001", "team_id": "T0SLACKID1",
        "channel_id": "D0OLD00001", "surface": "dm", "thread_ts": None, "question": "vpn", "question_chars": 3,
        "answered": False, "outcome": "not_answered", "confidence": 0.1, "latency_ms": 5.0, "index_version": None,
        "features": None, "answer": None, "sources": [],
    }  # fmt: skip
    spool.path.write_text(json.dumps(old) + "\n", encoding="utf-8")
    assert spool.replay(database) == 1
    with database.session() as session:
        assert session.scalars(select(Interaction.team_id)).all() == ["T0OURTEAM1"]


def test_statements_name_their_workspace_and_drafts_go_to_its_own_folder(database, tmp_path):
    from assistant.access.tenancy import Workspaces
    from assistant.db.models import XapiStatement
    from assistant.mentoring.drafts import Drafts
    from assistant.records.xapi import WORKSPACE, XapiOutbox

    settings = load_settings(home=tmp_path, lrs_endpoint="https://lrs.example.com/xAPI/")
    outbox = XapiOutbox(settings, database)
    with database.session() as session:
        interaction = Interaction(user_id="U0ACME0001", team_id="T0ACME0001", enterprise_id="E0GRID0001",
                                  surface="dm", question="vpn", question_chars=3, answered=False,
                                  outcome="not_answered", confidence=0.1, latency_ms=5.0)  # fmt: skip
        session.add(interaction)
        session.flush()
        outbox.interaction(session, interaction)
    with database.session() as session:
        rows = session.scalars(select(XapiStatement)).all()
    assert len(rows) == 2 and {r.team_id for r in rows} == {"T0ACME0001"}
    for row in rows:
        assert row.statement["context"]["extensions"][WORKSPACE] == {
            "team_id": "T0ACME0001",
            "enterprise_id": "E0GRID0001",
        }

    Workspaces(database).set_content_folder("T0ACME0001", "acme")
    drafts = Drafts(database)
    assert drafts.save(
        "T0ACME0001", author_id="U0M", title="Fix the printer", body="Turn it off and on."
    ).path.startswith("acme/mentor-answers/")
    shared = drafts.save("T0BETA0001", author_id="U0M", title="Fix the printer", body="Turn it off and on.")
    assert shared.path.startswith("mentor-answers/")
    assert [d.id for d in drafts.pending("T0BETA0001")] == [shared.id]
