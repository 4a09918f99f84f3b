"""The cosine a question needs to match a course (`assistant.learning.suggestions.MATCH_COSINE`), from labelled
questions: evalsets/course-match.jsonl (written for the catalogue evalsets/course-catalogue.json, before any run).

For each question: its best course and cosine with the real embedding model, and whether that is the course it
is labelled with. Prints the lowest cosine of a right match, the highest of a question about no course (or of a
wrong course), and what thresholds keep and refuse.

    python bench/course_threshold.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.learning.catalogue import parse_json  # noqa: E402
from assistant.learning.suggestions import MATCH_COSINE  # noqa: E402
from assistant.settings import load_settings  # noqa: E402


def main() -> None:
    from assistant.service import load_embedder_for

    embedder = load_embedder_for(load_settings())
    entries, errors = parse_json((ROOT / "evalsets" / "course-catalogue.json").read_text())
    assert not errors, errors
    names = [e.url.rsplit("/", 1)[-1] for e in entries]
    courses = np.asarray(embedder.encode([e.text for e in entries]), dtype=np.float32)
    rows = [json.loads(line) for line in (ROOT / "evalsets" / "course-match.jsonl").read_text().splitlines() if line]
    questions = np.asarray(embedder.encode([r["question"] for r in rows]), dtype=np.float32)
    scores = questions @ courses.T
    right, wrong, none = [], [], []
    for row, s in zip(rows, scores, strict=True):
        best = int(np.argmax(s))
        ok = row["course"] is not None and names[best] == row["course"]
        (right if ok else wrong).append(float(s[best]))
        if row["course"] is None:
            none.append(float(s[best]))
        label = row["course"] or "(none)"
        print(f"{s[best]:.3f}  {'ok ' if ok else '-- '} {names[best]:<18} {label:<18} {row['question']}")
    print(f"\nright matches: {len(right)}, lowest cosine {min(right):.3f}, median {statistics.median(right):.3f}")
    print(f"no course or the wrong one: {len(wrong)}, highest {max(wrong):.3f}, median {statistics.median(wrong):.3f}")
    print(f"questions about no course: {len(none)}, highest {max(none):.3f}")
    for threshold in sorted({0.15, 0.2, 0.25, MATCH_COSINE, 0.3, 0.35, 0.4}):
        kept = sum(c >= threshold for c in right)
        refused = sum(c < threshold for c in wrong)
        mark = "  <- MATCH_COSINE" if threshold == MATCH_COSINE else ""
        print(
            f"threshold {threshold:.2f}: {kept}/{len(right)} right matches kept, "
            f"{refused}/{len(wrong)} others refused{mark}"
        )


if __name__ == "__main__":
    main()
