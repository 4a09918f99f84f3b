"""Quick checks of the commands whose other tests start servers, models or training (all in the slow tier):
each refuses a wrong setting at once, with the reason, before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from assistant.cli import main


def _invoke(tmp_path, *args, **env):
    clean = {"MOMENT_HOME": str(tmp_path / "home"), "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", **env}
    return CliRunner().invoke(main, list(args), env=clean)


def test_serve_in_socket_mode_without_an_app_token_says_so_before_starting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOMENT_", "SLACK_", "DATABASE_URL"))}
    env.update(MOMENT_HOME=str(tmp_path / "home"), SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="secret")
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "serve", "--socket"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "SLACK_APP_TOKEN" in done.stderr


def test_model_prepare_refuses_an_unknown_backend(tmp_path):
    done = _invoke(tmp_path, "model", "prepare", MOMENT_EMBEDDING_BACKEND="tensorflow")
    assert done.exit_code == 1
    assert "Unknown MOMENT_EMBEDDING_BACKEND 'tensorflow'" in done.output


def test_export_reader_refuses_a_folder_that_is_not_a_kept_checkpoint(tmp_path):
    (tmp_path / "step-3").mkdir()
    done = _invoke(tmp_path, "model", "export-reader", str(tmp_path / "step-3"), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1
    assert "is not a kept checkpoint (no train-config.json in it)" in done.output
    assert not (tmp_path / "out").exists()
