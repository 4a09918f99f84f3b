"""Where passage choice goes wrong: for each question whose first page is right, how would other ways of
choosing the passage within that page have done? Run it on the held-out development set
(scripts/heldout_devset.py), never to tune on a test set.

    python bench/reader_passages.py .moment/heldout-dev/questions.jsonl --content .moment/heldout-dev/corpus

Prints the share of questions (first page right) whose shown passage lies in the answering section, for:
the shipped pipeline, an oracle over the page's windows, the reader's best window, the prior's best window,
and combinations; with and without focusing.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

os.environ.setdefault("MOMENT_READER", "on")

from assistant.answering import evaluation
from assistant.answering.questions import prepare
from assistant.answering.reader import reader_for
from assistant.answering.reader.reading import _render, shown_text, widen
from assistant.answering.retrieval import Retriever
from assistant.settings import load_settings
from indexer.embedding import load_embedder
from indexer.store import IndexStore


def render(title, chunk, text, context, own_heading):
    if context == "full":  # as the reader reads it in use
        return _render(title, chunk, text, own_heading)
    if context == "parents":
        return "\n".join((" > ".join((title, *chunk.heading_path[:-1])), text))
    if context == "title":
        return f"{title}\n{text}"
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("questions", type=Path)
    ap.add_argument("--content", type=Path, help="the folder `moment eval --content` indexed (default: the main index)")
    ap.add_argument("--split", choices=["dev", "test"], help="only this split (use dev: never choose on a test set)")
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--dense", action="store_true", help="also the embedding model's cosine per window")
    ap.add_argument("--context", choices=["full", "parents", "title", "none"], default="full")
    args = ap.parse_args()
    settings = load_settings()
    questions = [q for q in evaluation.load_questions(args.questions, args.split) if q.answerable]
    store = IndexStore(evaluation.eval_index_dir(settings.home, args.content) if args.content else settings.index_dir)
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache, spinning=False)
    preader, _ = reader_for(settings, force=True)
    retriever = Retriever(store, embedder, reader=preader)
    version = retriever.version()
    keywords = version.keywords
    tally: dict[str, list[bool]] = {}
    sizes = []

    def note(name: str, ok: bool) -> None:
        tally.setdefault(name, []).append(ok)

    for q in questions:
        result = retriever.search(prepare(q.question).text, k=10)
        if not result.hits or result.hits[0].doc.path not in q.gold:
            continue
        hit = result.hits[0]
        note("pipeline", evaluation.passage_inside(hit.passage or "", q.answer))
        # The same windows and priors as the reader's, over the first page alone.
        wins = preader.candidates([hit], version, result.query_vector, result.query_terms, keywords.passage_terms)
        sizes.append(len(wins))
        texts = [render(hit.doc.meta.title, w.chunk, w.text, args.context, preader.own_heading) for w in wins]
        logits = preader.reader.score(q.question, texts)
        priors = np.array([w.prior for w in wins])
        shown = [shown_text(w.units, *widen(w.units, w.start, w.end)) for w in wins]
        inside = [evaluation.passage_inside(s, q.answer) for s in shown]
        note("oracle-window", any(inside))
        note("reader-best", inside[int(np.argmax(logits))])
        if args.show and any(inside) and not inside[int(np.argmax(logits))]:
            best = int(np.argmax(logits))
            good = max((i for i in range(len(wins)) if inside[i]), key=lambda i: logits[i])
            rank = int((logits > logits[good]).sum()) + 1
            print(f"\nQ: {q.question} | windows {len(wins)} | rank of the best right window {rank}")
            print("  ANSWER:", q.answer[:300].replace("\n", " / "))
            print(f"  PICKED ({logits[best]:.2f}):", texts[best][:300].replace("\n", " / "))
            print(f"  RIGHT  ({logits[good]:.2f}):", texts[good][:300].replace("\n", " / "))
        note("prior-best", inside[int(np.argmax(priors))])
        if args.dense:
            dense = embedder.encode(texts) @ result.query_vector
            note("dense-window-best", inside[int(np.argmax(dense))])
            z = (logits - logits.mean()) / (logits.std() + 1e-6)
            zd = (dense - dense.mean()) / (dense.std() + 1e-6)
            for a in (0.5, 1.0, 2.0):
                note(f"reader+{a}dense(z)", inside[int(np.argmax(z + a * zd))])
                note(f"reader+{a}dense(z)+prior", inside[int(np.argmax(z + a * zd + 5 * priors))])
        for pw in (5, 10, 20, 40):
            note(f"reader+{pw}prior", inside[int(np.argmax(logits + pw * priors))])
        note("first-window", inside[0])
        picks = [("reader", int(np.argmax(logits))), ("reader+10prior", int(np.argmax(logits + 10 * priors)))]
        if args.dense:
            picks += [("dense", int(np.argmax(dense))), ("reader+1.0dense(z)", int(np.argmax(z + zd)))]
        for name, pick in picks:
            focused = preader.focus(q.question, hit.doc.meta.title, wins[pick])
            note(f"focused {name}", evaluation.passage_inside(focused, q.answer))
    n = None
    for name, oks in tally.items():
        n = len(oks)
        print(f"{name:18s} {sum(oks) / len(oks):.3f}  ({sum(oks)}/{len(oks)})")
    print(f"questions with the first page right: {n}; windows per page median {statistics.median(sizes)}")


if __name__ == "__main__":
    main()
