"""Configuration is read from Moment's own variables, never from a field's bare name."""

from __future__ import annotations

import pytest

from assistant.settings import load_settings


def test_ordinary_environment_variables_are_not_settings(monkeypatch):
    monkeypatch.setenv("HOME", "/somewhere/else")  # `home` is MOMENT_HOME, not $HOME
    monkeypatch.setenv("CONTENT_DIR", "/not/this")
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    monkeypatch.delenv("MOMENT_HOME", raising=False)
    settings = load_settings()
    assert str(settings.home) == ".moment" and settings.database_url == "sqlite:///.moment/moment.db"
    assert str(settings.content_dir) == "content" and settings.timezone == "UTC"


def test_moments_own_variables_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("MOMENT_HOME", str(tmp_path))
    monkeypatch.setenv("MOMENT_ADMINS", "U0ADMIN001, U0ADMIN002")
    monkeypatch.setenv("PORT", "4000")
    settings = load_settings()
    assert settings.home == tmp_path and settings.admins == ["U0ADMIN001", "U0ADMIN002"] and settings.port == 4000
    assert load_settings(port=5000).port == 5000  # a keyword wins over the environment
    with pytest.raises(KeyError):
        load_settings(no_such_setting=1)


def test_secrets_are_not_shown(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("LRS_PASSWORD", "hunter2")
    settings = load_settings()
    assert "xoxb-very-secret" not in repr(settings) and "hunter2" not in repr(settings)
    assert settings.slack_bot_token.get_secret_value() == "xoxb-very-secret"
