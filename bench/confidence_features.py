"""Which confidence features carry from one collection to another? Fits the answer/decline model on one
development set and scores the other, both ways, for every subset of the features (with the reader's
logit). The calibration itself is fitted on the sets pooled, so its own figures are in-sample; this is
the out-of-sample view that chose `calibrating.READER_FEATURES`. (Never run this on a test set.)

    python scripts/heldout_devset.py ../shared/corpora/training .moment/heldout-dev
    python bench/confidence_features.py

Prints near-miss AUC and overall AUC each way for the shipped feature sets and the best subsets.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from assistant.answering import calibrating, evaluation
from assistant.answering.reader import reader_for
from assistant.answering.retrieval import RetrievalParams, Retriever, confidence_of
from assistant.cli.content import eval_set
from assistant.settings import load_settings
from indexer.embedding import load_embedder

ALL = [*calibrating.FEATURES, "reader"]


def collect(settings, sets: dict) -> dict[str, list[tuple[dict, bool, str | None]]]:
    """Each question's confidence features, whether it has an answer, and its kind, per set."""
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache, spinning=False)
    reader, state = reader_for(settings, force=True)
    if reader is None:
        raise SystemExit(f"The reader is needed: {state.problem}")
    params = RetrievalParams.calibrated(settings.home, reader=True)
    out = {}
    for name, (questions, store) in sets.items():
        retriever = Retriever(store, embedder, params, reader=reader)
        out[name] = [(retriever.search(q.question).features, q.answerable, q.kind) for q in questions]
    return out


def cross_fit(data: dict, names: list[str]) -> dict[str, tuple[float, float]]:
    """(near-miss AUC, AUC) on each set of a model fitted on the other."""
    out = {}
    for train, test in itertools.permutations(data, 2):
        weights, bias = calibrating.fit_confidence([r[0] for r in data[train]], [r[1] for r in data[train]], names)
        answerable = [confidence_of(f, weights, bias) for f, ok, _ in data[test] if ok]
        unanswerable = [confidence_of(f, weights, bias) for f, ok, _ in data[test] if not ok]
        near = [confidence_of(f, weights, bias) for f, ok, kind in data[test] if not ok and kind == "near-miss"]
        out[f"{train}->{test}"] = (evaluation.auc(answerable, near), evaluation.auc(answerable, unanswerable))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heldout", type=Path, default=Path(".moment/heldout-dev"))
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    settings = load_settings()
    sets = {
        "demo-dev": eval_set(settings, Path("content/eval/questions.jsonl"), "dev", None, None, None, True),
        "heldout-minus": eval_set(
            settings, args.heldout / "questions.jsonl", None, args.heldout / "corpus", None, 4, True
        ),
    }
    data = collect(settings, sets)

    def line(label: str, names: list[str]) -> tuple[float, str]:
        figures = cross_fit(data, names)
        total = sum(near for near, _ in figures.values())
        shown = "  ".join(f"{way}: near-miss {near:.3f} all {every:.3f}" for way, (near, every) in figures.items())
        return total, f"{total:.3f}  {shown}  {label}"

    print("sum of near-miss AUCs, then each way (fitted on the first set, scored on the second):")
    print(line("all six features + the reader's logit (as first shipped)", ALL)[1])
    print(line("READER_FEATURES (shipped)", calibrating.READER_FEATURES)[1])
    subsets = [
        list(names) for k in range(1, len(ALL) + 1) for names in itertools.combinations(ALL, k) if "reader" in names
    ]
    ranked = sorted((line(",".join(names), names) for names in subsets), reverse=True)
    print(f"best {args.top} of {len(subsets)} subsets with the reader's logit:")
    for _, text in ranked[: args.top]:
        print(text)


if __name__ == "__main__":
    main()
