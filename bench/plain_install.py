"""A plain install (`pip install .`, no extras): its size on disk and its cold `moment ask`, for several
installs side by side (for example the checkout before and after PyTorch left the product's dependencies).

Each VENV is a fresh virtual environment into which a checkout was installed with `pip install .`. For each:
the size of the environment (`du`), which of PyTorch, transformers, sentence-transformers and optimum it
holds, then in a scratch folder of its own `moment model prepare` into an empty model cache (timed once),
`moment index` of the demo content, one untimed `moment ask`, and `--runs` cold `moment ask` processes,
the environments alternating run after run. Nothing of the checkout running this script is imported by
them (no PYTHONPATH; each runs from its scratch folder).

    python bench/plain_install.py --venv before=/tmp/plain-venv-before --venv after=/tmp/plain-venv [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, write_result

QUESTION = "how do I reset my vpn token"
HEAVY = ("torch", "transformers", "sentence_transformers", "optimum")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOMENT_", "PYTHONPATH", "DATABASE_URL"))}
    env.update(
        HF_HUB_OFFLINE="1",
        MOMENT_HOME=str(home),
        MOMENT_MODEL_CACHE=str(home / "models"),
        MOMENT_INDEX_DIR=str(home / "index"),
    )
    return env


def _run(venv: Path, home: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [str(venv / "bin" / "moment"), *args], cwd=home, env=_env(home), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{venv}: moment {' '.join(args)} failed:\n{done.stderr}")
    return seconds


def _size_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def _installed(venv: Path) -> list[str]:
    probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *HEAVY], capture_output=True, text=True, check=True
    ).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", action="append", required=True, help="NAME=PATH of a virtual environment")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    venvs = {name: Path(path) for name, path in (item.split("=", 1) for item in args.venv)}
    scratch = Path(tempfile.mkdtemp(prefix="moment-plain-"))
    results: dict[str, dict] = {}
    for name, venv in venvs.items():
        home = scratch / name
        home.mkdir()
        results[name] = {
            "size_mb": round(_size_mb(venv)),
            "heavy_libraries": _installed(venv),
            "prepare_s": round(_run(venv, home, "model", "prepare"), 1),
            "index_s": round(_run(venv, home, "index", "--content", str(ROOT / "content")), 1),
        }
        _run(venv, home, "ask", QUESTION)  # creates and migrates its database; the file cache is warm after
    times: dict[str, list[float]] = {name: [] for name in venvs}
    for _ in range(args.runs):
        for name, venv in venvs.items():
            times[name].append(_run(venv, scratch / name, "ask", QUESTION))
    for name, runs in times.items():
        ordered = sorted(runs)
        results[name]["cold_ask_median_s"] = round(statistics.median(ordered), 2)
        results[name]["cold_ask_p95_s"] = round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2)
    figures = {"runs": args.runs, "load_average_1min_at_end": round(os.getloadavg()[0], 1), "installs": results}
    print(json.dumps(figures, indent=2))
    write_result("plain_install", figures)


if __name__ == "__main__":
    main()
