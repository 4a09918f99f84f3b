"""Training the reader: the groups it learns from, and the whole path from corpora to a loadable
int8 ONNX reader (a tiny run: one layer, a few steps)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lab.training_data import (
    build_groups,
    build_window_groups,
    cut_words,
    mine_negatives,
    strip_question_headings,
)

PAGE = """\
# Expenses at Example Co

Everything about spending the company's money.

## Travel

### How do I book a train?

Book every train through TravelDesk at least 7 days ahead; first class is never refunded.

### Can I take a taxi?

Taxis are refunded only after 22:00 or when no bus runs; keep the receipt and add it within 30 days.

## Meals

Meals are capped at 15 pounds a day when you are away overnight, drinks included.
"""

OTHER = """\
# Laptops

## Lost laptop

Report a lost laptop to the service desk within one hour so it can be wiped remotely.

## New laptop

New starters get a laptop on their first morning from the IT bar on floor 2.
"""


def _source(root: Path, name: str) -> Path:
    source = root / name
    (source / "corpus").mkdir(parents=True)
    (source / "corpus" / "expenses.md").write_text(PAGE)
    (source / "corpus" / "laptops.md").write_text(OTHER)
    questions = []
    for heading in ("### How do I book a train?", "### Can I take a taxi?"):
        start = PAGE.index(heading)
        body_start = start + len(heading) + 2
        end = PAGE.index("\n\n#", body_start) if "\n\n#" in PAGE[body_start:] else len(PAGE)
        questions.append(
            {
                "question": heading.lstrip("# "),
                "page": "expenses.md",
                "origin": "heading",
                "heading_level": 3,
                "source_heading": heading.lstrip("# "),
                "heading_path": ["Expenses at Example Co", "Travel"],
                "heading_start": start,
                "answer_start": body_start,
                "answer_text": PAGE[body_start:end].strip(),
            }
        )
    questions.append(
        {
            "question": "What do I do if I lose my laptop?",
            "page": "laptops.md",
            "origin": "heading",
            "heading_level": 2,
            "source_heading": "Lost laptop",
            "heading_path": ["Laptops"],
            "heading_start": OTHER.index("## Lost laptop"),
            "answer_start": OTHER.index("Report a lost"),
            "answer_text": "Report a lost laptop to the service desk within one hour so it can be wiped remotely.",
        }
    )
    (source / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return source


def _source_questions() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return (_source(Path(tmp), "h") / "questions.jsonl").read_text().splitlines()


def test_groups_pair_each_question_with_its_section_and_hard_negatives(tmp_path):
    _source(tmp_path, "handbook")
    groups = build_groups(tmp_path, None, negatives=3)
    assert len(groups) == 3
    train, taxi, laptop = groups
    assert train.question == "How do I book a train?"
    # The positive: the answer under the parents' path, without the question heading itself.
    assert (
        train.positive == "Expenses at Example Co > Travel\nBook every train through TravelDesk at least 7 days ahead; "
        "first class is never refunded."
    )
    assert "How do I book a train" not in train.positive
    # First the page read from the top with the answer cut out (the near-miss a reader meets on every
    # page: here it starts with the sibling section), then other parts of the page, then other pages.
    assert train.kinds[0] == "page-without-answer"
    assert train.negatives[0].startswith("Expenses at Example Co\nTaxis are refunded")
    assert "Meals are capped" in train.negatives[0] and "Can I take a taxi" not in train.negatives[0]
    assert train.kinds[1:] == ["same-page", "other-page"]
    assert laptop.kinds[0] == "sibling" and "New starters get a laptop" in laptop.negatives[0]
    assert all("Book every train" not in n for n in train.negatives)
    assert "other-page" in laptop.kinds or "same-page" in laptop.kinds
    assert all("Report a lost laptop" not in n for n in laptop.negatives)
    assert taxi.negatives and all(n != taxi.positive for n in taxi.negatives)


def test_mined_negatives_are_the_pool_passages_a_reader_scores_highest(tmp_path):
    _source(tmp_path, "handbook")
    groups = build_groups(tmp_path, None, negatives=3)
    pool = build_groups(tmp_path, None, negatives=6, wide=True)
    # The wide pool takes every other section of the page, not only some of it.
    laptop_pool = next(g for g in pool if g.question.startswith("What do I do"))
    assert any("New starters" in n for n in laptop_pool.negatives)
    train_pool = next(g for g in pool if g.question == "How do I book a train?")
    assert sum(k in ("sibling", "same-page", "page-without-answer") for k in train_pool.kinds) >= 2

    def score(question: str, passages: list[str]) -> list[float]:  # a stand-in reader that likes laptops
        return [float(p.count("laptop")) - 0.01 * i for i, p in enumerate(passages)]

    mined = mine_negatives(groups, pool, score, negatives=2)
    assert [g.question for g in mined] == [g.question for g in groups]
    train = mined[0]
    # The page without its answer stays first; the rest are the pool's highest scored.
    assert train.kinds[0] == "page-without-answer" and len(train.negatives) == 2
    assert "laptop" in train.negatives[1]
    # A group the pool lacks is kept as it was.
    assert mine_negatives(groups, pool[:1], score, negatives=2)[1:] == groups[1:]
    # Denoised: a candidate scored above the answer itself (likely another answer) is left out.
    plain = mine_negatives(groups[:1], pool, score, negatives=4)[0]
    clean = mine_negatives(groups[:1], pool, score, negatives=4, denoise=True)[0]
    positive_score = score("", [plain.positive])[0]
    assert any(score("", [n])[0] > positive_score for n in plain.negatives)
    assert all(
        score("", [n])[0] <= positive_score
        for n, k in zip(clean.negatives, clean.kinds, strict=True)
        if k != "page-without-answer"
    )


def test_question_headings_are_taken_out_of_the_page_as_the_test_sets_do():
    questions = [json.loads(line) for line in _source_questions()]
    page = strip_question_headings(PAGE, [q for q in questions if q["page"] == "expenses.md"])
    assert "How do I book a train?" not in page and "Can I take a taxi?" not in page
    assert "## Travel" in page and "Book every train" in page and "Taxis are refunded" in page


def test_window_groups_start_where_the_answer_starts_and_take_neighbours_as_negatives(tmp_path):
    _source(tmp_path, "handbook")
    groups = {g.question: g for g in build_window_groups(tmp_path, None)}
    train, taxi = groups["How do I book a train?"], groups["Can I take a taxi?"]
    # The heading is gone: the answer is read under its parent, from its first line (a short answer
    # still answers: the next answer's line in the same window is cut off when the passage is shown).
    assert train.positive.startswith("Expenses at Example Co > Travel\nBook every train")
    assert taxi.positive == (
        "Expenses at Example Co > Travel\nTaxis are refunded only after 22:00 or when no bus runs; keep the "
        "receipt and add it within 30 days."
    )
    # The nearest window that starts before the answer and is less than half inside it is the first
    # negative (here the page's introduction: the train answer's window is half taxi, so neither).
    assert taxi.kinds[0] == "before-answer" and taxi.negatives[0].split("\n")[1].startswith("Everything about")
    assert all(not n.split("\n")[1].startswith("Book every train") for n in train.negatives)
    assert all(not n.split("\n")[1].startswith("Taxis are refunded") for n in taxi.negatives)


def test_mixed_training_tells_its_two_kinds_of_group_apart(tmp_path):
    from lab.train import group_task

    _source(tmp_path, "handbook")
    sections = build_groups(tmp_path, None)
    windows = build_window_groups(tmp_path, None, sections=sections)
    assert sections and windows
    assert {group_task(g) for g in sections} == {"sections"} and {group_task(g) for g in windows} == {"windows"}
    # The window groups take their other-page negatives from the section groups they are given.
    given = [g for g in sections if "other-page" in g.kinds]
    for g in given:
        g.negatives = [
            n if k != "other-page" else "Elsewhere\nA passage from another page."
            for n, k in zip(g.negatives, g.kinds, strict=True)
        ]
    again = build_window_groups(tmp_path, None, sections=sections)
    far = [n for g in again for n, k in zip(g.negatives, g.kinds, strict=True) if k == "other-page"]
    assert far and all(n == "Elsewhere\nA passage from another page." for n in far)


OFFICE = """\
# Working at the office

## Overview

The office is open to everyone on weekdays, and this page says how to use its rooms, desks and kitchen well.

## Meeting rooms

Rooms are booked in the calendar by adding the room as a guest; a room not used within ten minutes of the
start is released for others, and rooms for more than eight people need a facilities request first.

## Parking

There are twelve spaces behind the building, shared on a first come basis, with two kept for disabled drivers.

## How do I book a desk?

Desks are booked in the desk app up to two weeks ahead, one day at a time, and released by noon if unused
so that visitors and late planners can find somewhere to work.

## Quiet hours

Calls in the booths only.
"""


def test_headings_no_question_was_made_of_become_queries(tmp_path):
    from lab.training_data import heading_queries

    for name in ("handbook", "turing-reg-handbook"):  # the second is a validation source
        source = tmp_path / name
        (source / "corpus").mkdir(parents=True)
        (source / "corpus" / "office.md").write_text(OFFICE)
        asked = {
            "question": "How do I book a desk?",
            "page": "office.md",
            "origin": "heading",
            "heading_level": 2,
            "source_heading": "How do I book a desk?",
            "heading_path": ["Working at the office"],
            "heading_start": OFFICE.index("## How do I book a desk?"),
            "answer_start": OFFICE.index("Desks are booked"),
            "answer_text": OFFICE[OFFICE.index("Desks are booked") : OFFICE.index("## Quiet")].strip(),
        }
        (source / "questions.jsonl").write_text(json.dumps(asked) + "\n")
    # Not the generic "Overview", not "Parking" (one word), not the asked question's heading, not
    # "Quiet hours" (a section too short to answer anything).
    rows = heading_queries(tmp_path / "handbook")
    assert [r["question"] for r in rows] == ["Meeting rooms"]
    assert rows[0]["answer_text"].startswith("Rooms are booked in the calendar")

    groups = build_groups(tmp_path, None, negatives=3, headings=10)
    made = [g for g in groups if g.question == "Meeting rooms"]
    assert len(made) == 1 and made[0].source == "handbook"  # none from the validation source
    rooms = made[0]
    assert rooms.positive.startswith("Working at the office\nRooms are booked")
    assert "Meeting rooms" not in rooms.positive
    assert rooms.negatives and all("Rooms are booked" not in n for n in rooms.negatives)
    assert len([g for g in groups if g.question == "How do I book a desk?"]) == 2
    assert not [g for g in build_groups(tmp_path, None, negatives=3) if g.question == "Meeting rooms"]


def test_passages_keep_their_own_heading_unless_a_query_was_made_of_it(tmp_path):
    """With --own-headings a passage is read under the heading it sits under in use: its own, or for a
    section whose heading is an author's question (taken out in the test sets) the heading before it; a
    derived question's heading ("Meeting rooms" for "How do I book a meeting room?") stays, a clue but
    not the question."""
    source = tmp_path / "handbook"
    (source / "corpus").mkdir(parents=True)
    (source / "corpus" / "office.md").write_text(OFFICE)
    rows = [
        {
            "question": "How do I book a meeting room?",
            "kind": "derived",
            "source_heading": "Meeting rooms",
            "answer_text": OFFICE[OFFICE.index("Rooms are booked") : OFFICE.index("## Parking")].strip(),
        },
        {
            "question": "How do I book a desk?",
            "kind": "author",
            "source_heading": "How do I book a desk?",
            "answer_text": OFFICE[OFFICE.index("Desks are booked") : OFFICE.index("## Quiet")].strip(),
        },
    ]
    for row in rows:
        row.update(page="office.md", origin="heading", heading_level=2, heading_path=["Working at the office"])
    (source / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    rooms, desk = build_groups(tmp_path, None, negatives=4, own_headings=1.0)
    assert rooms.positive.startswith("Working at the office > Meeting rooms\nRooms are booked")
    # Never the question: the desk answer is read where it lands once its heading is taken out (under
    # Parking), as a positive and as a negative alike.
    assert desk.positive.startswith("Working at the office > Parking\nDesks are booked")
    assert "Working at the office > Parking\nDesks are booked" in " ".join(rooms.negatives)
    assert "Working at the office > Parking\nThere are twelve spaces" in " ".join(rooms.negatives + desk.negatives)
    assert not any("How do I book a desk" in n for n in rooms.negatives + desk.negatives)
    plain = build_groups(tmp_path, None, negatives=4)
    assert not any(" > " in text for g in plain for text in [g.positive, *g.negatives])


def test_passages_are_cut_to_the_training_size():
    text = "\n".join(textwrap.wrap("word " * 300, 60))
    assert len(cut_words(text, 110).split()) == 110
    assert cut_words("one two\nthree", 2) == "one two"


def test_groups_can_be_made_of_shorter_passages(tmp_path):
    _source(tmp_path, "handbook")
    short = build_groups(tmp_path, None, negatives=3, words=9)
    full = build_groups(tmp_path, None, negatives=3)
    # Each passage's text (after its "title > path" line) is cut to the words asked for.
    assert all(len(g.positive.split("\n", 1)[1].split()) <= 9 for g in short)
    assert all(len(n.split("\n", 1)[1].split()) <= 9 for g in short for n in g.negatives)
    assert any(len(g.positive.split("\n", 1)[1].split()) > 9 for g in full)


@pytest.mark.slow
def test_training_exports_a_reader_that_loads_and_scores(tmp_path):
    from assistant.answering.reader.model import Reader
    from lab.train import TrainConfig, train
    from tests.conftest import MODEL_CACHE

    data = tmp_path / "data"
    for name in ("handbook", "carpentries-handbook"):  # the second is held out for validation
        _source(data, name)
    out = tmp_path / "reader"
    config = TrainConfig(
        layers=1, max_length=64, epochs=1, minutes=2, groups_per_step=2, group_negatives=3, eval_every=1
    )
    record = train(data, out, tmp_path / "work", config, MODEL_CACHE)
    assert record["training_groups"] == 3 and record["validation_groups"] == 3
    assert record["steps"] == 2 and 0.0 <= record["best"]["accuracy"] <= 1.0
    assert {p.name for p in out.iterdir()} == {"reader.onnx", "tokenizer.json", "reader.json"}
    reader = Reader(out)
    assert reader.max_length == 64 and reader.record["config"]["layers"] == 1
    assert reader.score("how do I book a train", ["Book through TravelDesk.", "Laptops"]).shape == (2,)
    # What ships is measured: the int8 reader's own validation figures are in its record and its description.
    shipped = reader.record["shipped"]
    assert shipped == record["shipped"] and 0.0 <= shipped["accuracy"] <= 1.0
    assert f"validation accuracy {shipped['accuracy']:.2f}" in reader.describe()


@pytest.mark.slow
def test_embedder_training_writes_a_model_the_index_can_use(tmp_path):
    from indexer.embedding import load_embedder, prepare_onnx
    from lab.train_embedder import EmbedderConfig, train_embedder
    from tests.conftest import MODEL_CACHE

    data = tmp_path / "data"
    for name in ("handbook", "carpentries-handbook"):  # the second is held out for validation
        _source(data, name)
    out = tmp_path / "embedder"
    config = EmbedderConfig(batch=2, epochs=1, minutes=2, max_length=64, eval_every=1, lr=1e-4)
    record = train_embedder(data, out, tmp_path / "work", config, MODEL_CACHE)
    assert record["training_groups"] == 3 and record["validation_groups"] == 3
    assert record["steps"] == 2 and [h["step"] for h in record["history"]] == [1, 2]
    assert 0.0 <= record["final"]["accuracy"] <= 1.0 and record["baseline"]["accuracy"] >= 0.0
    assert json.loads((out / "training.json").read_text())["steps"] == 2
    # It learned from the groups it was measured with: every passage under its parents' headings only
    # (the laptops page's sections have no parent, so they are read under its title alone).
    used = [json.loads(line) for f in (tmp_path / "work").glob("groups-*.jsonl") for line in f.read_text().splitlines()]
    passages = [p for g in used for p in [g["positive"], *g["negatives"]]]
    assert passages and not [p for p in passages if p.startswith("Laptops > ")]
    # Stored at half precision, and the indexer's ONNX path embeds with it like any model.
    assert (out / "model.safetensors").stat().st_size < 50_000_000
    prepare_onnx(str(out), tmp_path / "models")
    tuned = load_embedder(str(out), "onnx", tmp_path / "models")
    bundled = load_embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE)
    texts = ["how do I book a train", "Book every train through TravelDesk at least 7 days ahead."]
    a, b = tuned.encode(texts), bundled.encode(texts)
    assert a.shape == (2, 384) and abs(float((a * a).sum(axis=1)[0]) - 1.0) < 1e-5
    assert float((a * b).sum(axis=1).min()) < 0.9999  # the weights moved


def test_casual_questions_read_as_people_type_them():
    import random

    from lab.query_styles import STYLES, casual, keywords, need, plain

    assert plain("What’s the mileage rate?") == "whats the mileage rate"
    assert keywords("How do I reset my VPN token?") == "reset my vpn token"
    assert keywords("What is the Carpentries Code of Conduct?") == "carpentries code of conduct"
    assert keywords("What if my laptop breaks on site?") == "my laptop breaks on site"
    assert keywords("Can I take a taxi?") == "take a taxi"
    # Too little left to ask anything: the question stays whole (lower case).
    assert keywords("What is Amplitude?") == "what is amplitude"
    assert "book a train" in need("How do I book a train?", random.Random(0))
    assert need("Why is my rating missing?", random.Random(0)) == "my rating missing"
    # Every style is reached, and the same seed gives the same rewrites.
    rewrites = [casual("How can I claim mileage?", random.Random(seed)) for seed in range(40)]
    assert rewrites == [casual("How can I claim mileage?", random.Random(seed)) for seed in range(40)]
    assert {"how can i claim mileage", "claim mileage"} <= set(rewrites) and len(set(rewrites)) >= 4
    assert len(STYLES) == 3 and all("?" not in r and r == r.lower() for r in rewrites)


@pytest.mark.slow
def test_training_with_casual_questions_records_how_it_reads_them(tmp_path):
    from lab.train import TrainConfig, train
    from tests.conftest import MODEL_CACHE

    data = tmp_path / "data"
    for name in ("handbook", "carpentries-handbook"):
        _source(data, name)
    from lab.scorer import PairScorer

    def trained(name: str, casual: float) -> tuple[dict, dict]:
        config = TrainConfig(
            layers=1, max_length=64, epochs=1, minutes=2, groups_per_step=2, group_negatives=3, eval_every=1
        )
        config.casual = casual
        record = train(data, tmp_path / name / "reader", tmp_path / name / "work", config, MODEL_CACHE)
        return record, PairScorer.load(tmp_path / name / "work" / "best").state_dict()

    record, weights = trained("casual", 1.0)
    assert [0.0 <= h["keywords_accuracy"] <= 1.0 for h in record["history"]] == [True, True]
    assert record["config"]["casual"] == 1.0
    # It learns from the rewritten questions: the same run asked as written ends elsewhere, while asking as
    # written twice ends in the same place (training is repeatable), so the difference is the rewrites'.
    _, written = trained("written", 0.0)
    _, again = trained("again", 0.0)
    assert all(written[k].equal(again[k]) for k in written)
    assert not all(written[k].equal(weights[k]) for k in written)


@pytest.mark.slow
def test_a_kept_checkpoint_exports_as_the_reader_training_chose(tmp_path):
    from click.testing import CliRunner

    from assistant.answering.reader.model import Reader
    from assistant.cli import main
    from lab.train import TrainConfig, train
    from tests.conftest import MODEL_CACHE

    data = tmp_path / "data"
    for name in ("handbook", "carpentries-handbook"):
        _source(data, name)
    work = tmp_path / "work"
    config = TrainConfig(
        layers=1,
        max_length=64,
        epochs=1,
        minutes=2,
        groups_per_step=2,
        group_negatives=3,
        eval_every=1,
        keep_checkpoints=True,
    )
    record = train(data, tmp_path / "reader", work, config, MODEL_CACHE)
    kept = sorted(p.name for p in work.glob("step-*"))
    assert kept == ["step-1", "step-2"]
    saved = json.loads((work / "step-1" / "train-config.json").read_text())
    assert saved["metrics"]["step"] == 1 and saved["config"]["layers"] == 1
    # The best step, exported later, is the reader training wrote: the same weights score the same.
    best = work / f"step-{record['best']['step']}"
    out = tmp_path / "exported"
    result = CliRunner().invoke(
        main, ["model", "export-reader", str(best), "--out", str(out)], env={"MOMENT_HOME": str(tmp_path / "home")}
    )
    assert result.exit_code == 0, result.output
    passages = ["Book every train through TravelDesk.", "New starters get a laptop."]
    shipped = Reader(tmp_path / "reader").score("how do I book a train", passages)
    exported = Reader(out)
    assert exported.score("how do I book a train", passages).tolist() == shipped.tolist()
    assert exported.record["checkpoint"] == str(best)
    # Anything else is refused with the reason.
    result = CliRunner().invoke(main, ["model", "export-reader", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "not a kept checkpoint" in result.output


def test_training_measures_auc_as_moment_eval_does_ties_counting_half():
    import numpy as np

    from assistant.answering.evaluation import auc
    from lab.train import choice_metrics

    # Two groups: one whose answer ties with its negative, one whose answer wins.
    scores = [np.array([0.4, 0.4, 0.1]), np.array([0.9, 0.2])]
    metrics = choice_metrics(scores)
    assert metrics["auc"] == auc([0.4, 0.9], [0.4, 0.1, 0.2]) == (0.5 + 1 + 1 + 1 + 1 + 1) / 6
