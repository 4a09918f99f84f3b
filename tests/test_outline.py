"""More on this page: the first page's other passages, one click away (real index, real model, real reader)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from assistant.answering.answers import answer_from_dict
from assistant.answering.evaluation import EvalQuestion, evaluate
from assistant.answering.outline import RARE_WORDS_WEIGHT, outline_label, page_outline, window_rank, window_ranking
from assistant.answering.reader.model import load_reader
from assistant.answering.reader.reading import PassageReader
from assistant.answering.retrieval import READER_CALIBRATION_FILE, RetrievalParams, Retriever
from assistant.cli.render_text import render_answer
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from assistant.slack.blocks import OUTLINE_BLOCK, answer_blocks
from indexer.build import build_index

ASKER = Asker(user_id="U0ASKER01", surface="cli")
GAS = """
# Smell of gas on site
If you smell gas at a customer site, follow this procedure. Your safety comes before the job.
## Immediate actions
1. Stop work at once.
2. Do not operate any electrical switches, and no naked flames.
3. Get everyone out of the building & leave the doors open.
## Call for help
From outside, call the gas emergency line on 0800 111 999 and then your supervisor.
## While you wait
Do not let the customer turn the gas back on <!channel>. Only a registered engineer may do this.
## Reporting
Report it in SafeStart the same day, with the address and the time.
"""


@pytest.fixture(scope="module")
def reader():
    return load_reader()


@pytest.fixture
def gas_index(content, store, embedder):
    content.markdown("safety/gas.md", "Smell of gas on site", GAS, type_="procedure", url="https://intra.example/gas")
    content.markdown("safety/ladders.md", "Ladders", "## Before you climb\nCheck the feet and the rungs.\n")
    content.van_inspection_video()
    build_index(content.root, store, embedder)
    return store


def _service(index, database, embedder, reader, tmp_path) -> MomentService:
    """The service on the small index, answering at a lower threshold than the demo's calibration (a
    handful of pages gives every question a middling confidence)."""
    settings = load_settings(home=tmp_path / "home", index_dir_override=index.root, reader=True)
    params = replace(RetrievalParams.load(READER_CALIBRATION_FILE), threshold=0.3, related_threshold=0.15)
    return MomentService(settings, database, Retriever(index, embedder, params, reader=PassageReader(reader)))


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.split("\n") if line.strip()}


def test_the_outline_lists_other_passages_of_the_first_page_never_the_one_shown(gas_index, embedder, reader):
    retriever = Retriever(gas_index, embedder, reader=PassageReader(reader))
    result = retriever.search("who do I phone about a gas leak")
    version = retriever.version()
    hit = result.hits[0]
    assert hit.doc.path == "safety/gas.md" and "0800 111 999" in hit.passage
    outline = page_outline(result, version, version.keywords.passage_terms)
    assert 1 <= len(outline) <= 3
    shown = _lines(hit.passage)
    for entry in outline:
        assert not _lines(entry.snippet) & shown  # none repeats the passage shown
        assert entry.url.startswith("https://intra.example/gas#")  # its nearest heading
    for a in outline:
        for b in outline:
            assert a is b or not _lines(a.snippet) & _lines(b.snippet)  # nor each other
    by_heading = {tuple(e.heading_path): e for e in outline}
    assert ("Immediate actions",) in by_heading
    steps = by_heading[("Immediate actions",)]
    assert steps.url == "https://intra.example/gas#immediate-actions"
    assert "1. Stop work at once." in steps.snippet and "3. Get everyone out" in steps.snippet  # steps whole
    assert outline_label(steps).startswith("Immediate actions: 1. Stop work at once.")


def test_without_the_reader_the_outline_ranks_the_pages_windows_by_retrieval(gas_index, embedder):
    retriever = Retriever(gas_index, embedder)
    result = retriever.search("who do I phone about a gas leak")
    version = retriever.version()
    assert result.hits[0].doc.path == "safety/gas.md" and result.hits[0].windows is None
    outline = page_outline(result, version, version.keywords.passage_terms)
    assert 1 <= len(outline) <= 3 and all(e.url.startswith("https://intra.example/gas#") for e in outline)


def test_a_videos_outline_links_to_the_second(gas_index, embedder, reader):
    retriever = Retriever(gas_index, embedder, reader=PassageReader(reader))
    result = retriever.search("how do I check the tyres on the van")
    version = retriever.version()
    assert result.hits[0].doc.path == "videos/van-inspection.vtt"
    outline = page_outline(result, version, version.keywords.passage_terms)
    for entry in outline:
        assert entry.start_seconds is not None
        assert entry.url == f"https://learn.brightline.example/videos/van-inspection#t={int(entry.start_seconds)}"


def test_the_answer_carries_its_outline_in_json_slack_text_and_the_stored_answer(
    gas_index, database, embedder, reader, tmp_path
):
    service = _service(gas_index, database, embedder, reader, tmp_path)
    answer = service.asking.ask("who do I phone about a gas leak", ASKER)
    assert answer.answered and answer.outline
    data = answer.to_dict()
    assert data["outline"] and set(data["outline"][0]) >= {"heading_path", "snippet", "url"}
    assert json.loads(json.dumps(data))["outline"] == data["outline"]
    stored = service.records.answer_for(answer.interaction_id)
    assert [e.to_dict() for e in stored.outline] == data["outline"]  # the stored answer keeps it
    assert answer_from_dict({**data, "outline": None}).outline == []  # answers stored before it had one

    text = render_answer(answer)
    assert "More on this page:" in text and "https://intra.example/gas#immediate-actions" in text

    blocks = [b.to_dict() for b in answer_blocks(answer)]
    (line,) = [b for b in blocks if b.get("block_id") == OUTLINE_BLOCK]
    assert line["type"] == "context" and len(line["elements"]) == 1
    mrkdwn = line["elements"][0]["text"]
    assert mrkdwn.startswith("*More on this page:*")
    assert mrkdwn.count("<https://intra.example/gas#") == len(answer.outline)
    assert "<https://intra.example/gas#immediate-actions|Immediate actions: 1. Stop work at once." in mrkdwn


def test_content_in_the_outline_is_escaped_in_slack(gas_index, database, embedder, reader, tmp_path):
    service = _service(gas_index, database, embedder, reader, tmp_path)
    answer = service.asking.ask("what do I do first if I smell gas", ASKER)
    assert answer.answered
    answer.outline[0].snippet = "Do not let <!channel> & <@U0BOSS> turn the gas back on"
    answer.outline[0].heading_path = ["While <you> wait"]
    (line,) = [b.to_dict() for b in answer_blocks(answer) if b.to_dict().get("block_id") == OUTLINE_BLOCK]
    text = line["elements"][0]["text"]
    assert "<!channel>" not in text and "<@U0BOSS>" not in text and "<you>" not in text
    assert "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in text and "While &lt;you&gt; wait" in text


def test_an_answer_declined_has_no_outline(gas_index, database, embedder, reader, tmp_path):
    service = _service(gas_index, database, embedder, reader, tmp_path)
    answer = service.asking.ask("what time does the cafeteria open on saturdays", ASKER)
    assert not answer.answered and answer.outline == [] and answer.to_dict()["outline"] == []


def test_eval_reports_within_one_click(gas_index, embedder, reader):
    questions = [
        # The passage shown answers: right, and so within one click.
        EvalQuestion(
            "who do I phone about a gas leak",
            ("safety/gas.md",),
            answer="From outside, call the gas emergency line on 0800 111 999 and then your supervisor.",
        ),
        # The passage shown is elsewhere on the page, the answer one click away in the outline.
        EvalQuestion(
            "who do I phone about a gas leak",
            ("safety/gas.md",),
            answer="1. Stop work at once. 2. Do not operate any electrical switches, and no naked flames. "
            "3. Get everyone out of the building & leave the doors open.",
        ),
        EvalQuestion("who won the world cup", ()),
    ]
    retriever = Retriever(gas_index, embedder, reader=PassageReader(reader))
    report = evaluate(retriever, questions, ["moment", "dense"])
    moment = report.systems["moment"]
    assert moment.passage_right == [True, False, None]
    assert moment.one_click_right == [True, True, None] and moment.within_one_click == 1.0
    data = report.to_dict()
    assert data["within_one_click"] == 1.0 and data["first_passage_right"] == 0.5
    assert data["per_question"][1]["within_one_click"] is True and data["per_question"][1]["outline"]
    assert report.systems["dense"].within_one_click is None  # no outline: not judged
    assert "within one click" in report.table()


def test_of_the_windows_the_reader_did_not_read_those_holding_more_of_the_questions_rare_words_come_first(
    gas_index, embedder
):
    retriever = Retriever(gas_index, embedder)
    result = retriever.search("gas at a customer, do i need safestart")
    version = retriever.version()
    keywords, terms_of = version.keywords, version.keywords.passage_terms
    windows = PassageReader.candidates([result.hits[0]], version, result.query_vector, result.query_terms, terms_of)

    def rare_share(w) -> float:  # the IDF-weighted share of the question's words in the window and its headings
        (held,) = terms_of([" ".join([*w.chunk.heading_path, *w.units[w.start : w.end]])])
        wanted = set(result.query_terms)
        return sum(keywords.idf(t) for t in wanted & set(held)) / sum(keywords.idf(t) for t in wanted)

    by_prior = min(windows, key=window_rank)
    by_words = min(windows, key=window_ranking(windows, keywords, result.query_terms, terms_of))
    assert by_words is not by_prior and by_words.prior < by_prior.prior  # the prior alone would list the other
    assert rare_share(by_words) > rare_share(by_prior)
    assert by_words.prior + RARE_WORDS_WEIGHT * rare_share(by_words) > by_prior.prior + RARE_WORDS_WEIGHT * rare_share(
        by_prior
    )
