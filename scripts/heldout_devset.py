"""Make a held-out development set for the reader from the training corpora's validation sources.

The reader is trained on five of `../shared/corpora/training/`'s handbooks; two (carpentries-handbook,
turing-reg-handbook) are held out whole for validation. This script turns those two into what the test
sets look like: each question's own heading is removed from its page (as the CivicActions extractor did),
so the page no longer gives the answer away by repeating the question. The result is a content folder
and a questions file for `moment eval`, so passage choice can be judged on content nobody here wrote
without looking at the test sets. `questions-keywords.jsonl` asks the same questions as people type them
in Slack, without their opening words ("select tags for my carpentries blog": `query_styles.keywords`).

    python scripts/heldout_devset.py ../shared/corpora/training .moment/heldout-dev
    moment eval .moment/heldout-dev/questions.jsonl --content .moment/heldout-dev/corpus
    moment eval .moment/heldout-dev/questions-keywords.jsonl --content .moment/heldout-dev/corpus
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from lab.query_styles import keywords
from lab.training_data import VALIDATION_SOURCES, strip_question_headings


def build(training: Path, out: Path) -> tuple[int, int]:
    if out.exists():
        shutil.rmtree(out)
    (out / "corpus").mkdir(parents=True)
    rows = []
    pages = 0
    for source in VALIDATION_SOURCES:
        folder = training / source
        questions = [json.loads(line) for line in (folder / "questions.jsonl").read_text().splitlines() if line.strip()]
        by_page = defaultdict(list)
        for q in questions:
            by_page[q["page"]].append(q)
        for page in sorted((folder / "corpus").rglob("*.md")):
            rel = page.relative_to(folder / "corpus").as_posix()
            text = strip_question_headings(page.read_text(encoding="utf-8"), by_page.get(rel, []))
            target = out / "corpus" / source / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            pages += 1
        for q in questions:
            if q.get("heading_level", 0) < 2:
                continue  # a page title question: the whole page answers, nothing to choose within it
            rows.append(
                {
                    "question": q["question"],
                    "gold": [f"{source}/{q['page']}"],
                    "answer_text": q["answer_text"],
                    "kind": q["kind"],
                    "split": "test",
                }
            )
    (out / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    typed = [r | {"question": keywords(r["question"])} for r in rows]
    (out / "questions-keywords.jsonl").write_text("".join(json.dumps(r) + "\n" for r in typed))
    return pages, len(rows)


if __name__ == "__main__":
    pages, questions = build(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{pages} pages, {questions} questions -> {sys.argv[2]}")
