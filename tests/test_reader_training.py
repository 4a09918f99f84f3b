"""Training the reader: the groups it learns from, and the whole path from corpora to a loadable
int8 ONNX reader (a tiny run: one layer, a few steps)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from assistant.reader.training_data import build_groups, build_window_groups, cut_words, strip_question_headings

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
    from assistant.reader.train import group_task

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


def test_passages_are_cut_to_the_training_size():
    text = "\n".join(textwrap.wrap("word " * 300, 60))
    assert len(cut_words(text, 110).split()) == 110
    assert cut_words("one two\nthree", 2) == "one two"


@pytest.mark.slow
def test_training_exports_a_reader_that_loads_and_scores(tmp_path):
    from assistant.reader.model import Reader
    from assistant.reader.train import TrainConfig, train
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


def test_embedder_training_writes_a_model_the_index_can_use(tmp_path):
    from assistant.reader.train_embedder import EmbedderConfig, train_embedder
    from indexer.embedding import load_embedder, prepare_onnx
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
    # Stored at half precision, and the indexer's ONNX path embeds with it like any model.
    assert (out / "model.safetensors").stat().st_size < 50_000_000
    prepare_onnx(str(out), tmp_path / "models")
    tuned = load_embedder(str(out), "onnx", tmp_path / "models")
    bundled = load_embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE)
    texts = ["how do I book a train", "Book every train through TravelDesk at least 7 days ahead."]
    a, b = tuned.encode(texts), bundled.encode(texts)
    assert a.shape == (2, 384) and abs(float((a * a).sum(axis=1)[0]) - 1.0) < 1e-5
    assert float((a * b).sum(axis=1).min()) < 0.9999  # the weights moved
