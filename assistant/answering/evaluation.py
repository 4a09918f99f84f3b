"""Measure retrieval on a set of questions with known answer pages, against the plain approaches.

A questions file has one JSON object per line: {"question": str, "gold": [paths relative to the
content root]}; `"gold": []` marks a question the content cannot answer. Optional keys: `split`
("dev" or "test": tune on dev, report test), `kind` ("near-miss", "off-topic", ...), `answer` (or
`answer_text`: the text of the section that answers, for "first passage right"), `note`.

Passages: "first passage right" means the first source is a gold page and the passage shown lies in
the answering section: at least half of the passage's content words (lower-cased words of two
letters or more, stop words left out) occur in the answer's text.

Deciding: beside the answer and decline rates at the calibrated threshold, the AUC of the
confidence (answerable questions against unanswerable ones, and against near-misses alone) and the
share of unanswerable questions declined at the threshold that answers 90% of answerable ones.

Systems compared in one run, on the same index:
- `moment`: the fused retriever and the reader with their calibrated answer/decline decision;
- `moment-reader` / `moment-retrieval`: the same with the reader switched the other way than configured
  (`MOMENT_READER`), so that both are measured in one run;
- `bm25`: plain keyword search (the same BM25 index, words as typed), documents ranked by their best
  chunk;
- `dense`: the plain vector search most bots do: one vector per chunk, flat search, documents in
  order of their first chunk.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answering.outline import page_outline
from assistant.answering.passages import passage_of
from assistant.answering.questions import prepare
from assistant.answering.retrieval import Retriever
from indexer.text import content_words


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    gold: tuple[str, ...]
    split: str | None = None
    kind: str | None = None
    answer: str | None = None
    line: int | None = field(default=None, compare=False)  # where it is in its file, for messages

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
            if not isinstance(data, dict) or not isinstance(data.get("question"), str) or not data["question"].strip():
                raise ValueError('give {"question": "...", "gold": [paths]}')
            gold = data.get("gold") or []
            if not isinstance(gold, list) or not all(isinstance(g, str) and g for g in gold):
                raise ValueError(f'"gold" must be a list of paths, e.g. ["it/vpn-token.md"] (got {json.dumps(gold)})')
            item = EvalQuestion(
                data["question"],
                tuple(gold),
                data.get("split"),
                data.get("kind"),
                data.get("answer") or data.get("answer_text") or None,
                number,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}, line {number}: not a question object ({exc})") from None
        if split is None or item.split in (None, split):
            questions.append(item)
    return questions


def unknown_gold(questions: list[EvalQuestion], paths: set[str], source: Path) -> str | None:
    """What is wrong when some gold paths are no document's (a typo, or another content folder), or None."""
    wrong = [(q.line, g) for q in questions for g in q.gold if g not in paths]
    if not wrong:
        return None
    shown = ", ".join(f"line {line}: {gold}" for line, gold in wrong[:5]) + (" ..." if len(wrong) > 5 else "")
    return (
        f"{source}: {len(wrong)} gold path(s) are no indexed document's ({shown}). Give paths relative to the "
        "content folder, as `moment index` lists them, and the --content they refer to."
    )


def remove_gold_pages(questions: list[EvalQuestion], every: int) -> tuple[list[str], list[EvalQuestion]]:
    """A near-miss set from an answerable one: every `every`-th page (in path order) that is the single
    gold page of some question is removed; questions left without a gold page become unanswerable
    near-misses (`gold: []`, kind "near-miss"), with the related pages still there."""
    from dataclasses import replace

    if every < 1:
        raise ValueError("every must be at least 1")
    singles = sorted({q.gold[0] for q in questions if len(q.gold) == 1})
    removed = singles[every - 1 :: every]
    gone = set(removed)
    out = []
    for q in questions:
        gold = tuple(g for g in q.gold if g not in gone)
        if q.gold and not gold:
            out.append(replace(q, gold=(), kind="near-miss", answer=None))
        else:
            out.append(replace(q, gold=gold))
    return removed, out


@dataclass
class Ranked:
    """One system's ranking for one question."""

    paths: list[str]
    confidence: float | None = None
    answered: bool | None = None
    features: dict | None = None
    passage: str | None = None  # the first source's passage, as shown
    outline: list[str] | None = None  # "More on this page": the first page's other passages (Moment only)
    latency_ms: float | None = None  # Moment's: the whole answer, generation included
    generation: dict | None = None  # with an LLM: why shown or not, how long, and the generated answer


@dataclass
class SystemReport:
    name: str
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    answered_when_answerable: float | None
    declined_when_unanswerable: float | None
    ranks: list[int | None] = field(default_factory=list)  # rank of the first gold page, 1-based
    first_passage_right: float | None = None
    passage_questions: int = 0  # answerable questions with an answer text
    passage_right: list[bool | None] = field(default_factory=list)
    # The passage shown or one of "More on this page" in the answering section (systems with an outline).
    within_one_click: float | None = None
    one_click_right: list[bool | None] = field(default_factory=list)
    auc: float | None = None  # confidence, answerable vs unanswerable
    near_miss_auc: float | None = None  # confidence, answerable vs near-misses
    declined_at_90: float | None = None  # unanswerable declined when 90% of answerable are answered
    near_miss_declined_at_90: float | None = None

    def to_dict(self) -> dict:
        return {
            "recall@1": round(self.recall_at_1, 4),
            "recall@5": round(self.recall_at_5, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "first_passage_right": _round(self.first_passage_right),
            "within_one_click": _round(self.within_one_click),
            "passage_questions": self.passage_questions,
            "answered_when_answerable": _round(self.answered_when_answerable),
            "declined_when_unanswerable": _round(self.declined_when_unanswerable),
            "auc": _round(self.auc),
            "near_miss_auc": _round(self.near_miss_auc),
            "declined_at_90_answered": _round(self.declined_at_90),
            "near_miss_declined_at_90_answered": _round(self.near_miss_declined_at_90),
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
    passage_right: list[bool | None] = [
        (r.paths[:1] != [] and r.paths[0] in q.gold and passage_inside(r.passage or "", q.answer))
        if q.answerable and q.answer
        else None
        for q, r in zip(questions, rankings, strict=True)
    ]
    judged = [x for x in passage_right if x is not None]
    one_click: list[bool | None] = [None] * len(questions)
    if any(r.outline is not None for r in rankings):
        one_click = [
            None
            if right is None
            else right or (r.paths[:1] != [] and r.paths[0] in q.gold and _one_inside(r.outline or [], q.answer))
            for q, r, right in zip(questions, rankings, passage_right, strict=True)
        ]
    clicked = [x for x in one_click if x is not None]
    deciding: dict = {}
    if decides and answerable and unanswerable:
        pos = [rankings[i].confidence or 0.0 for i in answerable]
        neg = [rankings[i].confidence or 0.0 for i in unanswerable]
        near = [rankings[i].confidence or 0.0 for i in unanswerable if questions[i].kind == "near-miss"]
        deciding = {
            "auc": auc(pos, neg),
            "declined_at_90": declined_at(pos, neg, 0.9),
            "near_miss_auc": auc(pos, near) if near else None,
            "near_miss_declined_at_90": declined_at(pos, near, 0.9) if near else None,
        }
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
        first_passage_right=sum(judged) / len(judged) if judged else None,
        passage_questions=len(judged),
        passage_right=passage_right,
        within_one_click=sum(clicked) / len(clicked) if clicked else None,
        one_click_right=one_click,
        **deciding,
    )


def eval_index_dir(home: Path, content_dir: Path) -> Path:
    """Where `moment eval --content DIR` keeps DIR's index: named after the folder and a hash of its full
    path, so two content folders with the same name (both called `corpus`) never share one."""
    import hashlib

    resolved = Path(content_dir).resolve()
    return Path(home) / "eval-indexes" / f"{resolved.name}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"


def _one_inside(passages: list[str], answer: str | None) -> bool:
    return any(passage_inside(p, answer) for p in passages)


def passage_inside(passage: str, answer: str | None, share: float = 0.5) -> bool:
    """True when at least `share` of the passage's content words occur in the answering section."""
    if not answer:
        return False
    words = content_words(passage)
    if not words:
        return False
    known = set(content_words(answer))
    return sum(w in known for w in words) >= share * len(words)


def auc(positive: list[float], negative: list[float]) -> float | None:
    """The probability that a random positive scores above a random negative (ties count half)."""
    if not positive or not negative:
        return None
    pos = np.asarray(positive)[:, None]
    neg = np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def declined_at(positive: list[float], negative: list[float], answered: float = 0.9) -> float | None:
    """The share of `negative` declined by the threshold that answers `answered` of `positive`."""
    if not positive or not negative:
        return None
    # The highest threshold that still answers at least `answered` of the positives.
    ranked = sorted(positive)
    threshold = ranked[min(len(ranked) - 1, math.floor((1 - answered) * len(ranked) + 1e-9))]
    return float(np.mean(np.asarray(negative) < threshold))


def rank_moment(retriever: Retriever, question: str, k: int = 10, generator=None) -> Ranked:
    """Moment as the asker gets it: the same search and the same passage as `Asking.ask`, and with
    `generator` (`assistant.answering.generation`) the generated answer for an answered question."""
    started = time.perf_counter()
    prepared = prepare(question)
    if not prepared.searchable:
        return Ranked([], 0.0, False, {}, outline=[])
    result = retriever.search(prepared.text, k=k)
    answered = bool(result.hits) and result.confidence >= retriever.params.threshold
    passage, outline = None, []
    generation = None
    if result.hits:
        keywords = retriever.version().keywords
        passage = passage_of(result.hits[0], result.query_terms, keywords.passage_terms)
        outline = [e.snippet for e in page_outline(result, retriever.version(), keywords.passage_terms)]
        if generator is not None and answered:
            generation = _generation(generator, prepared.text, result, retriever.version(), keywords.passage_terms)
    latency = (time.perf_counter() - started) * 1000
    ranked = [h.doc.path for h in result.hits]
    return Ranked(ranked, result.confidence, answered, result.features, passage, outline, latency, generation)


def _generation(generator, question: str, result, version, term_ids_of) -> dict:
    from assistant.answering.answers import source_of
    from assistant.answering.generation import generate_for

    outcome = generate_for(
        generator,
        question,
        result,
        version=version,
        term_ids_of=term_ids_of,
        source_of=lambda hit: source_of(hit, result, term_ids_of=term_ids_of),
    )
    generated = outcome.generated
    return {
        "reason": outcome.reason,
        "ms": round(outcome.elapsed_ms, 1),
        "generated": {**generated.to_dict(), "passage_text": generated.passage_text} if generated else None,
    }


def rank_bm25(retriever: Retriever, question: str, k: int = 10) -> Ranked:
    version = retriever.version()
    ids, _ = version.keywords.search(prepare(question).text, 200, fuzzy=False)
    return _first_per_document(version, ids, k)


def rank_dense(retriever: Retriever, question: str, k: int = 10) -> Ranked:
    version = retriever.version()
    query = retriever.embedder.encode([prepare(question).text or " "])
    _, ids = version.dense.search(query, min(version.size, 200))
    return _first_per_document(version, [int(i) for i in ids[0] if i >= 0], k)


def _first_per_document(version, chunk_ids, k: int) -> Ranked:
    """Documents in order of their first chunk; the passage is the first document's best chunk."""
    seen: list[str] = []
    first_chunk = None
    for cid in chunk_ids:
        path = version.documents[int(version.chunk_doc[int(cid)])].path
        if path not in seen:
            seen.append(path)
            first_chunk = int(cid) if first_chunk is None else first_chunk
            if len(seen) == k:
                break
    passage = version.chunks([first_chunk])[first_chunk].chunk.text if first_chunk is not None else None
    return Ranked(seen, passage=passage)


SYSTEMS: dict[str, Callable[[Retriever, str, int], Ranked]] = {
    "moment": rank_moment,
    "moment-retrieval": rank_moment,  # run on a retriever without the reader
    "moment-reader": rank_moment,  # run on a retriever with the reader
    "bm25": rank_bm25,
    "dense": rank_dense,
}


@dataclass
class EvalReport:
    questions: list[EvalQuestion]
    systems: dict[str, SystemReport]
    rankings: dict[str, list[Ranked]]

    def generation_summary(self) -> dict | None:
        """With an LLM: how often a generated answer was shown (its quotes verified), why not otherwise, how
        often its passage lies in the answering section (the overlap rule, on its gold page), and the time."""
        ranked = self.rankings.get("moment", [])
        tried = [(q, r) for q, r in zip(self.questions, ranked, strict=False) if r.generation is not None]
        if not tried:
            return None
        reasons: dict[str, int] = {}
        for _, r in tried:
            reasons[r.generation["reason"]] = reasons.get(r.generation["reason"], 0) + 1
        shown = [(q, r.generation["generated"]) for q, r in tried if r.generation["generated"]]
        judged = [generated_right(q, g) for q, g in shown if q.answer]
        # What the asker reads first, over every answered question with an answer text: the generated
        # answer's passage where one was shown, else the extractive passage.
        first = self.systems["moment"].passage_right
        read_first = [
            generated_right(q, r.generation["generated"])
            if r.generation and r.generation["generated"]
            else bool(first[i])
            for i, (q, r) in enumerate(zip(self.questions, ranked, strict=False))
            if q.answer and q.answerable and r.answered
        ]
        extractive = [
            bool(first[i])
            for i, (q, r) in enumerate(zip(self.questions, ranked, strict=False))
            if q.answer and q.answerable and r.answered
        ]
        generation_ms = [r.generation["ms"] for _, r in tried]
        return {
            "answered": len(tried),
            "shown": len(shown),
            "shown_share": round(len(shown) / len(tried), 4),
            "reasons": dict(sorted(reasons.items())),
            "passage_questions": len(judged),
            "passage_right": _round(sum(judged) / len(judged)) if judged else None,
            "answered_passage_questions": len(read_first),
            "read_first_right": _round(sum(read_first) / len(read_first)) if read_first else None,
            "extractive_right": _round(sum(extractive) / len(extractive)) if extractive else None,
            "generation_ms": percentiles(generation_ms),
        }

    def to_dict(self) -> dict:
        moment = self.systems.get("moment")
        latencies = [r.latency_ms for r in self.rankings.get("moment", []) if r.latency_ms is not None]
        return {
            "questions": len(self.questions),
            "answerable": sum(q.answerable for q in self.questions),
            "unanswerable": sum(not q.answerable for q in self.questions),
            # The headline figures (Moment's), at the top level for other tools.
            **(moment.to_dict() if moment else {}),
            "systems": {name: report.to_dict() for name, report in self.systems.items()},
            "declined_by_kind": self.declined_by_kind(),
            "passage_against": self.passage_against(),
            "latency_ms": percentiles(latencies),
            "generation": self.generation_summary(),
            "per_question": [
                {
                    "question": q.question,
                    "gold": list(q.gold),
                    "split": q.split,
                    **{f"{name}_rank": report.ranks[i] for name, report in self.systems.items()},
                    # Each system's first passage, judged: which questions the reader wins and loses.
                    **{f"{name}_passage_right": report.passage_right[i] for name, report in self.systems.items()},
                    **(
                        {
                            "answered": self.rankings["moment"][i].answered,
                            "confidence": round(self.rankings["moment"][i].confidence or 0.0, 4),
                            "top": self.rankings["moment"][i].paths[:1],
                            "passage_right": self.systems["moment"].passage_right[i],
                            "within_one_click": self.systems["moment"].one_click_right[i],
                            "outline": self.rankings["moment"][i].outline,
                            "passage": self.rankings["moment"][i].passage,
                            "latency_ms": _round(self.rankings["moment"][i].latency_ms),
                            "generation": self.rankings["moment"][i].generation,
                            "generated_passage_right": generated_right(
                                q, self.rankings["moment"][i].generation["generated"]
                            )
                            if q.answer
                            and self.rankings["moment"][i].generation
                            and self.rankings["moment"][i].generation["generated"]
                            else None,
                        }
                        if "moment" in self.rankings
                        else {}
                    ),
                }
                for i, q in enumerate(self.questions)
            ],
        }

    def passage_against(self) -> dict[str, dict]:
        """Moment's first passage against each other system's, question by question (`paired`): on sets of
        a hundred questions a lead of two or three is often chance, and this says how often."""
        moment = self.systems.get("moment")
        if moment is None:
            return {}
        return {
            name: paired(moment.passage_right, report.passage_right)
            for name, report in self.systems.items()
            if name != "moment"
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
            "| system | recall@1 | recall@5 | MRR@10 | first passage right | within one click | answers answerable "
            "| declines unanswerable | AUC (near-miss AUC) | declined at 90% answered (near-misses) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in self.systems.items():
            near_auc = f" ({_num(r.near_miss_auc)})" if r.near_miss_auc is not None else ""
            near_declined = f" ({_pct(r.near_miss_declined_at_90)})" if r.near_miss_declined_at_90 is not None else ""
            lines.append(
                f"| {name} | {r.recall_at_1:.3f} | {r.recall_at_5:.3f} | {r.mrr_at_10:.3f} | "
                f"{_num(r.first_passage_right)} | {_num(r.within_one_click)} | "
                f"{_pct(r.answered_when_answerable)} | {_pct(r.declined_when_unanswerable)} | "
                f"{_num(r.auc)}{near_auc} | {_pct(r.declined_at_90)}{near_declined} |"
            )
        return "\n".join(lines)


def generated_right(q: EvalQuestion, generated: dict) -> bool:
    """A generated answer's passage is on a gold page and lies in the answering section (the overlap rule)."""
    return generated["path"] in q.gold and passage_inside(generated["passage_text"], q.answer)


def percentiles(values: list[float]) -> dict | None:
    """Median and 95th percentile, ms."""
    if not values:
        return None
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "n": len(values),
    }


def paired(a: list[bool | None], b: list[bool | None]) -> dict:
    """Two systems' verdicts on the same questions (None: not judged): how many each gets right alone, and
    the exact two-sided McNemar p-value (a binomial test on the questions they disagree on): the chance of a
    split at least this uneven if neither were better."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n if n else 0.5
    return {
        "questions": len(pairs),
        "only_first": only_a,
        "only_second": only_b,
        "both": sum(1 for x, y in pairs if x and y),
        "neither": sum(1 for x, y in pairs if not x and not y),
        "p": round(min(1.0, 2 * tail), 4),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def evaluate(
    retriever: Retriever,
    questions: list[EvalQuestion],
    systems: list[str],
    k: int = 10,
    retrievers: dict[str, Retriever] | None = None,
    generator=None,
) -> EvalReport:
    """Run every named system on every question (`retrievers` gives a system its own retriever, e.g.
    `moment-retrieval` one without the reader; `generator`, generated answers for `moment`)."""
    retrievers = retrievers or {}

    def run(name: str, q: EvalQuestion) -> Ranked:
        if name == "moment" and generator is not None:
            return rank_moment(retrievers.get(name, retriever), q.question, k, generator)
        return SYSTEMS[name](retrievers.get(name, retriever), q.question, k)

    rankings = {name: [run(name, q) for q in questions] for name in systems}
    reports = {name: score_system(name, questions, rankings[name], k) for name in systems}
    return EvalReport(questions, reports, rankings)
