"""Measure retrieval on a set of questions with known answer pages, against the plain approaches.

A questions file has one JSON object per line: {"question": str, "gold": [paths relative to the
content root]}; `"gold": []` marks a question the content cannot answer. Optional keys: `split`
("dev" or "test": tune on dev, report test), `kind`, `note`.

Systems compared in one run, on the same index:
- `moment`: the fused retriever with its calibrated answer/decline decision;
- `bm25`: plain keyword search (the same BM25 index, words as typed), documents ranked by their best
  chunk;
- `dense`: the plain vector search most bots do: one vector per chunk, flat search, documents in
  order of their first chunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.questions import prepare
from assistant.retrieval import Retriever


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    gold: tuple[str, ...]
    split: str | None = None
    kind: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


def load_questions(path: Path, split: str | None = None) -> list[EvalQuestion]:
    """Read a questions file; `split` keeps only that split (questions without one are in every split)."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = EvalQuestion(
                str(data["question"]), tuple(data.get("gold") or ()), data.get("split"), data.get("kind")
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a question object ({exc})") from None
        if split is None or item.split in (None, split):
            questions.append(item)
    return questions


@dataclass
class Ranked:
    """One system's ranking for one question."""

    paths: list[str]
    confidence: float | None = None
    answered: bool | None = None
    features: dict | None = None


@dataclass
class SystemReport:
    name: str
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    answered_when_answerable: float | None
    declined_when_unanswerable: float | None
    ranks: list[int | None] = field(default_factory=list)  # rank of the first gold page, 1-based

    def to_dict(self) -> dict:
        return {
            "recall@1": round(self.recall_at_1, 4),
            "recall@5": round(self.recall_at_5, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "answered_when_answerable": _round(self.answered_when_answerable),
            "declined_when_unanswerable": _round(self.declined_when_unanswerable),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def score_system(name: str, questions: list[EvalQuestion], rankings: list[Ranked], k: int = 10) -> SystemReport:
    """Recall@1/5 and MRR@k over answerable questions; answer and decline rates where the system decides."""
    ranks: list[int | None] = []
    for q, r in zip(questions, rankings, strict=True):
        rank = next((i + 1 for i, p in enumerate(r.paths[:k]) if p in q.gold), None) if q.answerable else None
        ranks.append(rank)
    answerable = [i for i, q in enumerate(questions) if q.answerable]
    unanswerable = [i for i, q in enumerate(questions) if not q.answerable]

    def share(ids: list[int], test: Callable[[int], bool]) -> float:
        return sum(1 for i in ids if test(i)) / len(ids) if ids else float("nan")

    decides = all(r.answered is not None for r in rankings)
    return SystemReport(
        name=name,
        recall_at_1=share(answerable, lambda i: ranks[i] == 1),
        recall_at_5=share(answerable, lambda i: ranks[i] is not None and ranks[i] <= 5),
        mrr_at_10=(sum(1 / ranks[i] for i in answerable if ranks[i] and ranks[i] <= 10) / len(answerable))
        if answerable
        else float("nan"),
        answered_when_answerable=share(answerable, lambda i: bool(rankings[i].answered)) if decides else None,
        declined_when_unanswerable=share(unanswerable, lambda i: not rankings[i].answered)
        if decides and unanswerable
        else None,
        ranks=ranks,
    )


def rank_moment(retriever: Retriever, question: str, k: int = 10) -> Ranked:
    prepared = prepare(question)
    if not prepared.searchable:
        return Ranked([], 0.0, False, {})
    result = retriever.search(prepared.text, k=k)
    answered = bool(result.hits) and result.confidence >= retriever.params.threshold
    return Ranked([h.doc.path for h in result.hits], result.confidence, answered, result.features)


def rank_bm25(retriever: Retriever, question: str, k: int = 10) -> Ranked:
    version = retriever.version()
    ids, _ = version.keywords.search(prepare(question).text, 200, fuzzy=False)
    return Ranked(_first_per_document(version, ids, k))


def rank_dense(retriever: Retriever, question: str, k: int = 10) -> Ranked:
    version = retriever.version()
    query = retriever.embedder.encode([prepare(question).text or " "])
    _, ids = version.dense.search(query, min(version.size, 200))
    return Ranked(_first_per_document(version, [int(i) for i in ids[0] if i >= 0], k))


def _first_per_document(version, chunk_ids, k: int) -> list[str]:
    seen: list[str] = []
    for cid in chunk_ids:
        path = version.documents[int(version.chunk_doc[int(cid)])].path
        if path not in seen:
            seen.append(path)
            if len(seen) == k:
                break
    return seen


SYSTEMS: dict[str, Callable[[Retriever, str, int], Ranked]] = {
    "moment": rank_moment,
    "bm25": rank_bm25,
    "dense": rank_dense,
}


@dataclass
class EvalReport:
    questions: list[EvalQuestion]
    systems: dict[str, SystemReport]
    rankings: dict[str, list[Ranked]]

    def to_dict(self) -> dict:
        moment = self.systems.get("moment")
        return {
            "questions": len(self.questions),
            "answerable": sum(q.answerable for q in self.questions),
            "unanswerable": sum(not q.answerable for q in self.questions),
            # The headline figures (Moment's), at the top level for other tools.
            **(moment.to_dict() if moment else {}),
            "systems": {name: report.to_dict() for name, report in self.systems.items()},
            "declined_by_kind": self.declined_by_kind(),
            "per_question": [
                {
                    "question": q.question,
                    "gold": list(q.gold),
                    "split": q.split,
                    **{f"{name}_rank": report.ranks[i] for name, report in self.systems.items()},
                    **(
                        {
                            "answered": self.rankings["moment"][i].answered,
                            "confidence": round(self.rankings["moment"][i].confidence or 0.0, 4),
                            "top": self.rankings["moment"][i].paths[:1],
                        }
                        if "moment" in self.rankings
                        else {}
                    ),
                }
                for i, q in enumerate(self.questions)
            ],
        }

    def declined_by_kind(self) -> dict[str, dict[str, int]]:
        """Moment's declines among unanswerable questions, per `kind` ("near-miss", "off-topic", or
        "unlabelled"): where the decision fails is as telling as how often."""
        out: dict[str, dict[str, int]] = {}
        for q, ranked in zip(self.questions, self.rankings.get("moment", []), strict=False):
            if q.answerable:
                continue
            entry = out.setdefault(q.kind or "unlabelled", {"declined": 0, "questions": 0})
            entry["questions"] += 1
            entry["declined"] += int(not ranked.answered)
        return out

    def table(self) -> str:
        """A Markdown table of every system's figures."""
        lines = [
            "| system | recall@1 | recall@5 | MRR@10 | answers answerable | declines unanswerable |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in self.systems.items():
            lines.append(
                f"| {name} | {r.recall_at_1:.3f} | {r.recall_at_5:.3f} | {r.mrr_at_10:.3f} | "
                f"{_pct(r.answered_when_answerable)} | {_pct(r.declined_when_unanswerable)} |"
            )
        return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def evaluate(retriever: Retriever, questions: list[EvalQuestion], systems: list[str], k: int = 10) -> EvalReport:
    """Run every named system on every question."""
    rankings = {name: [SYSTEMS[name](retriever, q.question, k) for q in questions] for name in systems}
    reports = {name: score_system(name, questions, rankings[name], k) for name in systems}
    return EvalReport(questions, reports, rankings)


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


def calibrate(retriever: Retriever, questions: list[EvalQuestion]) -> dict:
    """Choose fusion weights and the answer/decline model on `questions` (the dev split).

    1. Fusion: the keyword and coverage weights with the best recall@5 + MRR@10 on answerable questions.
    2. Confidence: logistic regression of "has an answer in the content" on the top result's features.
    3. Threshold: the one that maximises the worse of the answer rate (answerable questions) and the
       decline rate (unanswerable ones), so neither is bought with the other.
    """
    from dataclasses import replace

    base = retriever.params
    best = None
    for keyword_weight in KEYWORD_WEIGHTS:
        for coverage_weight in COVERAGE_WEIGHTS:
            trial = Retriever(
                retriever.store,
                retriever.embedder,
                replace(base, keyword_weight=keyword_weight, coverage_weight=coverage_weight),
            )
            report = score_system("trial", questions, [rank_moment(trial, q.question) for q in questions])
            objective = report.recall_at_5 + report.mrr_at_10
            if best is None or objective > best[0] + 1e-9:
                best = (objective, keyword_weight, coverage_weight)
    _, keyword_weight, coverage_weight = best
    tuned = Retriever(
        retriever.store,
        retriever.embedder,
        replace(base, keyword_weight=keyword_weight, coverage_weight=coverage_weight),
    )
    rankings = [rank_moment(tuned, q.question) for q in questions]
    features = [r.features or {} for r in rankings]
    labels = [q.answerable for q in questions]
    weights, bias = fit_confidence(features, labels, FEATURES)
    confidences = [
        1 / (1 + math.exp(-(bias + sum(weights[n] * f.get(n, 0.0) for n in FEATURES)))) if f else 0.0 for f in features
    ]
    best_t, best_score = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        answered = [c >= t for c in confidences]
        rate_answer = np.mean([a for a, lab in zip(answered, labels, strict=True) if lab]) if any(labels) else 1.0
        rate_decline = (
            np.mean([not a for a, lab in zip(answered, labels, strict=True) if not lab]) if not all(labels) else 1.0
        )
        score = min(rate_answer, rate_decline) + 1e-3 * (1 - abs(t - 0.5))
        if score > best_score:
            best_t, best_score = float(t), float(score)
    return {
        "candidates": base.candidates,
        "keyword_weight": keyword_weight,
        "coverage_weight": coverage_weight,
        "weights": {k: round(v, 4) for k, v in weights.items()},
        "bias": round(bias, 4),
        "threshold": round(best_t, 3),
        "related_threshold": round(best_t / 2, 3),
        "calibrated_on": {"questions": len(questions), "answerable": sum(labels)},
    }
