"""The reader's pipeline on the held-out development set, in variants: which way of choosing and
focusing passages does best on content the reader never saw? (Never run this to tune on a test set.)

    python scripts/heldout_devset.py ../shared/corpora/training .moment/heldout-dev
    moment eval .moment/heldout-dev/questions.jsonl --content .moment/heldout-dev/corpus   # builds the index
    python bench/reader_dev.py .moment/heldout-dev/questions.jsonl --content .moment/heldout-dev/corpus \\
        --model assistant/answering/reader/model --variant windows=12 --variant prior_weight=10

Prints, per variant, first page right, first passage right and the reading time (median / p95 ms).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from assistant.answering import evaluation
from assistant.answering.reader.model import load_reader
from assistant.answering.reader.reading import PassageReader
from assistant.answering.retrieval import READER_CALIBRATION_FILE, RetrievalParams, Retriever
from assistant.settings import load_settings
from indexer.embedding import load_embedder
from indexer.store import IndexStore


def parse_variant(text: str) -> dict:
    out = {}
    for part in filter(None, text.split(",")):
        key, value = part.split("=")
        out[key] = float(value) if "." in value else int(value)
    return out


def _timed(read, times: list[float]):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        read(*args, **kwargs)
        times.append((time.perf_counter() - started) * 1000)

    return timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("questions", type=Path)
    ap.add_argument("--content", type=Path, help="the folder `moment eval --content` indexed (default: the main index)")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--variant", action="append", default=[])
    args = ap.parse_args()
    settings = load_settings()
    questions = evaluation.load_questions(args.questions)
    store = IndexStore(evaluation.eval_index_dir(settings.home, args.content) if args.content else settings.index_dir)
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache, spinning=False)
    reader = load_reader(args.model, threads=settings.embedding_threads)
    base = RetrievalParams.load(READER_CALIBRATION_FILE)
    print(f"{len(questions)} questions; reader {args.model or 'shipped'}: {reader.describe()}")
    for text in args.variant or [""]:
        options = parse_variant(text)
        # prior_weight=: the calibration's reader_prior_weight (each variant starts from the calibration)
        extra = {f"reader_{k}": options.pop(k) for k in ("prior_weight",) if k in options}
        passage_reader = PassageReader(reader, **options)
        params = RetrievalParams.from_dict({**base.__dict__, **extra})
        retriever = Retriever(store, embedder, params, reader=passage_reader)
        times: list[float] = []
        passage_reader.read = _timed(passage_reader.read, times)
        report = evaluation.evaluate(retriever, questions, ["moment"]).systems["moment"].to_dict()
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        print(
            f"{text or 'default':40s} page {report['recall@1']:.3f}  passage {report['first_passage_right']:.3f}"
            f"  read {statistics.median(times):.0f} / {p95:.0f} ms"
        )


if __name__ == "__main__":
    main()
