"""The answer-quality floor on the demo content: a change that makes Moment rank worse than the plain
approaches, or answer and decline worse than measured, fails here (figures in README, "Answer quality")."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.evaluation import evaluate, load_questions
from assistant.retrieval import Retriever
from indexer.build import build_index
from indexer.store import IndexStore

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "content" / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def demo_retriever(tmp_path_factory, embedder):
    store = IndexStore(tmp_path_factory.mktemp("demo") / "index")
    report = build_index(ROOT / "content", store, embedder)
    assert not report.failed
    return Retriever(store, embedder)


@pytest.mark.parametrize("split", ["dev", "test"])
def test_moment_ranks_better_than_bm25_and_dense_search(demo_retriever, split):
    report = evaluate(demo_retriever, load_questions(QUESTIONS, split), ["moment", "bm25", "dense"])
    moment, bm25, dense = (report.systems[name] for name in ("moment", "bm25", "dense"))
    for plain in (bm25, dense):
        assert moment.recall_at_5 >= plain.recall_at_5, (split, plain.name, report.table())
        assert moment.mrr_at_10 > plain.mrr_at_10, (split, plain.name, report.table())
    # Measured 2026-11-25: dev 0.911 / 1.000 / 0.948, test 0.856 / 0.969 / 0.915.
    assert moment.recall_at_5 >= 0.96 and moment.mrr_at_10 >= 0.90, report.table()


def test_answer_and_decline_rates_do_not_fall(demo_retriever):
    """Both measured at 78% on the test split (the 90% bar is not met: see README)."""
    report = evaluate(demo_retriever, load_questions(QUESTIONS, "test"), ["moment"])
    moment = report.systems["moment"]
    assert moment.answered_when_answerable >= 0.75, report.table()
    assert moment.declined_when_unanswerable >= 0.75, report.table()
