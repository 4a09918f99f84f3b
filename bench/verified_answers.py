"""Verified answers, measured: the matching threshold's pairs, and teaching the demo's wrong answers.

    python bench/verified_answers.py [--civic ../shared/corpora/civicactions-guidebook]

Needs the demo index (`moment index`) and, for the CivicActions check, that corpus's eval index
(`moment eval evalsets/civicactions-guidebook.jsonl --content DIR/corpus` builds it).

1. Threshold pairs (`evalsets/verified-threshold-pairs.jsonl`): each pair's cosine, whether the key-token
   guard lets it through, and so which pairs match at `MATCH_COSINE`.
2. Teaching (`evalsets/verified-paraphrases.jsonl`, written before any run): every answerable demo test
   question whose first passage is wrong is taught with the section of its gold page that holds its answer
   (by the eval's overlap rule); each paraphrase is then asked through the service: answered from the taught
   section or not.
3. Nothing else changes: every other question of the demo eval set (both splits) and of CivicActions is
   matched against the taught pairs: a match would change its answer. Near-misses among them are counted
   apart (they must never be answered from a taught pair).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from assistant.answering.evaluation import content_words, eval_index_dir, load_questions
from assistant.answering.verified import MATCH_COSINE, digit_keys, find_section
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.store import IndexStore

ROOT = Path(__file__).resolve().parent.parent
ASKER = Asker(user_id="U0BENCH01", surface="cli")


def answer_section(version, gold: tuple[str, ...], answer: str) -> tuple[str, tuple[str, ...]]:
    """The gold page's section whose text holds most of the answer's words (the eval's overlap rule)."""
    wanted = set(content_words(answer))
    best = None
    for path in gold:
        doc = version.by_path.get(path)
        if doc is None:
            continue
        chunks = version.chunks(list(range(doc.chunk_start, doc.chunk_start + doc.chunk_count)))
        for heading_path in dict.fromkeys(c.chunk.heading_path for c in chunks.values()):
            section = find_section(version, path, " > ".join(heading_path))
            words = set(content_words(section.text))
            share = len(wanted & words) / max(1, len(wanted))
            if best is None or share > best[0] + 1e-9:
                best = (share, path, heading_path)
    return best[1], best[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--civic", type=Path, default=ROOT.parent.parent / "shared/corpora/civicactions-guidebook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url_override=f"sqlite:///{tmp}/bench.db")
        service = MomentService.from_settings(settings)
        embedder = service.retriever.embedder

        print(f"1. Threshold pairs (MATCH_COSINE {MATCH_COSINE})")
        pairs = [json.loads(line) for line in (ROOT / "evalsets/verified-threshold-pairs.jsonl").open()]
        vectors = embedder.encode([p[k] for p in pairs for k in ("taught", "asked")])
        wrong = 0
        for i, p in enumerate(pairs):
            cosine = float(vectors[2 * i] @ vectors[2 * i + 1])
            guard = digit_keys(p["taught"]) == digit_keys(p["asked"])
            matched = guard and cosine >= MATCH_COSINE
            wrong += matched != p["same"]
            print(
                f"   {'same' if p['same'] else 'diff'} {cosine:.3f} keys {'ok ' if guard else 'DIFF'} "
                f"{'match' if matched else '-    '} {p['taught']!r} / {p['asked']!r}"
            )
        cosine_of = [float(vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(pairs))]
        same = [c for c, p in zip(cosine_of, pairs, strict=True) if p["same"]]
        diff = [
            c
            for c, p in zip(cosine_of, pairs, strict=True)
            if not p["same"] and digit_keys(p["taught"]) == digit_keys(p["asked"])
        ]
        print(
            f"   same question: min {min(same):.3f}; different (keys alike): max {max(diff):.3f}; "
            f"halfway {(min(same) + max(diff)) / 2:.3f}; misjudged pairs at MATCH_COSINE: {wrong}"
        )

        print("2. Teaching the demo test split's wrong first passages")
        version = service.retriever.version()
        questions = load_questions(ROOT / "content/eval/questions.jsonl")
        by_text = {q.question: q for q in questions}
        taught = [json.loads(line) for line in (ROOT / "evalsets/verified-paraphrases.jsonl").open()]
        sections = {}
        for t in taught:
            q = by_text[t["taught"]]
            path, heading_path = answer_section(version, q.gold, q.answer)
            pair = service.asking.teach(q.question, path, " > ".join(heading_path), "U0MENTOR1")
            sections[t["taught"]] = (pair.id, path, heading_path)
        hits = 0
        for t in taught:
            answer = service.asking.ask(t["paraphrase"], ASKER, log_interaction=False)
            pair_id, path, heading_path = sections[t["taught"]]
            ok = answer.verified is not None and answer.verified["id"] == pair_id
            hits += ok
            cosine = answer.verified["cosine"] if answer.verified else None
            if not ok:
                print(f"   not from the taught section: {t['paraphrase']!r} (verified: {cosine})")
        print(f"   paraphrases answered from the taught section: {hits}/{len(taught)} = {hits / len(taught):.3f}")

        print("3. Other questions (would a taught pair answer them?)")
        team = service.workspaces.team(None)
        others = [q for q in questions if q.question not in sections]
        changed, near = [], 0
        qvecs = embedder.encode([q.question for q in others])
        for q, vec in zip(others, qvecs, strict=True):
            match = service.verified.match(team, q.question, vec, version)
            near += q.kind == "near-miss"
            if match is not None:
                changed.append((q, match))
        near_changed = sum(1 for q, _ in changed if q.kind == "near-miss")
        for q, m in changed:
            print(
                f"   CHANGED [{q.split} {q.kind}] {q.question!r} <- #{m.pair.id} {m.pair.question!r} ({m.cosine:.3f})"
            )
        print(
            f"   demo: {len(changed)} of {len(others)} other questions answered from a taught pair "
            f"({near_changed} of {near} near-misses)"
        )
        civic_questions = load_questions(ROOT / "evalsets/civicactions-guidebook.jsonl")
        store = IndexStore(eval_index_dir(settings.home, args.civic / "corpus"))
        cvecs = embedder.encode([q.question for q in civic_questions])
        pairs_now = service.verified.pairs(team)
        taught_vectors = np.asarray([p.embedding for p in pairs_now], dtype=np.float32)
        civic_changed = 0
        for q, vec in zip(civic_questions, cvecs, strict=True):
            cosines = taught_vectors @ vec
            close = [p for p, c in zip(pairs_now, cosines, strict=True) if c >= MATCH_COSINE]
            civic_changed += any(digit_keys(p.question) == digit_keys(q.question) for p in close)
        print(
            f"   CivicActions: {civic_changed} of {len(civic_questions)} questions within {MATCH_COSINE} of a "
            f"taught question with the same keys (index {store.root.name})"
        )


if __name__ == "__main__":
    main()
