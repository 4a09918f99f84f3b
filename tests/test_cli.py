"""The command line as an operator meets it: every mistake gets a message and the documented exit status.

The real `moment` command: in a subprocess where the working directory, the time to fail or the exit
status is what is tested, through click's CliRunner otherwise; the real model, FAISS, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.answering.retrieval import Retriever
from assistant.cli import main
from assistant.db.models import Interaction
from assistant.records.interactions import Asker
from assistant.records.reports import build_report, chart_figure
from assistant.service import MomentService
from assistant.settings import Settings, load_settings
from indexer.store import IndexMissingError, IndexStore

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = ROOT / ".moment" / "models"
ASKER = Asker(user_id="U0ASKER01", surface="dm", channel_id="D0ASKER01")
# Preparing the model takes 10 s or more; a command that fails on a path must say so before loading one.
MODEL_RUNTIMES = re.compile(r"^import time:.*\|\s*(onnxruntime|torch|transformers|sentence_transformers)$", re.M)


def _environment(**settings) -> dict[str, str]:
    """The environment without the Moment settings of the machine running the tests, plus `settings`."""
    own = ("MOMENT_", "DATABASE_URL", "SLACK_", "LRS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env["HF_HUB_OFFLINE"] = "1"
    env.update({k: str(v) for k, v in settings.items()})
    return env


def moment(*args, cwd: Path, timeout: float = 180, **settings) -> subprocess.CompletedProcess:
    """`moment ARGS` typed in `cwd`, with only the given settings in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *map(str, args)],
        cwd=cwd,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def in_process(service: MomentService, *args):
    """`moment ARGS` through click's CliRunner, on the service's data folder, database and index."""
    env = {
        "MOMENT_HOME": str(service.settings.home),
        "DATABASE_URL": service.database.url,
        "MOMENT_INDEX_DIR": str(service.retriever.store.root),
        "MOMENT_MODEL_CACHE": str(MODEL_CACHE),
    }
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture
def service(corpus, database, embedder, tmp_path) -> MomentService:
    settings = load_settings(home=tmp_path / "home", index_dir_override=corpus.root)
    return MomentService(settings, database, Retriever(corpus, embedder))


@pytest.fixture
def on_corpus(corpus, tmp_path) -> dict:
    """Settings for a subprocess answering from the session corpus."""
    return {"MOMENT_HOME": tmp_path / "home", "MOMENT_INDEX_DIR": corpus.root, "MOMENT_MODEL_CACHE": MODEL_CACHE}


# --- paths checked before the model is prepared -------------------------------------------------------


@pytest.mark.parametrize(
    "args, says, status",
    [
        (["index", "--content", "no-such-folder"], "no-such-folder does not exist", 1),
        (["demo"], "content does not exist", 1),  # the default content/ of a wrong working directory
        (["ask", "how do i reset my vpn token"], "moment index", 4),  # no index
        (["eval", "QUESTIONS"], "moment index", 4),
        (["report"], "No interaction database", 1),
        (["export"], "No interaction database", 1),
        (["forget", "U0ASKER01", "--yes"], "No interaction database", 1),
    ],
)
def test_a_wrong_folder_fails_fast_without_writing_a_data_folder(tmp_path, args, says, status):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "vpn token", "gold": []}\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = moment(*[questions if a == "QUESTIONS" else a for a in args], cwd=elsewhere, PYTHONPROFILEIMPORTTIME=1)
    assert done.returncode == status, done.stderr
    assert says in done.stderr
    # Fast: it said so before loading a model (no model runtime was even imported; timing it instead
    # failed on a busy machine).
    assert not MODEL_RUNTIMES.findall(done.stderr)
    assert not (elsewhere / ".moment").exists()


def test_eval_names_the_malformed_line(on_corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "vpn token", "gold": ["it/vpn-token.md"]}\n{"question": "mileage", "gold": [\n')
    done = moment("eval", questions, cwd=tmp_path, **on_corpus)
    assert done.returncode == 1
    assert f"{questions}, line 2" in done.stderr


def test_a_mistyped_option_exits_1_not_2(tmp_path):
    done = moment("index", "--contnet", "content", cwd=tmp_path)
    assert done.returncode == 1
    assert "No such option '--contnet'" in done.stderr


# --- exit statuses of `moment index` ------------------------------------------------------------------


@pytest.mark.slow
def test_exit_status_2_only_when_a_version_was_published_with_failures(content, tmp_path):
    content.markdown("ok.md", "OK", "Fine.\n")
    content.write("bad.md", "---\ntitle: [\n---\nx\n")
    settings = {"MOMENT_HOME": tmp_path / "home", "MOMENT_MODEL_CACHE": MODEL_CACHE}
    first = moment("index", "--content", content.root, "--json", cwd=tmp_path, **settings)
    assert (json.loads(first.stdout)["published"], first.returncode) == (True, 2)
    again = moment("index", "--content", content.root, "--json", cwd=tmp_path, **settings)
    assert (json.loads(again.stdout)["published"], again.returncode) == (False, 1)


@pytest.mark.slow
def test_index_json_says_when_the_database_could_not_be_reached(content, tmp_path):
    """The text output warns that approved mentor answers were not written; --json must say it too."""
    content.markdown("ok.md", "OK", "Fine.\n")
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    done = moment("index", "--content", content.root, "--json", cwd=tmp_path, MOMENT_HOME=tmp_path / "home",
                  MOMENT_MODEL_CACHE=MODEL_CACHE, DATABASE_URL=unreachable)  # fmt: skip
    out = json.loads(done.stdout)
    assert out["published"] is True and done.returncode == 0
    assert "approved mentor answers not written" in out["database_problem"]
    assert out["answers_written"] == []


# --- library warnings -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_preparing_the_model_prints_no_library_warnings(tmp_path):
    done = moment("model", "prepare", cwd=tmp_path, timeout=600, MOMENT_MODEL_CACHE=tmp_path / "models")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


# --- moment ask ---------------------------------------------------------------------------------------------


def test_ask_refuses_an_unknown_content_type(on_corpus, tmp_path):
    done = moment("ask", "reset vpn token", "--type", "jobaid", cwd=tmp_path, **on_corpus)
    assert done.returncode == 1
    assert "'jobaid' is not one of 'job-aid', 'procedure', 'reference', 'video'" in done.stderr


def test_ask_refuses_a_tag_no_content_has(on_corpus, tmp_path):
    done = moment("ask", "reset vpn token", "--tag", "vnp", cwd=tmp_path, **on_corpus)
    assert done.returncode == 1
    assert "No content is tagged 'vnp'" in done.stderr and "vpn" in done.stderr


@pytest.mark.slow
def test_a_cli_question_is_searched_as_typed_not_as_slack_markup(on_corpus, tmp_path):
    typed = "tyres:pressure:tread <depth> &amp; lights"
    done = moment("ask", typed, "--json", cwd=tmp_path, **on_corpus)
    assert json.loads(done.stdout)["question"] == typed


def test_forget_a_login_name_points_to_the_questions_it_asked_from_the_cli(on_corpus, tmp_path):
    login = getpass.getuser()
    asked = moment("ask", "reset vpn token", cwd=tmp_path, **on_corpus)
    assert asked.returncode == 0, asked.stderr
    hint = moment("forget", login, "--yes", cwd=tmp_path, **on_corpus)
    assert f"moment forget cli:{login}" in hint.stdout
    gone = moment("forget", f"cli:{login}", "--yes", cwd=tmp_path, **on_corpus)
    assert f"Deleted 1 interaction, 0 votes and 0 mentor requests of cli:{login}" in gone.stdout


# --- symbolic links -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_symlinks_are_skipped_with_a_warning_naming_them(content, tmp_path):
    content.markdown("real.md", "Real", "A real page.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "page.md").write_text("---\ntitle: Elsewhere\ntype: job-aid\n---\nText.\n")
    os.symlink(outside / "page.md", content.root / "linked.md")
    os.symlink(outside, content.root / "linked-folder")
    done = moment("index", "--content", content.root, "--json", cwd=tmp_path, MOMENT_HOME=tmp_path / "home",
                  MOMENT_MODEL_CACHE=MODEL_CACHE)  # fmt: skip
    warned = {w["path"] for w in json.loads(done.stdout)["warnings"] if "symbolic link" in w["reason"]}
    assert warned == {"linked.md", "linked-folder"}
    assert done.returncode == 0


# --- moment export ------------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("https://evil.example","open")', "+1+2", "-2+3 what now", "@SUM(A1:A9)", "\tcmd", "\rcmd"]


def test_export_neutralises_formula_like_cells(service):
    with service.database.session() as session:
        for text in FORMULAS:
            row = {"question": text, "question_chars": len(text), "answered": False, "outcome": "not_answered"}
            session.add(
                Interaction(user_id="U0ASKER01", team_id="default", surface="dm", confidence=0.0, latency_ms=1.0, **row)
            )
    rows = list(csv.DictReader(io.StringIO(in_process(service, "export").stdout)))
    assert [r["question"] for r in rows] == ["'" + text for text in FORMULAS]


# --- moment report ----------------------------------------------------------------------------------------


def test_a_system_error_is_not_a_content_gap(corpus, database, embedder, tmp_path):
    settings = load_settings(home=tmp_path / "home", index_dir_override=tmp_path / "no-index")
    broken = MomentService(settings, database, Retriever(IndexStore(tmp_path / "no-index"), embedder))
    with pytest.raises(IndexMissingError):
        broken.asking.ask("how many weeks of parental leave", ASKER)
    data = json.loads(in_process(broken, "report", "--format", "json").stdout)
    assert data["gaps"] == []
    assert data["errors"] == 1


def test_a_7_day_report_covers_7_days(service):
    early = service.asking.ask("reset vpn token", ASKER)
    inside = service.asking.ask("mileage rate own car", ASKER)
    now = dt.datetime.now(dt.UTC)
    with service.database.session() as session:
        session.get(Interaction, early.interaction_id).created_at = now - dt.timedelta(days=7, minutes=-1)
        session.get(Interaction, inside.interaction_id).created_at = now - dt.timedelta(days=6)
    data = json.loads(in_process(service, "report", "--days", "7", "--format", "json").stdout)
    assert [d["date"] for d in data["per_day"]] == [str(now.date() - dt.timedelta(days=n)) for n in range(6, -1, -1)]
    assert data["questions"] == 1


def test_one_of_a_thing_reads_in_the_singular(service):
    from assistant.slack.admin_blocks import report_blocks

    service.asking.ask("what is the mileage rate for my own car", ASKER)  # stale content
    markdown = in_process(service, "report").stdout
    assert re.search(r"shown 1 time\b", markdown)
    slack = json.dumps([b.to_dict() for b in report_blocks(build_report(service.database, 7))])
    assert "*1* question from 1 person" in slack


def test_the_csv_report_is_one_table(service):
    service.asking.ask("reset vpn token", ASKER)
    service.asking.ask("=cmd|' /C calc'!A0 parental leave", ASKER)
    rows = list(csv.reader(io.StringIO(in_process(service, "report", "--format", "csv").stdout)))
    assert {len(row) for row in rows} == {len(rows[0])}
    assert {row[0] for row in rows[1:]} == {"day", "gap"}
    assert "'=cmd|' /C calc'!A0 parental leave" in {cell for row in rows for cell in row}


@pytest.fixture
def voted_report(service):
    good = service.asking.ask("my vpn token keeps failing how do i reset it", ASKER)
    bad = service.asking.ask("mileage rate for my own car", ASKER)
    service.asking.ask("how many weeks of parental leave", ASKER)
    service.records.vote(good.interaction_id, "U0ASKER01", helpful=True)
    service.records.vote(bad.interaction_id, "U0ASKER01", helpful=False)
    return build_report(service.database, 7)


def test_the_chart_legend_stays_off_the_data(voted_report):
    figure = chart_figure(voted_report)
    figure.canvas.draw()
    legend = figure.legends[0].get_window_extent()
    assert not any(legend.overlaps(axes.get_window_extent()) for axes in figure.axes)


def test_the_chart_plots_the_answered_rate(voted_report):
    lines = {line.get_label(): line for axes in chart_figure(voted_report).axes for line in axes.get_lines()}
    today = voted_report.per_day[-1]
    assert lines["answered rate"].get_ydata()[-1] == pytest.approx(today["answered"] / today["questions"])


def test_the_chart_shows_the_votes_beside_the_helpful_rate(voted_report):
    labels = [text.get_text() for axes in chart_figure(voted_report).axes for text in axes.texts]
    assert labels == ["2 votes"]


def test_the_chart_is_written_in_the_format_its_name_asks_for(service, tmp_path):
    result = in_process(service, "report", "--chart", tmp_path / "chart.jpg")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "chart.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_a_chart_format_moment_cannot_write_is_refused(service, tmp_path):
    result = in_process(service, "report", "--chart", tmp_path / "chart.gif")
    assert result.exit_code == 1
    assert "chart.gif: Moment writes charts as .png, .jpg, .svg or .pdf" in result.stderr


def test_a_chart_into_a_missing_folder_is_refused(service, tmp_path):
    result = in_process(service, "report", "--chart", tmp_path / "nowhere" / "chart.png")
    assert result.exit_code == 1
    assert f"The folder {tmp_path / 'nowhere'} does not exist" in result.stderr


# --- documentation ----------------------------------------------------------------------------------------


def test_every_setting_is_in_the_deployment_guides_settings_table():
    guide = (ROOT / "docs" / "deploying.md").read_text()
    table = guide.split("## Every setting", 1)[1].split("\n## ", 1)[0]
    variables = [field.validation_alias.choices[0] for field in Settings.model_fields.values()]
    assert [v for v in variables if f"`{v}`" not in table] == []
