"""Calibration is data: shipped in the package, overridden from the data folder, written there by
`moment eval --calibrate`; a built wheel answers exactly as the checkout.

The real `moment` command in subprocesses, the real model and FAISS; the wheel is built with the
project venv's setuptools (no network) and installed with pip into a folder of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.answering.calibrating import FEATURES
from assistant.answering.retrieval import CALIBRATION_FILE, READER_CALIBRATION_FILE

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = ROOT / ".moment" / "models"
QUESTIONS = ("how do i reset my vpn token", "what is the mileage rate for my own car", "check the van tyres")


def moment(*args, cwd: Path, pythonpath: Path | None = None, **settings) -> subprocess.CompletedProcess:
    """`moment ARGS` in `cwd` with only the given settings (and, with `pythonpath`, Moment imported from it)."""
    own = ("MOMENT_", "DATABASE_URL", "SLACK_", "LRS_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(HF_HUB_OFFLINE="1", MOMENT_MODEL_CACHE=str(MODEL_CACHE), **{k: str(v) for k, v in settings.items()})
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "assistant.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def asked(question: str, cwd: Path, **settings) -> dict:
    done = moment("ask", question, "--json", cwd=cwd, **settings)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _never_answering(packaged: Path) -> str:
    return json.dumps({**json.loads(packaged.read_text()), "threshold": 1.01})


# --- the data folder's calibration wins ------------------------------------------------------------------


@pytest.mark.slow
def test_the_data_folders_calibration_wins_over_the_packaged_one(corpus, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "calibration.json").write_text(_never_answering(CALIBRATION_FILE))
    answer = asked(QUESTIONS[0], tmp_path, MOMENT_HOME=home, MOMENT_INDEX_DIR=corpus.root, MOMENT_READER="off")
    assert answer["answered"] is False


@pytest.mark.slow
def test_the_data_folders_reader_calibration_wins_when_the_reader_is_on(corpus, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "calibration-reader.json").write_text(_never_answering(READER_CALIBRATION_FILE))
    answer = asked(QUESTIONS[0], tmp_path, MOMENT_HOME=home, MOMENT_INDEX_DIR=corpus.root, MOMENT_READER="on")
    assert answer["answered"] is False


@pytest.mark.slow
def test_eval_names_the_calibration_it_measured_with_and_warns_when_it_is_the_data_folders(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": QUESTIONS[0], "gold": ["it/vpn-token.md"]}) + "\n")
    home = tmp_path / "home"
    home.mkdir()
    settings = {"MOMENT_HOME": home, "MOMENT_INDEX_DIR": corpus.root, "MOMENT_READER": "off"}
    done = moment("eval", questions, "--no-compare", "--json", cwd=tmp_path, **settings)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["calibration"] == {
        "moment": str(CALIBRATION_FILE),
        "moment-reader": str(READER_CALIBRATION_FILE),
    }
    # And the processor's instruction sets: the int8 reader's scores can differ with them.
    from indexer.inference import cpu_features

    assert json.loads(done.stdout)["machine"] == {"cpu_features": cpu_features()}
    assert "calibration" not in done.stderr
    (home / "calibration.json").write_text(_never_answering(CALIBRATION_FILE))
    done = moment("eval", questions, "--no-compare", "--json", cwd=tmp_path, **settings)
    assert json.loads(done.stdout)["calibration"]["moment"] == str(home / "calibration.json")
    assert f"measured with this data folder's calibration ({home / 'calibration.json'})" in done.stderr
    done = moment("eval", questions, "--no-compare", cwd=tmp_path, **settings)
    assert f"Calibration: {home / 'calibration.json'}" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("reader", "name"), [("off", "calibration.json"), ("on", "calibration-reader.json")])
def test_a_corrupt_calibration_in_the_data_folder_is_an_error_naming_it(corpus, tmp_path, reader, name):
    home = tmp_path / "home"
    home.mkdir()
    (home / name).write_text("{not json")
    settings = {"MOMENT_HOME": home, "MOMENT_INDEX_DIR": corpus.root, "MOMENT_READER": reader}
    done = moment("ask", QUESTIONS[0], cwd=tmp_path, **settings)
    assert done.returncode == 1
    assert f"The calibration file {home / name} is unreadable" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reader", "name", "packaged_file", "features"),
    [
        ("off", "calibration.json", CALIBRATION_FILE, FEATURES),
        # With the reader, the word-overlap features (BM25, coverage) are left out of the confidence.
        (
            "on",
            "calibration-reader.json",
            READER_CALIBRATION_FILE,
            ["cosine", "known_terms", "agreement", "margin", "reader"],
        ),
    ],
)
def test_calibrating_writes_to_the_data_folder_never_into_the_package(
    corpus, tmp_path, reader, name, packaged_file, features
):
    gold = {"token code keeps changing": "it/vpn-token.md", "mileage claim deadline": "hr/mileage.md",
            "password expired": "it/password.md", "best pizza near the office": None}  # fmt: skip
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "gold": [g] if g else []}) + "\n" for q, g in gold.items()))
    packaged = packaged_file.read_bytes()
    home = tmp_path / "home"
    done = moment("eval", questions, "--calibrate", "--no-compare", "--json", cwd=tmp_path, MOMENT_HOME=home,
                  MOMENT_INDEX_DIR=corpus.root, MOMENT_READER=reader)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(json.loads((home / name).read_text())["weights"]) == features
    assert packaged_file.read_bytes() == packaged


@pytest.mark.slow
def test_calibrating_with_a_second_set_indexes_it_and_pools_its_questions(corpus, tmp_path):
    content = corpus.root.parent / "content"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(json.dumps({"question": "password expired", "gold": ["it/password.md"]}) + "\n")
    second.write_text("".join(json.dumps(q) + "\n" for q in [
        {"question": "mileage claim deadline", "gold": ["hr/mileage.md"]},
        {"question": "token code keeps changing", "gold": ["it/vpn-token.md"]},
        {"question": "best pizza near the office", "gold": []}]))  # fmt: skip
    home = tmp_path / "home"
    settings = {"MOMENT_HOME": home, "MOMENT_INDEX_DIR": corpus.root, "MOMENT_READER": "off"}
    done = moment("eval", first, "--calibrate", "--calibrate-with", f"{second},{content},2", "--no-compare",
                  "--json", cwd=tmp_path, **settings)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The second set's content was indexed without every 2nd single-gold page: one of its two
    # answerable questions lost its page and counts as unanswerable.
    assert json.loads((home / "calibration.json").read_text())["calibrated_on"] == {
        "questions": 4, "answerable": 2, "sets": 2}  # fmt: skip
    for bad, says in [(f"{second}", "give QUESTIONS,CONTENT"), (f"{second},{content},1", "N is a whole number"),
                      (f"{tmp_path / 'none.jsonl'},{content}", "is not a file")]:  # fmt: skip
        done = moment("eval", first, "--calibrate", "--calibrate-with", bad, cwd=tmp_path, MOMENT_HOME=home,
                      MOMENT_INDEX_DIR=corpus.root)  # fmt: skip
        assert done.returncode != 0 and says in done.stderr
    done = moment("eval", first, "--calibrate-with", f"{second},{content}", cwd=tmp_path, MOMENT_HOME=home,
                  MOMENT_INDEX_DIR=corpus.root)  # fmt: skip
    assert done.returncode == 1 and "give --calibrate too" in done.stderr


# --- a built wheel answers as the checkout ------------------------------------------------------------------


def test_every_package_data_pattern_names_files():
    import tomllib

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = [(package, pattern) for package, patterns in package_data.items() for pattern in patterns]
    assert [p for p in patterns if not list((ROOT / p[0]).glob(p[1]))] == []


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The project built as a wheel (from a copy of the sources: nothing is written into the checkout) and
    installed with pip into a folder of its own, without dependencies (they are the project venv's)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("assistant", "indexer", "lab"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", work / "dist",
                            source], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("moment-*.whl")
    target = work / "site"
    done = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", target, wheel],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


@pytest.mark.slow
def test_the_installed_wheel_is_the_one_running(installed_wheel, tmp_path):
    where = subprocess.run(
        [sys.executable, "-c", "import assistant.answering.retrieval as r; print(r.CALIBRATION_FILE)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed_wheel)}, capture_output=True, text=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()) == installed_wheel / "assistant" / "answering" / "calibration.json"


@pytest.mark.slow
def test_the_wheel_ships_no_test_code(installed_wheel):
    assert sorted(p.name for p in installed_wheel.iterdir() if not p.name.endswith(".dist-info")) == [
        "assistant",
        "bin",
        "indexer",
        "lab",  # its libraries come only with the extra: pip install 'moment[lab]'
    ]


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["off", "on"])
def test_the_installed_wheel_answers_exactly_as_the_checkout(installed_wheel, corpus, tmp_path, reader):
    outside = tmp_path / "elsewhere"  # not the checkout: nothing of it on the import path
    outside.mkdir()
    settings = {"MOMENT_INDEX_DIR": corpus.root, "MOMENT_READER": reader}
    for n, question in enumerate(QUESTIONS):
        checkout = asked(question, ROOT, MOMENT_HOME=tmp_path / f"checkout-{n}", **settings)
        wheel = asked(question, outside, pythonpath=installed_wheel, MOMENT_HOME=tmp_path / f"wheel-{n}", **settings)
        assert (wheel["answered"], wheel["confidence"]) == (checkout["answered"], checkout["confidence"])
        assert [(s["path"], s["snippet"]) for s in wheel["sources"]] == [
            (s["path"], s["snippet"]) for s in checkout["sources"]
        ]


def test_the_processors_instruction_sets_are_read_from_cpuinfo():
    from indexer.inference import cpu_features

    intel = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n"
    assert cpu_features(intel) == ["avx2", "avx512f", "avx512_vnni"]
    assert cpu_features("Features\t: fp asimd i8mm\n") == ["asimd", "i8mm"]  # arm64
    assert cpu_features("") == []


def test_paired_verdicts_give_the_exact_mcnemar_p():
    from assistant.answering.evaluation import paired

    # 5 questions right for the first only, 1 for the second only: p = 2 * (1 + 6) / 2**6.
    a = [True] * 5 + [False] + [True] * 3 + [False] * 2 + [None]
    b = [False] * 5 + [True] + [True] * 3 + [False] * 2 + [True]
    result = paired(a, b)
    assert result == {"questions": 11, "only_first": 5, "only_second": 1, "both": 3, "neither": 2, "p": 0.2188}
    assert paired([True, False], [True, False])["p"] == 1.0  # no disagreement: no evidence either way
    assert paired([True] * 8, [False] * 8)["p"] == 0.0078  # 8 to 0
