"""The answer-quality floor on the demo content: a change that makes Moment rank worse than the plain
approaches, or answer and decline worse than measured, fails here (figures in docs/answer-quality.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answering.evaluation import evaluate, load_questions
from assistant.answering.retrieval import Retriever
from indexer.build import build_index
from indexer.store import IndexStore

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "content" / "eval" / "questions.jsonl"
# Indexing the demo content and evaluating every question takes minutes: in the whole suite, not the fast tier.
pytestmark = pytest.mark.slow


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
    """Both measured at 78% on the test split (the 90% bar is not met: see docs/answer-quality.md)."""
    report = evaluate(demo_retriever, load_questions(QUESTIONS, "test"), ["moment"])
    moment = report.systems["moment"]
    assert moment.answered_when_answerable >= 0.75, report.table()
    assert moment.declined_when_unanswerable >= 0.75, report.table()


def test_first_passage_beats_the_plain_baselines_with_and_without_the_reader(demo_retriever, embedder):
    """Measured 2026-12-06 on the test split: first passage right 0.464 retrieval alone, 0.588 with the
    reader, 0.350 dense, 0.278 BM25 (docs/answer-quality.md)."""
    from assistant.answering.reader.model import load_reader
    from assistant.answering.reader.reading import PassageReader

    read = Retriever(demo_retriever.store, demo_retriever.embedder, reader=PassageReader(load_reader()))
    questions = load_questions(QUESTIONS, "test")
    report = evaluate(
        demo_retriever, questions, ["moment", "moment-reader", "bm25", "dense"], retrievers={"moment-reader": read}
    )
    moment, reader, bm25, dense = (report.systems[n] for n in ("moment", "moment-reader", "bm25", "dense"))
    assert moment.passage_questions == 97, report.table()
    for plain in (bm25, dense):
        assert moment.first_passage_right > plain.first_passage_right, report.table()
    assert moment.first_passage_right >= 0.44 and reader.first_passage_right >= 0.54, report.table()
    # The reader's score helps tell answerable questions from near-misses, a little.
    assert reader.near_miss_auc >= moment.near_miss_auc - 0.01, report.table()
