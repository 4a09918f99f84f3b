"""The reader: the shipped cross-encoder on onnxruntime, choosing passages and judging answerability,
on real indexes built with the real embedding model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.evaluation import (
    EvalQuestion,
    auc,
    declined_at,
    eval_index_dir,
    evaluate,
    passage_inside,
    remove_gold_pages,
)
from assistant.answering.reader import reader_for
from assistant.answering.reader.model import MODEL_DIR, Reader, ReaderError, load_reader
from assistant.answering.reader.reading import PassageReader, Window, chunk_units, widen, windows_of
from assistant.answering.retrieval import Retriever
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.documents import Chunk

ASKER = Asker(user_id="U0ASKER01", surface="cli")


@pytest.fixture(scope="module")
def reader() -> Reader:
    return load_reader()


# --- the model ------------------------------------------------------------------------------------


def test_the_answering_passage_outscores_its_siblings(reader):
    question = "how do I reset my vpn token"
    passages = [
        "Reset a VPN hardware token > Steps\n1. Open the self-service portal.\n2. Choose Reset token and enter "
        "the serial number.\n3. Wait for the six-digit code to change, then sign in again.",
        "Reset a VPN hardware token > Before you start\nFind the serial number on the back of the token.",
        "Holiday entitlement > Carrying over\nYou may carry over up to five days into the next holiday year.",
    ]
    scores = reader.score(question, passages)
    assert scores.dtype == np.float32 and scores.shape == (3,)
    assert scores[0] > scores[1] > scores[2]


def test_a_passages_score_does_not_depend_on_the_others_read_with_it(reader):
    # The int8 model quantises activations per run: batched, a passage's score moved with its batch-mates.
    question = "how do I reset my vpn token"
    steps = "Reset a VPN hardware token > Steps\n1. Open the self-service portal.\n2. Choose Reset token."
    long = "Holiday > Carrying over\n" + "You may carry over up to five days. " * 12
    others = [long, "Laptops", "PPE > Boots\nSize 9"]
    alone = reader.score(question, [steps])[0]
    assert [reader.score(question, [steps, *others[:n]])[0] for n in range(len(others) + 1)] == [alone] * 4


def test_pairs_read_side_by_side_score_as_one_after_the_other_in_order():
    # A read runs `threads` pairs at once, one thread each; the scores are each pair's own, in its place.
    question = "how do I reset my vpn token"
    passages = [f"Section {i}\n" + "Open the portal and resync the token. " * (i + 1) for i in range(7)]
    passages.append("Holiday > Carrying over\nYou may carry over up to five days.")
    lanes, single = load_reader(threads=2), load_reader(threads=1)
    assert lanes.lanes == 2 and single.lanes == 1
    together = lanes.score(question, passages)
    assert together.tolist() == pytest.approx(single.score(question, passages).tolist(), abs=1e-4)
    assert together.tolist() == pytest.approx([lanes.score(question, [p])[0] for p in passages], abs=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_reader_used_before_a_fork_still_reads_in_the_forked_process():
    # gunicorn forks its workers after loading the app: a copied thread pool has no threads behind it.
    import multiprocessing

    reader = load_reader(threads=2)
    before = reader.score("vpn token", ["Reset the token", "Book a room"]).tolist()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(
        target=lambda: results.put(reader.score("vpn token", ["Reset the token", "Book a room"]).tolist())
    )
    child.start()
    try:
        child.join(timeout=60)
        assert child.exitcode == 0, "the forked process could not read (it hung or failed)"
    finally:
        if child.is_alive():
            child.kill()
    assert results.get(timeout=5) == pytest.approx(before, abs=1e-6)


def test_a_huge_question_is_cut_and_the_passage_trimmed_never_an_error(reader):
    question = "my token " * 5000
    ids, mask, segments = reader.encode_pairs(question, ["short passage", "word " * 2000])
    assert ids.shape[1] <= reader.max_length
    # The question keeps at most its budget; every pair still ends in [SEP] and has passage tokens.
    assert (segments.sum(axis=1) > 1).all()
    for row, length in zip(ids, mask.sum(axis=1), strict=True):
        assert row[length - 1] == reader._sep and row[0] == reader._cls
    assert np.isfinite(reader.score(question, ["short passage", "word " * 2000])).all()
    assert reader.score("anything", []).shape == (0,)


@pytest.mark.parametrize("damage", ["missing-model", "corrupt-model", "missing-settings", "corrupt-settings"])
def test_a_missing_or_corrupt_reader_names_the_file(tmp_path, damage):
    broken = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, broken)
    if damage == "missing-model":
        (broken / "reader.onnx").unlink()
    elif damage == "corrupt-model":
        (broken / "reader.onnx").write_bytes(b"\x00not an onnx file" * 100)
    elif damage == "missing-settings":
        (broken / "reader.json").unlink()
    else:
        (broken / "reader.json").write_text("{not json")
    with pytest.raises(ReaderError) as caught:
        Reader(broken)
    named = "reader.json" if "settings" in damage else "reader.onnx"
    assert str(broken / named) in str(caught.value)


def test_readers_joined_by_pathsep_read_as_one_with_their_mean_logit(tmp_path, reader):
    # A second reader that reads differently: the same weights, the question cut to 3 word pieces.
    other = tmp_path / "short-questions"
    shutil.copytree(MODEL_DIR, other)
    settings = json.loads((other / "reader.json").read_text())
    (other / "reader.json").write_text(json.dumps({**settings, "question_tokens": 3}))
    question = "how do I reset my vpn token when it is locked"
    passages = ["Reset a VPN hardware token > Steps\n1. Open the self-service portal.", "PPE > Boots\nSize 9"]
    alone = [reader.score(question, passages), Reader(other).score(question, passages)]
    assert not np.allclose(alone[0], alone[1])
    both = load_reader(f"{MODEL_DIR}{os.pathsep}{other}")
    assert np.allclose(both.score(question, passages), (alone[0] + alone[1]) / 2, atol=1e-6)
    assert both.own_heading == reader.own_heading and both.describe().startswith("2 readers")
    # Either one broken names its file; readers that render windows differently are refused.
    (other / "reader.onnx").unlink()
    with pytest.raises(ReaderError, match=str(other / "reader.onnx")):
        load_reader(f"{MODEL_DIR}{os.pathsep}{other}")
    shutil.copy(MODEL_DIR / "reader.onnx", other / "reader.onnx")
    (other / "reader.json").write_text(json.dumps({**settings, "own_heading": not settings["own_heading"]}))
    with pytest.raises(ReaderError, match="own_heading"):
        load_reader(f"{MODEL_DIR}{os.pathsep}{other}")


# --- choosing and showing the passage --------------------------------------------------------------


def test_a_window_starts_at_every_unit_and_holds_as_many_whole_units_as_fit():
    units = [f"line {i} " + "word " * 30 for i in range(10)]  # 32 words each
    ranges = windows_of(units, words=100)
    assert [a for a, _ in ranges] == list(range(10))
    assert ranges[0] == (0, 3) and ranges[-1] == (9, 10)
    assert all(sum(len(u.split()) for u in units[a:b]) <= 100 for a, b in ranges)
    # A unit longer than the window is a window of its own.
    assert windows_of(["word " * 150, "short line"], words=100) == [(0, 1), (1, 2)]
    # A long line is cut into sentences, but a step of a list stays whole (with its number, in its list);
    # a transcript is cut into its cues, whatever their length.
    step = "1. Stop the card straight away: call the Fleet team on 0161 555 0177 (08:00-18:00), or out of " + (
        "hours the FleetFuel 24-hour line printed in the van's logbook wallet: 0345 600 4411."
    )
    units = chunk_units(Chunk("a.md", 0, (), f"{step}\n2. Raise a request in FleetDesk.\n3. A card is posted."))
    assert units[0] == step and widen(units, 1, 3) == (0, 3)
    assert len(chunk_units(Chunk("a.md", 0, (), "Start here. " * 40))) == 40
    video = Chunk("v.vtt", 0, (), "Welcome. Start with the tyres.", cue_starts=((0, 0.0), (9, 6.0)))
    assert chunk_units(video) == ["Welcome.", "Start with the tyres."]


def test_a_passage_that_starts_or_ends_inside_a_list_is_widened_to_the_whole_list():
    units = ["To resync the token:", "1. Open NW-Key.", "2. Choose Resync.", "3. Enter two codes.", "Then sign in."]
    assert widen(units, 2, 3) == (0, 4)  # from the lead-in to the last step, not the sentence after
    assert widen(units, 4, 5) == (4, 5)  # plain prose is left alone
    # Bullets are separate facts: the one that answers is shown alone, unless the window holds the
    # list's lead-in or its start (then the list is finished).
    facts = ["Using the card:", "- Enter the mileage.", "- The daily limit is £150.", "- EV vans use the charge card."]
    assert widen(facts, 2, 3) == (2, 3)
    assert widen(facts, 0, 2) == (0, 4)
    assert widen(facts, 1, 3) == (1, 4)
    long = ["Steps:"] + [f"{i}. " + "do this " * 40 for i in range(1, 8)]
    start, end = widen(long, 1, 2, limit=900)
    assert sum(len(u) + 1 for u in long[start:end]) <= 900


def test_the_focused_passage_is_the_bullet_that_answers_alone(reader):
    """A short bullet is not padded with the next one (a short sentence of prose is); a line that refers
    back brings the line before it."""
    text = (
        "Using the card:\n- Enter the van's mileage at the pump every time.\n- The daily limit is £150 and 2 "
        "transactions.\n- EV vans use the charge card in the same wallet."
    )
    chunk = Chunk("fleet/fuel-card.md", 0, ("Using the card",), text)
    units = chunk_units(chunk)
    sharp = PassageReader(reader, focus_margin=0.0)  # the best line only, then the rules under test
    question = "whats the daily limit on the fuel card"
    assert sharp.focus(question, "Fuel card", Window(0, 0, chunk, 0, len(units), units)) == units[2]
    prose = Chunk(
        "fleet/fuel.md", 0, (), "Fuel cards are for vans.\nThe daily limit is £150.\nReceipts go in the wallet."
    )
    units = chunk_units(prose)
    shown = sharp.focus(question, "Fuel card", Window(0, 0, prose, 0, len(units), units))
    assert shown == "The daily limit is £150.\nReceipts go in the wallet."
    cues = Chunk("v.vtt", 0, (), "Open the valve.\nOn a hot day put the cylinder in cold water.\nThat speeds it up.")
    units = chunk_units(cues)
    shown = sharp.focus("what speeds up recovery", "Recovery", Window(0, 0, cues, 2, 3, units))
    assert shown.startswith("On a hot day")
    # A table's best line being its header row: the rows are shown, not the header alone (it answers nothing).
    table = Chunk(
        "field/codes.md",
        0,
        ("Outdoor unit codes",),
        "Code | Meaning | First checks\nE01 | Ambient sensor fault | Check plug CN7\n"
        "E02 | Defrost sensor fault | Check CN8",
    )
    units = chunk_units(table)
    question = "what do the columns of the code table mean"
    assert int(np.argmax(reader.score(question, [f"Codes > Outdoor unit codes\n{u}" for u in units]))) == 0
    assert sharp.focus(question, "Codes", Window(0, 0, table, 0, len(units), units)) == table.text


@pytest.mark.parametrize("own_heading", [False, True])
def test_the_reader_reads_a_window_under_the_headings_it_was_trained_with(tmp_path, own_heading):
    """As in training: the title and the parent headings, then the text; and the window's own heading
    too for a reader trained with own headings (`reader.json`: own_heading, as the shipped one is)."""
    shutil.copytree(MODEL_DIR, tmp_path / "reader")
    meta = json.loads((tmp_path / "reader" / "reader.json").read_text())
    meta["own_heading"] = own_heading
    (tmp_path / "reader" / "reader.json").write_text(json.dumps(meta))

    class Recording:  # the real reader, with what it was given written down
        def __init__(self, inner) -> None:
            self.inner, self.seen = inner, []
            self.own_heading = inner.own_heading

        def score(self, question, passages):
            self.seen += passages
            return self.inner.score(question, passages)

    recording = Recording(load_reader(tmp_path / "reader"))
    chunk = Chunk("fleet/fuel-card.md", 0, ("Fleet", "Using the card"), "Enter the mileage.\nThe daily limit is £150.")
    units = chunk_units(chunk)
    PassageReader(recording).focus("daily limit", "Fuel card", Window(0, 0, chunk, 0, len(units), units))
    path = "Fuel card > Fleet > Using the card" if own_heading else "Fuel card > Fleet"
    assert recording.seen == [f"{path}\nEnter the mileage.", f"{path}\nThe daily limit is £150."]
    assert load_reader(MODEL_DIR).own_heading  # the shipped reader


def test_the_reader_chooses_the_section_that_answers(corpus, embedder, reader):
    plain = Retriever(corpus, embedder)
    read = Retriever(corpus, embedder, reader=PassageReader(reader))
    question = "what is the phone number of the IT desk if the token reset fails"
    hit = read.search(question).hits[0]
    assert hit.doc.path == "it/vpn-token.md"
    assert "extension 4400" in hit.passage and hit.reader_logit is not None
    features = read.search(question).features
    # The reader's logit (clipped, scaled to [-1, 1]) is the confidence feature, not its saturating probability.
    assert features["reader"] == pytest.approx(max(-10.0, min(10.0, hit.reader_logit)) / 10.0)
    assert "reader" not in plain.search(question).features
    steps = read.search("how do I reset my vpn token").hits[0]
    # The steps are shown whole: the first and the last.
    assert "1. Open the self-service portal" in steps.passage and "3. Wait for the six-digit code" in steps.passage


def test_an_introduction_shown_leads_on_into_the_first_section(content, store, embedder, reader):
    """The reader prefers an introduction that restates the question to the steps after it; the passage
    shown then goes on into the first section, whole steps, so there is something to act on."""
    from indexer.build import build_index

    content.markdown(
        "safety/gas.md",
        "Smell of gas on site",
        """
        # Smell of gas on site
        If you smell gas at a customer site, follow this procedure. Your safety comes before the job.
        ## Immediate actions
        1. Stop work at once.
        2. Do not operate any electrical switches.
        3. Get everyone out of the building.
        ## Reporting
        Report it in SafeStart the same day.
        """,
    )
    content.markdown("safety/ladders.md", "Ladders", "Check the feet and the rungs before you climb.\n")
    build_index(content.root, store, embedder)
    hit = Retriever(store, embedder, reader=PassageReader(reader)).search("i can smell gas").hits[0]
    assert hit.doc.path == "safety/gas.md" and hit.chunk.heading_path == ()  # the reader chose the introduction
    assert hit.passage.startswith("If you smell gas at a customer site, follow this procedure.")
    assert "1. Stop work at once." in hit.passage and "3. Get everyone out of the building." in hit.passage
    assert "SafeStart" not in hit.passage  # the first section only
    # A page without headings, or a passage from a section, is shown as chosen.
    ladder = Retriever(store, embedder, reader=PassageReader(reader)).search("ladder feet check").hits[0]
    assert ladder.doc.path == "safety/ladders.md" and ladder.passage == "Check the feet and the rungs before you climb."
    report = Retriever(store, embedder, reader=PassageReader(reader)).search("where do i report a gas smell").hits[0]
    assert report.chunk.heading_path == ("Reporting",) and report.passage == "Report it in SafeStart the same day."


def test_the_service_shows_the_readers_passage_and_falls_back_without_it(
    corpus, database, embedder, tmp_path, monkeypatch
):
    settings = load_settings(home=tmp_path / "home", index_dir_override=corpus.root, reader=True)
    reader, state = reader_for(settings)
    assert state.on and state.problem is None and "cross-encoder" in state.description
    service = MomentService(settings, database, Retriever(corpus, embedder, reader=reader), state)
    answer = service.asking.ask("who do I call if the token reset still fails", ASKER)
    assert "extension 4400" in answer.sources[0].snippet

    monkeypatch.delenv("MOMENT_READER", raising=False)  # the default, whatever the shell exported
    assert load_settings(home=tmp_path / "home").reader  # on by default (docs/answer-quality.md)
    off = load_settings(home=tmp_path / "home", index_dir_override=corpus.root, reader=False)
    none, state = reader_for(off)
    assert none is None and not state.on and "MOMENT_READER=off" in state.description

    (tmp_path / "broken").mkdir()
    broken = load_settings(home=tmp_path / "home", reader_dir_override=tmp_path / "broken", reader=True)
    none, state = reader_for(broken)
    assert none is None and state.problem and str(tmp_path / "broken" / "reader.json") in state.problem
    fallback = MomentService(settings, database, Retriever(corpus, embedder), state)
    assert fallback.asking.ask("how do I reset my vpn token", ASKER).sources[0].path == "it/vpn-token.md"


def test_with_the_reader_on_no_model_keeps_its_threads_spinning(corpus, tmp_path):
    # Two onnxruntime pools spinning on two cores took the cores from each other's work
    # (docs/performance.md): the service turns spinning off in both when it runs the reader, and only then.
    from tests.conftest import MODEL_CACHE

    def spinning(session) -> str:
        try:
            return session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # not set: onnxruntime's default, spinning
            return "default"

    common = {"home": tmp_path / "home", "index_dir_override": corpus.root, "model_cache_override": MODEL_CACHE}
    on = MomentService.from_settings(load_settings(reader=True, **common), migrate=False)
    assert spinning(on.retriever.embedder.session) == "0"
    assert spinning(on.retriever.reader.reader.session) == "0"
    off = MomentService.from_settings(load_settings(reader=False, **common), migrate=False)
    assert spinning(off.retriever.embedder.session) == "default"


# --- measuring it ------------------------------------------------------------------------------


def test_the_passage_overlap_rule():
    answer = "Call the IT Service Desk on 0161 555 0142, option 4. Out of hours, call Dispatch on extension 2200."
    assert passage_inside("Out of hours, call Dispatch on extension 2200.", answer)
    assert not passage_inside("After 5 wrong codes in a row the token is locked for 30 minutes.", answer)
    # Half the content words is enough; stop words do not count either way.
    assert passage_inside("call dispatch about the rota changes", answer) is False
    assert passage_inside("call dispatch rota", answer) is True
    assert not passage_inside("", answer) and not passage_inside("anything", None)


def test_auc_and_declined_at_90_percent_answered():
    assert auc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([], [0.1]) is None
    answerable = [float(x) for x in np.linspace(0.5, 1.0, 10)]
    # The threshold that answers 9 of 10 is the second lowest, 0.5556: 0.5 and 0.55 fall below it.
    assert declined_at(answerable, [0.5, 0.55, 0.6, 0.9]) == 0.5


def test_two_content_folders_of_the_same_name_get_their_own_eval_index(tmp_path):
    a, b = tmp_path / "one" / "corpus", tmp_path / "two" / "corpus"
    assert eval_index_dir(tmp_path, a) != eval_index_dir(tmp_path, b)
    assert eval_index_dir(tmp_path, a) == eval_index_dir(tmp_path, tmp_path / "one" / ".." / "one" / "corpus")
    assert eval_index_dir(tmp_path, a).name.startswith("corpus-")


def test_removing_gold_pages_makes_near_misses():
    questions = [
        EvalQuestion("a", ("p1.md",)),
        EvalQuestion("b", ("p2.md",)),
        EvalQuestion("c", ("p2.md", "p3.md")),
        EvalQuestion("d", ("p3.md",)),
        EvalQuestion("e", ("p4.md",), answer="text"),
        EvalQuestion("f", ()),
    ]
    removed, changed = remove_gold_pages(questions, 2)
    assert removed == ["p2.md", "p4.md"]
    assert [q.gold for q in changed] == [("p1.md",), (), ("p3.md",), ("p3.md",), (), ()]
    assert [q.kind for q in changed] == [None, "near-miss", None, None, "near-miss", None]
    assert changed[4].answer is None


def test_eval_scores_the_first_passage(corpus, embedder, reader):
    questions = [
        EvalQuestion(
            "who do I call if the token reset still fails",
            ("it/vpn-token.md",),
            answer="Call the IT desk on extension 4400.",
        ),
        EvalQuestion(
            "how much per mile for my own car",
            ("hr/mileage.md",),
            answer="Own car: 67 cents per mile. Company vans: no mileage claim, use the fuel card.",
        ),
        EvalQuestion("who won the world cup", ()),
    ]
    plain = Retriever(corpus, embedder)
    read = Retriever(corpus, embedder, reader=PassageReader(reader))
    report = evaluate(read, questions, ["moment", "moment-retrieval", "dense"], retrievers={"moment-retrieval": plain})
    moment = report.systems["moment"]
    assert moment.passage_questions == 2 and moment.first_passage_right == 1.0
    assert moment.passage_right == [True, True, None]
    first = report.to_dict()["per_question"][0]
    assert first["passage_right"] is True
    # Every system's verdict per question, to see which questions the reader wins and loses.
    assert first["moment_passage_right"] is True
    assert {"moment-retrieval_passage_right", "dense_passage_right"} <= set(first)
    assert report.to_dict()["per_question"][2]["dense_passage_right"] is None
    # And summed, with how likely the split is by chance: the unanswerable question is not counted.
    against = report.to_dict()["passage_against"]
    assert set(against) == {"moment-retrieval", "dense"} and against["dense"]["questions"] == 2
    verdicts = [report.systems["dense"].passage_right[i] for i in (0, 1)]
    assert against["dense"]["only_first"] == verdicts.count(False) and against["dense"]["both"] == verdicts.count(True)
    # The plain baselines are judged on their best chunk, whole.
    assert report.systems["dense"].passage_questions == 2


@pytest.mark.slow
def test_cli_eval_near_miss_set_and_reader_comparison(corpus, tmp_path, monkeypatch):
    from tests.test_answers import _cli

    content = tmp_path / "content"
    content.mkdir()
    # The corpus fixture's content folder sits beside its index.
    shutil.copytree(Path(corpus.root).parent / "content", content, dirs_exist_ok=True)
    rows = [
        {"question": "vpn token wont work", "gold": ["it/vpn-token.md"]},
        {"question": "how much per mile for my car", "gold": ["hr/mileage.md"]},
        {"question": "password expired", "gold": ["it/password.md"]},
        {"question": "who won the world cup", "gold": []},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    monkeypatch.setenv("MOMENT_READER", "off")
    result = _cli(
        "eval", str(questions), "--content", str(content), "--remove-gold-pages", "2", "--json", home=tmp_path / "home"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["systems"]) == {"moment", "moment-reader", "bm25", "dense"}
    assert data["reader"]["on"] is False
    # hr/mileage.md, it/password.md, it/vpn-token.md: the second (it/password.md) is gone.
    assert [q["gold"] for q in data["per_question"]][2] == []
    assert data["unanswerable"] == 2 and data["systems"]["moment"]["near_miss_auc"] is not None
    [copy] = (tmp_path / "home" / "eval-content").iterdir()  # named after the source and its path's hash
    assert copy.name.startswith("content-") and copy.name.endswith("-minus-every-2")
    # Two sources of the same name (`corpus`) must not share a copy: the name carries the source's path hash.
    assert copy.name == eval_index_dir(tmp_path / "home", content).name + "-minus-every-2"
    assert (copy / "it" / "vpn-token.md").exists() and not (copy / "it" / "password.md").exists()

    # With the reader on (the default), the same run measures Moment without it.
    monkeypatch.delenv("MOMENT_READER")
    result = _cli("eval", str(questions), "--json", home=tmp_path / "home", index=corpus.root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["systems"]) == {"moment", "moment-retrieval", "bm25", "dense"} and data["reader"]["on"] is True
    # A broken reader: a warning that names the file, and retrieval alone is measured.
    monkeypatch.setenv("MOMENT_READER_DIR", str(tmp_path / "nowhere"))
    result = _cli("eval", str(questions), "--json", home=tmp_path / "home", index=corpus.root)
    assert result.returncode == 0 and str(tmp_path / "nowhere" / "reader.json") in result.stderr
    assert json.loads(result.stdout)["reader"]["problem"]
    monkeypatch.delenv("MOMENT_READER_DIR")

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "fine", "gold": []}\n{not json\n')
    result = _cli("eval", str(bad), home=tmp_path / "home", index=corpus.root)
    assert result.returncode == 1 and "line 2" in result.stderr and "Traceback" not in result.stderr


def test_status_warns_when_the_reader_is_unavailable():
    from assistant.operations.operations import Status
    from assistant.slack.admin_blocks import status_blocks

    def text(status: Status) -> str:
        return json.dumps([b.to_dict() for b in status_blocks(status)])

    broken = Status(
        index_problem="no index",
        reader="unavailable: answers use retrieval alone",
        reader_problem="The reader cannot be loaded: /srv/reader/reader.onnx is missing.",
    )
    assert ":warning: *Reader* unavailable" in text(broken) and "/srv/reader/reader.onnx is missing" in text(broken)
    assert "Reader on: cross-encoder" in text(Status(index_problem="no index", reader="on: cross-encoder (3 layers)"))


def test_a_missing_or_corrupt_calibration_is_an_error_never_a_silent_default(tmp_path):
    from assistant.answering.retrieval import (
        CALIBRATION_FILE,
        READER_CALIBRATION_FILE,
        CalibrationError,
        RetrievalParams,
    )

    with pytest.raises(CalibrationError, match=str(tmp_path / "gone.json")):
        RetrievalParams.load(tmp_path / "gone.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="unreadable"):
        RetrievalParams.load(tmp_path / "bad.json")
    # Both shipped calibrations load, and are not the uncalibrated defaults.
    for path in (CALIBRATION_FILE, READER_CALIBRATION_FILE):
        assert RetrievalParams.load(path) != RetrievalParams()
    assert "reader" in RetrievalParams.load(READER_CALIBRATION_FILE).weights
