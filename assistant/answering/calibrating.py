"""Calibration (`moment eval --calibrate`): the fusion weights, the reader's weight and the answer/decline
model chosen on development questions, by the measures of `assistant.answering.evaluation`.

    params = calibrate(retriever, load_questions(path, "dev"))   # saved as the data folder's calibration.json
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from assistant.answering.evaluation import EvalQuestion, Ranked, rank_moment, score_system
from assistant.answering.reader.reading import PassageReader
from assistant.answering.retrieval import Retriever, confidence_of


def fit_confidence(features: list[dict], labels: list[bool], names: list[str]) -> tuple[dict[str, float], float]:
    """Logistic regression (L2, Newton's method) of `labels` on the named features."""
    x = np.array([[f.get(n, 0.0) for n in names] for f in features], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    x1 = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(x1.shape[1])
    ridge = np.eye(x1.shape[1]) * 0.1
    ridge[0, 0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x1 @ w)))
        gradient = x1.T @ (p - y) + ridge @ w
        hessian = x1.T @ (x1 * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {n: float(v) for n, v in zip(names, w[1:], strict=True)}, float(w[0])


# The fusion weights tried by `calibrate` (the best on the dev split lay at 0.1 and 0.15, inside the grid).
KEYWORD_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
COVERAGE_WEIGHTS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
FEATURES = ["cosine", "keyword", "known_terms", "agreement", "margin", "coverage"]
# With the reader, its confidence leaves out the two word-overlap features (BM25 and coverage): how many of a
# question's words a page repeats depends on how the question was typed and how the content is written, so
# they do not carry from one collection to another. Fitted on one development set and scored on the other
# (the demo's dev split; the held-out handbooks without every 4th gold page), near-miss AUC 0.788 -> 0.815
# and 0.738 -> 0.780 without them (docs/reader.md, "The confidence").
READER_FEATURES = ["cosine", "known_terms", "agreement", "margin", "reader"]


READER_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
READER_PRIOR_WEIGHTS = (0.0, 5.0, 10.0, 20.0)


class _ScoreCache:
    """The reader with its scores remembered, so a calibration grid reads each passage once."""

    def __init__(self, reader) -> None:
        self._reader = reader
        self._seen: dict[tuple[str, str], float] = {}

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def score(self, question: str, passages) -> np.ndarray:
        missing = [p for p in dict.fromkeys(passages) if (question, p) not in self._seen]
        if missing:
            for p, value in zip(missing, self._reader.score(question, missing).tolist(), strict=True):
                self._seen[(question, p)] = value
        return np.array([self._seen[(question, p)] for p in passages], dtype=np.float32)


def calibrate(retriever: Retriever, questions: list[EvalQuestion], base=None, also=()) -> dict:
    """Choose fusion weights and the answer/decline model on `questions` (the dev split), and on each
    `(index store, questions)` set in `also` (development sets on other content: a calibration fitted on
    one collection alone leans on what tells answers apart there).

    Without the reader:
    1. Fusion: the keyword and coverage weights with the best recall@5 + MRR@10 on answerable questions.
    With the reader (the retrieval weights of `base`, the reader-off calibration, are kept):
    1. The reader's weight in the page order: the best recall@5 + MRR@10 + first passage right.
    (Summed over the sets.) Then, either way, over all the sets' questions together:
    2. Confidence: logistic regression of "has an answer in the content" on the top result's features
       (`FEATURES`; with the reader `READER_FEATURES`, its logit for the first passage among them).
    3. Threshold (on `questions` alone when they have both kinds): the one that maximises the worse of the
       answer rate (answerable questions) and the decline rate (unanswerable ones), so neither is bought
       with the other.
    """
    base = base or retriever.params
    reader = retriever.reader
    if reader is not None:
        reader = PassageReader(_ScoreCache(reader.reader), reader.pages, reader.windows, reader.focus_margin)
    sets = [(retriever.store, questions), *also]
    labels = [q.answerable for _, own_questions in sets for q in own_questions]
    if all(labels) or not any(labels):
        raise ValueError(
            "Calibrating needs questions with an answer in the content and questions without one "
            f"(these have {sum(labels)} with and {len(labels) - sum(labels)} without)."
        )

    def trial(params) -> tuple[float, list[Ranked]]:
        objective, rankings = 0.0, []
        for store, own_questions in sets:
            candidate = Retriever(store, retriever.embedder, params, reader=reader)
            ranked = [rank_moment(candidate, q.question) for q in own_questions]
            report = score_system("trial", own_questions, ranked)
            objective += report.recall_at_5 + report.mrr_at_10 + (report.first_passage_right or 0.0)
            rankings += ranked
        return objective, rankings

    best = None
    if reader is None:
        grid = [
            replace(base, keyword_weight=kw, coverage_weight=cw) for kw in KEYWORD_WEIGHTS for cw in COVERAGE_WEIGHTS
        ]
    else:
        grid = [
            replace(base, reader_weight=w, reader_prior_weight=pw)
            for w in READER_WEIGHTS
            for pw in READER_PRIOR_WEIGHTS
        ]
    for params in grid:
        objective, rankings = trial(params)
        if best is None or objective > best[0] + 1e-9:
            best = (objective, params, rankings)
    _, tuned, rankings = best
    names = READER_FEATURES if reader is not None else FEATURES
    features = [r.features or {} for r in rankings]
    weights, bias = fit_confidence(features, labels, names)
    confidences = [confidence_of(f, weights, bias) if f else 0.0 for f in features]
    # The threshold is the first set's choice when it has questions of both kinds: the other sets teach
    # the confidence what tells an answer from a near miss, but how many to answer is a choice about the
    # content being calibrated for, not about theirs.
    chosen_on = labels[: len(questions)]
    if any(chosen_on) and not all(chosen_on):
        confidences = confidences[: len(questions)]
    else:
        chosen_on = labels
    best_t, best_score = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        answered = [c >= t for c in confidences]
        rate_answer = np.mean([a for a, lab in zip(answered, chosen_on, strict=True) if lab])
        rate_decline = np.mean([not a for a, lab in zip(answered, chosen_on, strict=True) if not lab])
        score = min(rate_answer, rate_decline) + 1e-3 * (1 - abs(t - 0.5))
        if score > best_score:
            best_t, best_score = float(t), float(score)
    return {
        "candidates": base.candidates,
        "keyword_weight": tuned.keyword_weight,
        "coverage_weight": tuned.coverage_weight,
        "reader_weight": tuned.reader_weight,
        "reader_prior_weight": tuned.reader_prior_weight,
        "weights": {k: round(v, 4) for k, v in weights.items()},
        "bias": round(bias, 4),
        "threshold": round(best_t, 3),
        "related_threshold": round(best_t / 2, 3),
        "calibrated_on": {"questions": len(labels), "answerable": sum(labels), "sets": len(sets)},
    }
