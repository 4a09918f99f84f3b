"""Safety content first: `lead:` names the section shown when the page is best but its passage uncertain."""

from __future__ import annotations

import pytest

from assistant.answering.lead import apply_lead, uncertain
from assistant.answering.outline import page_outline
from assistant.answering.reader.model import load_reader
from assistant.answering.reader.reading import PassageReader
from assistant.answering.retrieval import Retriever
from indexer.build import build_index
from indexer.sources import discover, load

GAS = """
# Smell of gas on site
If you smell gas at a customer site, follow this procedure. Your safety comes before the job.
## Immediate actions
1. Stop work at once.
2. Do not operate any electrical switches, and no naked flames.
3. Get everyone out of the building and leave the doors open.
## Call for help
From outside, call the gas emergency line on 0800 111 999 and then your supervisor.
## While you wait
Do not let the customer turn the gas back on. Only a registered engineer may do this.
"""


@pytest.fixture(scope="module")
def reader():
    return load_reader()


def _loaded(content, rel):
    (source,) = [s for s in discover(content.root, 10_000_000, [])[0] if s.path == rel]
    return load(source)


def test_lead_names_a_heading_of_the_page_any_case_or_level(content):
    content.markdown("safety/gas.md", "Smell of gas on site", GAS, lead="immediate  ACTIONS")
    content.markdown(
        "safety/lone.md",
        "Lone working",
        "## If you feel threatened\n### Leaving\nLeave at once.\n",
        lead="If you feel threatened > Leaving",
    )
    gas = _loaded(content, "safety/gas.md")
    assert gas.meta.lead == ("Immediate actions",) and not gas.warnings
    assert _loaded(content, "safety/lone.md").meta.lead == ("If you feel threatened", "Leaving")


def test_a_lead_that_is_no_heading_is_a_warning_naming_the_pages_headings(content, store, embedder):
    content.markdown("safety/gas.md", "Smell of gas on site", GAS, lead="Immediate action")
    gas = _loaded(content, "safety/gas.md")
    assert gas.meta.lead == ()
    (warning,) = gas.warnings
    assert "`lead` 'Immediate action' is not a heading of this page" in warning
    assert "'Immediate actions'; 'Call for help'; 'While you wait'" in warning
    report = build_index(content.root, store, embedder)
    assert any("Immediate action'" in w.reason for w in report.warnings)  # `moment index` lists it


def test_the_lead_is_kept_in_the_index(content, store, embedder):
    content.markdown("safety/gas.md", "Smell of gas on site", GAS, lead="Immediate actions")
    content.markdown("safety/ladders.md", "Ladders", "## Before you climb\nCheck the feet and the rungs.\n")
    build_index(content.root, store, embedder)
    version = store.open()
    assert version.by_path["safety/gas.md"].meta.lead == ("Immediate actions",)
    assert version.by_path["safety/ladders.md"].meta.lead == ()


def test_an_uncertain_passage_gives_way_to_the_lead_section_a_clear_one_does_not(content, store, embedder, reader):
    content.markdown(
        "safety/gas.md", "Smell of gas on site", GAS, lead="Immediate actions", url="https://i.example/gas"
    )
    content.markdown("safety/ladders.md", "Ladders", "## Before you climb\nCheck the feet and the rungs.\n")
    build_index(content.root, store, embedder)
    retriever = Retriever(store, embedder, reader=PassageReader(reader))
    version = retriever.version()
    result = retriever.search("who do I phone about a gas leak")
    hit = result.hits[0]
    assert hit.doc.path == "safety/gas.md" and "0800 111 999" in hit.passage  # clear: the number, not the steps
    read = sorted(w.logit for w in hit.windows if w.logit != float("-inf"))
    assert not uncertain(hit, margin=read[-1] - read[-2] - 1e-6)
    assert not apply_lead(hit, version, margin=0.0) and "0800 111 999" in hit.passage
    # The same page when the reader cannot tell its passages apart: the lead section, whole, linked to it.
    assert uncertain(hit, margin=read[-1] - read[-2] + 1e-6)
    assert apply_lead(hit, version, margin=100.0)
    assert hit.chunk.heading_path == ("Immediate actions",)
    assert hit.passage.startswith("1. Stop work at once.") and "3. Get everyone out" in hit.passage
    assert "0800" not in hit.passage
    # The reader's own choice is then one click away.
    outline = page_outline(result, version, version.keywords.passage_terms)
    assert any("0800 111 999" in e.snippet for e in outline)
    assert not apply_lead(hit, version, margin=100.0)  # already in the lead section


def test_without_the_reader_the_passage_is_left_alone(content, store, embedder):
    content.markdown("safety/gas.md", "Smell of gas on site", GAS, lead="Immediate actions")
    content.markdown("safety/ladders.md", "Ladders", "## Before you climb\nCheck the feet and the rungs.\n")
    build_index(content.root, store, embedder)
    retriever = Retriever(store, embedder)
    hit = retriever.search("who do I phone about a gas leak").hits[0]
    assert not uncertain(hit, margin=100.0) and not apply_lead(hit, retriever.version(), margin=100.0)
