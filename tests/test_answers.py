"""Answers from the real model, FAISS and BM25, logged to real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from assistant.answering.calibrating import COVERAGE_WEIGHTS, FEATURES, KEYWORD_WEIGHTS, calibrate
from assistant.answering.evaluation import EvalQuestion, evaluate
from assistant.answering.passages import deep_link, snippet
from assistant.answering.questions import prepare
from assistant.answering.retrieval import IndexMismatchError, RetrievalParams, Retriever
from assistant.db.database import Database
from assistant.db.models import Interaction, Vote
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.embedding import EmbedderSpec
from indexer.store import IndexMissingError, IndexStore

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = ROOT / ".moment" / "models"
ASKER = Asker(user_id="U0ASKER01", surface="cli", channel_id="C0GENERAL")


@pytest.fixture
def service(corpus, database, embedder, tmp_path) -> MomentService:
    settings = load_settings(home=tmp_path / "home", index_dir_override=corpus.root)
    return MomentService(settings, database, Retriever(corpus, embedder))


# --- retrieval and the answer ---------------------------------------------------------------------


def test_answers_with_the_right_passage_and_link(service):
    answer = service.asking.ask("my vpn token keeps failing how do i reset it", ASKER)
    assert answer.answered and answer.outcome == "answered"
    best = answer.sources[0]
    assert best.path == "it/vpn-token.md" and best.type == "job-aid"
    assert best.heading_path == ["Steps"]
    assert best.url == "https://intranet.brightline.example/kb/vpn-token#steps"
    assert "Reset token" in best.snippet and "Find the serial number" not in best.snippet
    assert best.owner == "U0TESTOWN1" and best.reviewed == dt.date(2026, 9, 1) and not best.stale
    assert len({s.path for s in answer.sources}) == len(answer.sources)  # one result per document
    assert 1 <= len(answer.sources) <= 3
    # "Also see" only shows pages nearly as close as the best, not whatever ranked next.
    assert {s.path for s in answer.sources} <= {"it/vpn-token.md", "it/password.md"}


def test_video_answers_link_to_the_second(service):
    answer = service.asking.ask("how do I check tyre tread on the van", ASKER)
    best = answer.sources[0]
    assert best.type == "video" and best.start_seconds == 6.0
    assert best.url == "https://learn.brightline.example/videos/van-inspection#t=6"


def test_stale_content_is_flagged(service):
    answer = service.asking.ask("what is the mileage rate for my own car", ASKER)
    best = answer.sources[0]
    assert best.path == "hr/mileage.md" and best.stale and best.review_due == dt.date(2024, 7, 13)
    assert "67 cents per mile" in best.snippet


def test_filters_by_type_and_tag(service):
    only_procedures = service.asking.ask("reset vpn token", ASKER, types=["procedure"])
    assert all(s.type == "procedure" for s in only_procedures.sources)
    tagged = service.asking.ask("reset", ASKER, tags=["password"])
    assert [s.path for s in tagged.sources] == ["it/password.md"]


def test_declines_what_the_content_cannot_answer(service):
    answer = service.asking.ask("what time does the cafeteria open on saturdays", ASKER)
    assert not answer.answered and answer.offer_mentor and answer.outcome == "not_answered"
    assert len(answer.sources) <= 2


def test_model_mismatch_is_refused_with_a_clear_message(corpus, embedder):
    class OtherModel:
        spec = EmbedderSpec("other-model", "onnx", 768)

        def encode(self, texts, batch_size=32):
            raise AssertionError("must not be used")

    with pytest.raises(IndexMismatchError, match="moment index --full"):
        Retriever(corpus, OtherModel()).search("vpn")


def test_missing_index_says_how_to_build_it(tmp_path, database, embedder):
    settings = load_settings(home=tmp_path / "home")
    service = MomentService(settings, database, Retriever(IndexStore(tmp_path / "none"), embedder))
    with pytest.raises(IndexMissingError, match="moment index"):
        service.asking.ask("vpn token", ASKER)
    with database.session() as session:  # the attempt is still logged
        assert session.scalar(select(Interaction.outcome)) == "error"


# --- bad input is answered kindly and logged ----------------------------------------------------

BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \n\t  ",
    "emoji": "🤔🤔🤔 ??? !!!",
    "huge": "how do I reset my vpn token " * 1500,  # 42,000 characters
    "other-language": "как сбросить токен VPN",
    "slack-markup": "<@U0MOMENTBOT> <!channel> how do i reset my <https://portal.example|vpn token> in <#C123|it-help>",
    "control-chars": "vpn\x00token\x1b[31m reset",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_reply_and_is_logged(service, name):
    slack_asker = Asker(user_id="U0ASKER01", surface="mention", channel_id="C0GENERAL")
    answer = service.asking.ask(BAD_INPUTS[name], slack_asker if name == "slack-markup" else ASKER)
    assert answer.interaction_id is not None
    record = service.records.interaction(answer.interaction_id)
    assert record.question_chars == len(BAD_INPUTS[name]) and len(record.question) <= 4000
    if name in ("empty", "whitespace"):
        assert answer.outcome == "empty" and answer.notices
    elif name == "emoji":
        assert answer.outcome == "no_words" and answer.notices
    elif name == "huge":
        assert answer.answered and any("long" in n for n in answer.notices)
    elif name == "slack-markup":
        assert "@" not in answer.question and "channel" not in answer.question
        assert "vpn token" in answer.question and "#it-help" in answer.question
        assert answer.sources[0].path == "it/vpn-token.md"
    elif name == "control-chars":
        assert "\x00" not in answer.question and "\x1b" not in answer.question


def test_question_cleaning():
    q = prepare("<@U123|bob> hi <!here> see <https://x.example/a|the page> &amp; <mailto:a@b.c> :wave:")
    assert q.text == "hi see the page & mailto:a@b.c"
    assert prepare("").problem == "empty" and prepare("?!").problem == "no_words"
    assert prepare("Привет, как дела").non_latin and not prepare("café crème").non_latin


@pytest.mark.parametrize(
    "text, other",
    [
        ("wie viele Urlaubstage habe ich im Jahr", True),
        ("combien de jours de congé pour un déménagement", True),
        ("cómo pido mis vacaciones", True),
        ("how do i reset my vpn token", False),
        ("die cast tool for the van", False),
        ("la la land parking rules", False),
    ],
)
def test_a_question_in_another_language_is_recognised(text, other):
    assert prepare(text).other_language is other


def test_a_declined_question_in_german_gets_the_language_note(service):
    answer = service.asking.ask("wie viele Urlaubstage habe ich im Jahr", ASKER)
    assert not answer.answered
    assert any("English" in notice for notice in answer.notices)


# --- the interaction log ----------------------------------------------------------------------------


def test_every_question_is_logged_with_sources(service):
    answer = service.asking.ask("lockout tagout steps before working on a breaker panel", ASKER)
    record = service.records.interaction(answer.interaction_id)
    assert record.user_id == "U0ASKER01" and record.team_id == "default" and record.channel_id == "C0GENERAL"
    assert record.surface == "cli" and record.answered == answer.answered
    assert record.confidence == pytest.approx(answer.confidence)
    assert record.index_version == service.retriever.version().version
    assert record.latency_ms > 0 and record.created_at.tzinfo is not None
    assert [(s.rank, s.path) for s in record.sources] == [(s.rank, s.path) for s in answer.sources]
    assert record.sources[0].path == "safety/loto.md"
    assert set(record.features) >= {"cosine", "keyword", "known_terms"}


def test_one_vote_per_person_and_it_can_change(service):
    answer = service.asking.ask("vpn token reset", ASKER)
    service.records.vote(answer.interaction_id, "U0ASKER01", helpful=True)
    service.records.vote(answer.interaction_id, "U0ASKER01", helpful=False, comment="I needed the portal address")
    service.records.vote(answer.interaction_id, "U0OTHER01", helpful=True)
    with service.database.session() as session:
        votes = session.scalars(select(Vote).order_by(Vote.user_id)).all()
        assert [(v.user_id, v.helpful, v.comment) for v in votes] == [
            ("U0ASKER01", False, "I needed the portal address"),
            ("U0OTHER01", True, None),
        ]


def test_nothing_is_lost_while_the_database_is_down(corpus, embedder, tmp_path):
    settings = load_settings(home=tmp_path / "home")
    db_file = tmp_path / "db" / "moment.db"
    # A PostgreSQL server that is not running: connections are refused.
    down = Database("postgresql+psycopg://postgres@127.0.0.1:9/moment?connect_timeout=2")
    service = MomentService(settings, down, Retriever(corpus, embedder))
    first = service.asking.ask("vpn token reset", ASKER)
    assert first.answered and first.interaction_id is None  # answered anyway
    service.asking.ask("mileage rate", ASKER)
    assert service.records.spool.pending() == 2

    up = Database(f"sqlite:///{db_file}")
    up.upgrade()
    service.records.database = up  # the database answers again: records go to it, the spool first
    third = service.asking.ask("lockout tagout", ASKER)
    assert third.interaction_id is not None and service.records.spool.pending() == 0
    with up.session() as session:
        questions = session.scalars(select(Interaction.question).order_by(Interaction.id)).all()
    assert questions == ["vpn token reset", "mileage rate", "lockout tagout"]


# --- snippets and links ------------------------------------------------------------------------------


def test_snippet_is_the_matching_sentences_not_the_whole_chunk():
    text = (
        "Intro sentence that says nothing. Another filler sentence here. "
        "The fuel card PIN is on your payslip. Closing words."
    )
    ids = {"fuel": 1, "card": 2, "pin": 3}

    def term_ids(texts):
        return [[ids[w] for w in t.lower().replace(".", "").split() if w in ids] for t in texts]

    long = text + " " + "Padding sentence number one. " * 20
    assert snippet(long, [1, 2, 3], term_ids).startswith("The fuel card PIN is on your payslip.")


def test_a_snippet_shows_the_bullet_that_answers_and_never_opens_mid_thought():
    ids = {"daily": 1, "limit": 2, "speeds": 3, "hot": 4}

    def term_ids(texts):
        return [[ids[w] for w in t.lower().replace(".", "").split() if w in ids] for t in texts]

    facts = "Using the card:\n- Enter the mileage.\n- The daily limit is 150 pounds.\n- EV vans use the charge card."
    assert snippet(facts, [1, 2], term_ids) == "- The daily limit is 150 pounds."
    steps = "To resync:\n1. Open the portal.\n2. Check the daily limit.\n3. Sign in."
    assert snippet(steps, [1, 2], term_ids).startswith("1. Open the portal.")
    cues = (
        "Connect the hoses.\nOn a hot day put the cylinder in cold water.\nThat speeds things up a lot.\nThen close it."
    )
    assert snippet(cues, [3], term_ids).startswith("On a hot day put the cylinder in cold water.\nThat speeds")
    assert snippet("Connect the hoses.\nIT speeds things up.", [3], term_ids) == "IT speeds things up."


def test_deep_links():
    assert deep_link("https://v.example/x", None, None, 75.4) == "https://v.example/x#t=75"
    assert (
        deep_link("https://www.youtube.com/watch?v=abc", None, None, 12) == "https://www.youtube.com/watch?v=abc&t=12"
    )
    assert deep_link("https://d.example/a.pdf", "page=2", 2, None) == "https://d.example/a.pdf#page=2"
    assert deep_link("https://d.example/a", "steps", None, None) == "https://d.example/a#steps"
    assert deep_link(None, "steps", None, None) is None


# --- the CLI contracts ---------------------------------------------------------------------------------


def _cli(*args, home: Path, index: Path | None = None, stdin: str | None = None):
    env = {**os.environ, "MOMENT_HOME": str(home), "MOMENT_MODEL_CACHE": str(MODEL_CACHE)}
    if index is not None:
        env["MOMENT_INDEX_DIR"] = str(index)
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, input=stdin
    )


@pytest.mark.slow
def test_cli_ask_json_contract(corpus, tmp_path):
    result = _cli("ask", "how do I check the van tyres", "--json", home=tmp_path, index=corpus.root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data["answered"], bool) and isinstance(data["confidence"], float)
    source = data["sources"][0]
    assert set(source) >= {"path", "title", "type", "url", "score", "snippet", "start_seconds"}
    assert source["path"] == "videos/van-inspection.vtt" and source["start_seconds"] == 6.0
    human = _cli("ask", "how do I check the van tyres", home=tmp_path, index=corpus.root)
    assert "Video: Daily van inspection › at 0:06" in human.stdout
    with Database(f"sqlite:///{tmp_path / 'moment.db'}").session() as session:
        assert session.scalar(select(func.count(Interaction.id))) == 2


def test_cli_ask_without_an_index(tmp_path):
    result = _cli("ask", "anything", home=tmp_path, index=tmp_path / "empty-index")
    assert result.returncode == 4 and "moment index" in result.stderr  # no index: exit status 4


@pytest.mark.slow
def test_cli_eval_reports_every_figure(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    rows = [
        {"question": "vpn token wont work", "gold": ["it/vpn-token.md"]},
        {"question": "how much per mile for my car", "gold": ["hr/mileage.md"]},
        {"question": "who won the world cup", "gold": []},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = _cli("eval", str(questions), "--json", home=tmp_path, index=corpus.root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("recall@1", "recall@5", "mrr@10", "answered_when_answerable", "declined_when_unanswerable"):
        assert key in data
    # The reader is on by default; the same run measures Moment without it.
    assert set(data["systems"]) == {"moment", "moment-retrieval", "bm25", "dense"}
    assert "first_passage_right" in data and data["reader"]["on"] is True
    assert [q["moment_rank"] for q in data["per_question"]] == [1, 1, None]
    assert data["declined_by_kind"] == {"unlabelled": {"declined": 1, "questions": 1}}


def test_coverage_counts_each_documents_share_of_the_question(corpus):
    version = corpus.open()
    docs = {d.path: i for i, d in enumerate(version.documents)}
    starts = np.array([d.chunk_start for d in version.documents])
    counts = np.array([d.chunk_count for d in version.documents])
    coverage = version.keywords.coverage_by_document(["padlock", "breaker"], starts, counts)
    assert coverage[docs["safety/loto.md"]] == pytest.approx(1.0)
    assert coverage[docs["it/vpn-token.md"]] == 0.0
    # "breaker" alone: only the lockout page; the share is per document, whichever chunk holds the word.
    assert version.keywords.coverage_by_document(["breaker"], starts, counts).tolist() == [
        1.0 if path == "safety/loto.md" else 0.0 for path in docs
    ]
    # A word the content never uses weighs the most: "bereavement" leaves the padlock page below half.
    partial = version.keywords.coverage_by_document(["bereavement", "padlock"], starts, counts)
    assert 0.0 < partial[docs["safety/loto.md"]] < 0.5
    assert not version.keywords.coverage_by_document([], starts, counts).any()


def test_misspelt_words_count_as_the_word_meant(corpus, embedder):
    keywords = corpus.open().keywords
    right, typo = keywords.query_terms("expensify password"), keywords.query_terms("expensfy pasword")
    assert typo == right and len(right) == 2
    # As typed, the misspellings are unknown words (the plain BM25 baseline keeps them so).
    assert keywords.query_terms("expensfy pasword", fuzzy=False) == []
    # Short words are taken as written; so is a word two slips from anything the content uses.
    assert keywords.resolve(["pin", "bereavement"]) == [None, None]
    assert keywords.known_share(["pasword", "bereavement"]) == 0.5
    hits = Retriever(corpus, embedder).search("my pasword expird").hits
    assert hits[0].doc.path == "it/password.md" and hits[0].keyword > 0


def test_a_real_word_the_content_does_not_use_is_not_taken_for_a_typo(corpus):
    keywords = corpus.open().keywords
    vocabulary = keywords._tokenizer.stem_to_sid
    # "chance" is one edit from the content's "change" (stems "chanc" / "chang"), "chamge" a slip for it:
    # only the slip is corrected. An English word means itself, and the content does not use it.
    assert keywords.resolve(["chamge"]) == [vocabulary["chang"]]
    assert keywords.resolve(["chance", "bleaker"]) == [None, None]
    assert keywords.known_share(["chance", "change"]) == 0.5
    # The content's own word in the other spelling is the same word: "tire" is the video's "tyre".
    assert keywords.resolve(["tire", "tires"]) == [vocabulary["tyre"]] * 2
    assert keywords.query_terms("tire chance") == [vocabulary["tyre"]]


def test_a_documents_score_is_its_cosine_plus_weighted_keyword_and_coverage(corpus, embedder):
    plain = Retriever(corpus, embedder, RetrievalParams(keyword_weight=0.0, coverage_weight=0.0))
    fused = Retriever(corpus, embedder, RetrievalParams(keyword_weight=0.5, coverage_weight=1.0))
    question = "submit expensify claim"
    a, b = plain.search(question), fused.search(question)
    assert [h.score for h in a.hits] == pytest.approx([h.cosine for h in a.hits])
    top = b.hits[0]
    # Only the mileage page holds "expensify" and "submit"; it has the best BM25, so its share is 1.
    assert top.doc.path == "hr/mileage.md" and top.coverage == pytest.approx(1.0)
    assert top.score == pytest.approx(top.cosine + 0.5 + 1.0)
    for hit in b.hits[1:]:
        assert hit.coverage < 0.5
        assert hit.score == pytest.approx(hit.cosine + 0.5 * hit.keyword / top.keyword + hit.coverage)


@pytest.mark.slow
def test_calibration_chooses_weights_and_a_threshold_that_separates(corpus, embedder):
    questions = [
        EvalQuestion("vpn token wont work", ("it/vpn-token.md",)),
        EvalQuestion("token code keeps changing cant log in", ("it/vpn-token.md",)),
        EvalQuestion("how much per mile for my car", ("hr/mileage.md",)),
        EvalQuestion("mileage claim deadline", ("hr/mileage.md",)),
        EvalQuestion("password expired", ("it/password.md",)),
        EvalQuestion("what do i lock before working on a panel", ("safety/loto.md",)),
        EvalQuestion("tyre tread check on the van", ("videos/van-inspection.vtt",)),
        EvalQuestion("who won the world cup", ()),
        EvalQuestion("best pizza near the office", ()),
        EvalQuestion("how tall is mount everest", ()),
    ]
    params = calibrate(Retriever(corpus, embedder), questions)
    assert params["keyword_weight"] in KEYWORD_WEIGHTS and params["coverage_weight"] in COVERAGE_WEIGHTS
    assert set(params["weights"]) == set(FEATURES)
    tuned = Retriever(corpus, embedder, RetrievalParams.from_dict(params))
    report = evaluate(tuned, questions, ["moment"])
    moment = report.systems["moment"]
    assert moment.recall_at_1 == 1.0
    assert moment.answered_when_answerable == 1.0 and moment.declined_when_unanswerable == 1.0


@pytest.mark.slow
def test_calibration_pools_the_development_sets_it_is_given(corpus, embedder):
    """The questions without an answer are all in the second set: calibrated on the first alone nothing
    would teach it to decline, pooled it declines them."""
    answerable = [
        EvalQuestion("vpn token wont work", ("it/vpn-token.md",)),
        EvalQuestion("how much per mile for my car", ("hr/mileage.md",)),
        EvalQuestion("password expired", ("it/password.md",)),
        EvalQuestion("tyre tread check on the van", ("videos/van-inspection.vtt",)),
    ]
    elsewhere = [
        EvalQuestion("mileage claim deadline", ("hr/mileage.md",)),
        EvalQuestion("who won the world cup", ()),
        EvalQuestion("best pizza near the office", ()),
        EvalQuestion("how tall is mount everest", ()),
    ]
    retriever = Retriever(corpus, embedder)
    with pytest.raises(ValueError, match="these have 4 with and 0 without"):
        calibrate(retriever, answerable)
    pooled = calibrate(retriever, answerable, also=[(corpus, elsewhere)])
    assert pooled["calibrated_on"] == {"questions": 8, "answerable": 5, "sets": 2}
    report = evaluate(Retriever(corpus, embedder, RetrievalParams.from_dict(pooled)), elsewhere, ["moment"])
    assert report.systems["moment"].declined_when_unanswerable == 1.0
    assert report.systems["moment"].answered_when_answerable == 1.0


@pytest.mark.slow
def test_the_threshold_is_the_first_sets_when_it_has_both_kinds(corpus, embedder):
    """The second set says the first set's answerable questions have no answer (as if its content lacked
    those pages): pooled, no threshold could answer them; chosen on the first set, all are answered."""
    main = [
        EvalQuestion("vpn token wont work", ("it/vpn-token.md",)),
        EvalQuestion("how much per mile for my car", ("hr/mileage.md",)),
        EvalQuestion("password expired", ("it/password.md",)),
        EvalQuestion("who won the world cup", ()),
        EvalQuestion("best pizza near the office", ()),
    ]
    contrary = [EvalQuestion(q.question, ()) for q in main[:3]] * 3
    retriever = Retriever(corpus, embedder)
    params = calibrate(retriever, main, also=[(corpus, contrary)])
    moment = evaluate(Retriever(corpus, embedder, RetrievalParams.from_dict(params)), main, ["moment"]).systems
    assert moment["moment"].answered_when_answerable == 1.0
    assert moment["moment"].declined_when_unanswerable == 1.0
