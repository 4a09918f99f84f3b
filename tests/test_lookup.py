"""Look-up tables: a question naming a row's code or size gets that row, and one naming a code the table
lacks is declined, on a real index (the real model, FAISS, BM25) with the reader on and off."""

from __future__ import annotations

import pytest

from assistant.answering.lookup import lookup, question_keys, tables
from assistant.answering.reader.model import load_reader
from assistant.answering.reader.reading import PassageReader
from assistant.answering.retrieval import RetrievalParams, Retriever
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.settings import load_settings
from indexer.build import build_index
from indexer.documents import Chunk

ASKER = Asker(user_id="U0ASKER01", surface="cli", channel_id="C0GENERAL")
CODES = [(f"E{n:02d}", f"Sensor S{n} reads out of range", f"Check plug CN{n} on the main board") for n in range(1, 41)]
CODES[16] = ("E17", "Return temperature sensor fault", "Check sensor T2 on the return pipe")


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    from conftest import ContentFolder

    from indexer.store import IndexStore

    root = tmp_path_factory.mktemp("lookup")
    content = ContentFolder(root / "content")
    table = "\n".join(f"| {code} | {meaning} | {check} |" for code, meaning, check in CODES)
    body = [
        "Codes shown on the Zephyr ZC-300 wall controller. The code flashes with a red triangle; press OK for",
        "5 seconds to see the last 10 codes.",
        "",
        "## Unit codes",
        "",
        "| Code | Meaning | First checks |",
        "|------|---------|--------------|",
        table,
        "",
        "## Resetting",
        "",
        "Isolate the unit for 2 minutes and switch it back on. If a code returns 3 times in a day, call support.",
    ]
    content.markdown(
        "field/codes.md",
        "Zephyr heat pump controller error codes",
        "\n".join(body) + "\n",
        type_="reference",
        url="https://intranet.example/codes",
    )
    content.markdown(
        "field/display.md",
        "Zephyr controller display",
        """
        The Zephyr controller's display shows the flow temperature, the mode and the time. A snowflake
        means the unit is defrosting.
        """,
        type_="procedure",
    )
    content.markdown(
        "field/torque.md",
        "Torque settings for flare nuts",
        """
        Use a calibrated torque wrench. Never guess the torque.

        ## Flare nuts

        | Pipe outside diameter | Torque (Nm) |
        |---|---|
        | 1/4 inch (6.35 mm) | 14-18 |
        | 3/8 inch (9.52 mm) | 34-42 |
        | 1/2 inch (12.7 mm) | 49-61 |
        | 5/8 inch (15.88 mm) | 68-82 |
        """,
        type_="reference",
    )
    content.markdown(
        "hr/holiday.md",
        "Holiday entitlement",
        """
        ## How many days

        | Completed years of service | Days of annual leave |
        |---|---|
        | Less than 2 years | 25 |
        | 2 to 4 years | 26 |
        | 5 to 9 years | 27 |
        | 10 years or more | 28 |
        """,
        type_="reference",
    )
    store = IndexStore(root / "index")
    build_index(content.root, store, embedder)
    return store


@pytest.fixture(scope="module", params=["reader", "no reader"])
def service(request, index, embedder, tmp_path_factory, database) -> MomentService:
    reader = PassageReader(load_reader()) if request.param == "reader" else None
    params = RetrievalParams.calibrated(reader=reader is not None)
    settings = load_settings(home=tmp_path_factory.mktemp("home"), index_dir_override=index.root)
    return MomentService(settings, database, Retriever(index, embedder, params, reader=reader))


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """SQLite for the log (the look-up is retrieval's; the databases are tested elsewhere)."""
    from assistant.db.database import Database

    db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'moment.db'}")
    db.upgrade()
    yield db
    db.dispose()


def test_a_code_the_table_lists_is_answered_with_its_row_under_the_header(service, index):
    # The table is cut between chunks: E17's row sits in a later chunk than the header row.
    chunks = [c.chunk for c in index.open().document_chunks("field/codes.md")]
    assert not any("E17 |" in c.text for c in chunks if c.text.startswith("Codes shown")), "table not cut"
    answer = service.asking.ask("controller flashing e17 what does it mean", ASKER)
    assert answer.answered
    best = answer.sources[0]
    assert best.path == "field/codes.md"
    assert (
        best.snippet
        == "Code | Meaning | First checks\nE17 | Return temperature sensor fault | Check sensor T2 on the return pipe"
    )
    assert best.url == "https://intranet.example/codes#unit-codes"
    assert len(answer.sources) == 1  # the row named is the answer: no "also see"
    # Written as a person might: no leading zero.
    assert (
        service.asking.ask("what is error E5", ASKER)
        .sources[0]
        .snippet.endswith("E05 | Sensor S5 reads out of range | Check plug CN5 on the main board")
    )


def test_a_code_the_table_does_not_list_is_declined_and_the_page_offered(service):
    answer = service.asking.ask("controller flashing e45 what does it mean", ASKER)
    assert not answer.answered and answer.offer_mentor
    assert answer.sources and answer.sources[0].path == "field/codes.md"  # possibly related
    assert answer.confidence <= service.retriever.params.related_threshold
    # Why, in the content's terms, with the key as the asker wrote it.
    assert answer.notices == ["“Zephyr heat pump controller error codes” has no row for e45."]
    sizes = service.asking.ask("torque for a 7/8 flare nut", ASKER)
    assert not sizes.answered
    assert sizes.notices == ["“Torque settings for flare nuts” has no row for 7/8."]
    listed = service.asking.ask("torque for a 3/8 flare nut", ASKER)
    assert (
        listed.answered
        and listed.sources[0].snippet == "Pipe outside diameter | Torque (Nm)\n3/8 inch (9.52 mm) | 34-42"
    )


def test_a_key_the_page_mentions_outside_its_tables_is_no_missing_code(service):
    # "ZC300" is the controller the page is about (written "ZC-300" there), not a code the table lacks.
    result = service.retriever.search("zc300 fault history")
    assert result.hits[0].doc.path == "field/codes.md"
    assert "lookup" not in result.features


def test_plain_numbers_are_not_keys(service):
    # Tables list numbers as ranges: 6 years is in "5 to 9 years", not a missing row.
    assert question_keys("days holiday after 6 years") == set()
    result = service.retriever.search("days holiday after 6 years")
    assert "lookup" not in result.features


def _chunk(position: int, text: str) -> Chunk:
    return Chunk(doc_path="a.md", position=position, heading_path=("Codes",), text=text, anchor="codes")


def test_a_table_continued_in_the_next_chunk_is_one_table():
    first = _chunk(0, "Intro line.\nCode | Meaning\nA1 | One\nA2 | Two")
    second = _chunk(1, "Code | Meaning\nA3 | Three\nA4 | Four\nAfter the table.")
    [table] = tables([first, second])
    assert [row for row, _ in table.rows] == ["A1 | One", "A2 | Two", "A3 | Three", "A4 | Four"]
    found = lookup("what is a4", [first, second])
    assert found.passage == "Code | Meaning\nA4 | Four" and found.chunk is second
    # A table of fewer than three rows, or of words, is no look-up table.
    assert tables([_chunk(0, "Code | Meaning\nA1 | One\nA2 | Two")]) == []
    assert tables([_chunk(0, "Role | Duty\nHost | Opens\nScribe | Notes\nChair | Leads")]) == []
    assert lookup("what is a9", [first, second]).missing == ("a9",)
