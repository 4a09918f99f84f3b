"""Safety content first, measured: the demo eval set with and without `lead:` sections applied.

    python bench/lead_sections.py [content/eval/questions.jsonl]

Runs Moment (reader on) on the demo index (`moment index` first) twice: as shipped, and with no lead ever
applied; prints first passage right and within one click per split, and every question whose passage
changed, with its verdict either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import assistant.answering.lead as lead
from assistant.answering.evaluation import evaluate, load_questions
from assistant.answering.reader import reader_for
from assistant.answering.retrieval import Retriever
from assistant.settings import load_settings
from indexer.embedding import load_embedder
from indexer.store import IndexStore


def main() -> None:
    questions = load_questions(Path(sys.argv[1] if len(sys.argv) > 1 else "content/eval/questions.jsonl"))
    settings = load_settings()
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache)
    reader, _ = reader_for(settings)
    retriever = Retriever(IndexStore(settings.index_dir), embedder, reader=reader)
    with_lead = evaluate(retriever, questions, ["moment"])
    shipped = lead.uncertain
    lead.uncertain = lambda hit, **_: False
    try:
        without = evaluate(retriever, questions, ["moment"])
    finally:
        lead.uncertain = shipped
    for split in ("dev", "test"):
        rows = [i for i, q in enumerate(questions) if q.split == split]
        for name, report in (("without lead", without), ("with lead", with_lead)):
            m = report.systems["moment"]
            judged = [m.passage_right[i] for i in rows if m.passage_right[i] is not None]
            click = [m.one_click_right[i] for i in rows if m.one_click_right[i] is not None]
            right = f"{sum(judged) / len(judged):.3f} ({sum(judged)}/{len(judged)})"
            print(f"{split:4s} {name:13s} first passage right {right}  within one click {sum(click) / len(click):.3f}")
    for i, q in enumerate(questions):
        a, b = without.rankings["moment"][i], with_lead.rankings["moment"][i]
        if a.passage != b.passage:
            before, after = without.systems["moment"].passage_right[i], with_lead.systems["moment"].passage_right[i]
            print(f"changed [{q.split}] {q.question!r}: right {before} -> {after}")


if __name__ == "__main__":
    main()
