"""The indexer on real files, the real model and real FAISS."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from indexer import sources
from indexer.build import build_index
from indexer.documents import ContentError
from indexer.store import IndexMissingError

ROOT = Path(__file__).resolve().parent.parent

PROCEDURE = """
# Travel and expenses

Intro paragraph about claiming costs.

## Mileage

You may claim mileage for your own car.

### Rates

Own car: 67 cents per mile. Motorbike: 30 cents per mile.

### Exceptions

Company vans never earn mileage.

## Meals

Per diem is 45 dollars a day.
"""


def _search(store, embedder, text: str, k: int = 3) -> list[str]:
    version = store.open()
    _, ids = version.dense.search(embedder.encode([text]), k)
    chunks = version.chunks([int(i) for i in ids[0] if i >= 0])
    return [chunks[int(i)].chunk.doc_path for i in ids[0] if i >= 0]


# --- loaders --------------------------------------------------------------------------------------


def test_markdown_heading_paths_and_anchors(content, store, embedder):
    content.markdown("hr/expenses.md", "Travel and expenses", PROCEDURE, type_="procedure", tags="[expenses, mileage]")
    report = build_index(content.root, store, embedder)
    assert report.ok and report.added == ["hr/expenses.md"]
    version = store.open()
    chunks = [c.chunk for c in version.document_chunks("hr/expenses.md")]
    paths = [c.heading_path for c in chunks]
    # The H1 repeats the title, so it is not part of any heading path.
    assert paths == [(), ("Mileage",), ("Mileage", "Rates"), ("Mileage", "Exceptions"), ("Meals",)]
    assert [c.anchor for c in chunks][1:] == ["mileage", "rates", "exceptions", "meals"]
    assert "67 cents per mile" in chunks[2].text
    doc = version.by_path["hr/expenses.md"]
    assert doc.meta.type == "procedure" and doc.meta.tags == ("expenses", "mileage")
    assert [c.position for c in chunks] == list(range(5))


def test_markdown_lists_tables_and_formatting_become_plain_text(content):
    path = content.markdown(
        "a.md",
        "Parts",
        """
        ## Steps
        1. Open **PartsHub**.
        2. Click [New order](https://x.example/new).

        | Part | Code |
        |------|------|
        | Filter | F-100 |
        """,
    )
    doc = sources.load(sources.SourceFile("a.md", path, None, path.stat().st_size, "x"))
    blocks = doc.sections[0].blocks
    assert blocks == ("1. Open PartsHub.", "2. Click New order.", "Part | Code", "Filter | F-100")


def test_html_keeps_text_and_headings_not_markup(content, store, embedder):
    content.write(
        "it/laptop.html",
        """
        <html><head><title>Laptop care</title><style>.x{color:red}</style>
        <script>var tracking = "do not index me";</script></head>
        <body><nav><a href="/">Home</a> | <a href="/it">IT</a></nav>
        <h1>Laptop care</h1><p>Keep it charged.</p>
        <h2 id="battery">Battery</h2><p>Replace after <b>three</b> years.</p>
        <ul><li><p>Do not leave it in the van.</p></li></ul>
        <table><tr><th>Model</th><th>Life</th></tr><tr><td>X1</td><td>3 years</td></tr></table>
        <footer>Copyright Brightline</footer></body></html>
        """,
    )
    content.write("it/laptop.yml", "type: reference\nowner: U0TESTOWN1\ntags: [laptop]\n")
    report = build_index(content.root, store, embedder)
    assert report.ok, report.failed
    version = store.open()
    doc = version.by_path["it/laptop.html"]
    assert doc.meta.title == "Laptop care" and doc.meta.type == "reference"
    chunks = [c.chunk for c in version.document_chunks("it/laptop.html")]
    text = "\n".join(c.text for c in chunks)
    assert "tracking" not in text and "color" not in text and "Home" not in text and "Copyright" not in text
    assert "Replace after three years." in text and "- Do not leave it in the van." in text
    assert "Model | Life" in text and "X1 | 3 years" in text
    assert ("Battery",) in [c.heading_path for c in chunks]
    assert [c.anchor for c in chunks if c.heading_path == ("Battery",)] == ["battery"]


def test_plain_text_with_sidecar(content, store, embedder):
    content.write("oncall.txt", "On-call numbers\n\nHVAC: 555-0100.\n\nFibre: 555-0101.\n")
    content.write("oncall.yml", "title: On-call phone list\ntype: reference\nowner: U0TESTOWN1\n")
    report = build_index(content.root, store, embedder)
    assert report.ok
    doc = store.open().by_path["oncall.txt"]
    assert doc.meta.title == "On-call phone list"


def test_pdf_text_per_page(content, store, embedder):
    from fpdf import FPDF

    pdf = FPDF()
    for page_text in ("Rescue plan: call 911 first.", "Suspension trauma sets in within 15 minutes."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 10, page_text)
    content.write("safety/rescue.pdf", bytes(pdf.output()))
    content.write("safety/rescue.yml", "title: Working at heights rescue plan\ntype: procedure\nowner: U0TESTOWN1\n")
    report = build_index(content.root, store, embedder)
    assert report.ok, report.failed
    chunks = [c.chunk for c in store.open().document_chunks("safety/rescue.pdf")]
    assert [(c.page, c.heading_path) for c in chunks] == [(1, ("Page 1",)), (2, ("Page 2",))]
    assert "15 minutes" in chunks[1].text and chunks[1].anchor == "page=2"


def test_transcripts_keep_start_and_end_times(content, store, embedder):
    cues = "".join(
        f"00:00:{i * 5:02d}.000 --> 00:00:{i * 5 + 4:02d}.500\nSentence number {i} about checking tyre tread depth.\n\n"
        for i in range(12)
    )
    content.write("videos/van.vtt", "WEBVTT\n\n" + cues)
    content.write(
        "videos/van.yml",
        "title: Van inspection\nurl: https://learn.example.com/v/van\nowner: U0TESTOWN1\nduration: 60\n",
    )
    srt_cues = "".join(
        f"{i + 1}\n00:01:{i * 4:02d},250 --> 00:01:{i * 4 + 3:02d},000\nRefrigerant logging line {i}.\n\n"
        for i in range(5)
    )
    content.write("videos/gas.srt", srt_cues)
    content.write("videos/gas.yml", "title: Refrigerant log\nurl: https://learn.example.com/v/gas\nowner: U0TESTOWN1\n")
    report = build_index(content.root, store, embedder)
    assert report.ok, report.failed
    version = store.open()
    van = [c.chunk for c in version.document_chunks("videos/van.vtt")]
    assert van[0].start_seconds == 0.0 and van[-1].end_seconds == 59.5
    assert all(a.end_seconds <= b.start_seconds for a, b in itertools.pairwise(van))
    gas = [c.chunk for c in version.document_chunks("videos/gas.srt")]
    assert gas[0].start_seconds == 60.25 and gas[-1].end_seconds == 79.0
    assert "line 0" in gas[0].text and "line 4" in gas[-1].text
    assert version.by_path["videos/gas.srt"].meta.type == "video"


def test_no_chunk_is_truncated_by_the_model(content, store, embedder):
    long_paragraph = " ".join(f"Step {i}: tighten the compression fitting by a quarter turn." for i in range(150))
    content.markdown("long.md", "A very long procedure", f"## Fittings\n\n{long_paragraph}\n", type_="procedure")
    build_index(content.root, store, embedder)
    version = store.open()
    chunks = [c.chunk for c in version.document_chunks("long.md")]
    assert len(chunks) > 5
    sizes = embedder.count_tokens([c.search_text("A very long procedure") for c in chunks])
    assert max(sizes) <= 256
    # Nothing was dropped on the way: every step is in some chunk, once.
    joined = " ".join(c.text for c in chunks)
    assert all(f"Step {i}:" in joined for i in range(150))


def test_a_table_cut_between_chunks_repeats_its_header_row(content, store, embedder):
    rows = "\n".join(
        f"| E{i:02d} | Sensor {i} fault on the outdoor unit | Check plug CN{i} and its wiring |" for i in range(40)
    )
    table = f"| Code | Meaning | First checks |\n|---|---|---|\n{rows}\n\nReset the unit after any fix."
    content.markdown("codes.md", "Error codes", f"## Outdoor unit codes\n\n{table}\n", type_="reference")
    build_index(content.root, store, embedder)
    chunks = [c.chunk for c in store.open().document_chunks("codes.md")]
    assert len(chunks) > 2
    for chunk in chunks:
        lines = chunk.text.split("\n")
        if any(line.startswith("E") for line in lines):
            assert lines[0] == "Code | Meaning | First checks", chunk.text
    # Every row is there once, and the header is not repeated before the text that follows the table.
    joined = "\n".join(c.text for c in chunks).split("\n")
    assert [line.split(" | ")[0] for line in joined if line.startswith("E")] == [f"E{i:02d}" for i in range(40)]
    assert chunks[-1].text.split("\n")[-1] == "Reset the unit after any fix."
    sizes = embedder.count_tokens([c.search_text("Error codes") for c in chunks])
    assert max(sizes) <= 256


# --- incremental builds and publishing ----------------------------------------------------------


def test_changing_one_file_re_embeds_only_that_file(content, store, embedder):
    for i in range(6):
        content.markdown(f"doc{i}.md", f"Document {i}", f"## Part\n\nThe text of document {i} about topic {i}.\n")
    first = build_index(content.root, store, embedder)
    assert first.embedded_chunks == 6 and len(first.added) == 6

    content.markdown("doc3.md", "Document 3", "## Part\n\nNew text about forklift licences.\n\n## More\n\nAnd more.\n")
    second = build_index(content.root, store, embedder)
    assert second.changed == ["doc3.md"]
    assert second.embedded_chunks == 2  # only doc3's two chunks
    assert sorted(second.unchanged) == [f"doc{i}.md" for i in range(6) if i != 3]
    assert second.version != first.version and second.previous_version == first.version
    # Reused vectors are identical to the ones embedded before.
    old, new = store.open(first.version), store.open(second.version)
    np.testing.assert_array_equal(old.embeddings[0], new.embeddings[0])
    assert _search(store, embedder, "forklift licence")[0] == "doc3.md"

    third = build_index(content.root, store, embedder)
    assert third.embedded_chunks == 0 and not third.published and third.version == second.version


def test_removed_files_disappear_from_search(content, store, embedder):
    content.markdown("keep.md", "Timesheets", "Submit your timesheet in FieldPro every Friday.\n")
    content.markdown("gone.md", "Forklift licence", "Renew your forklift licence every three years.\n")
    build_index(content.root, store, embedder)
    assert "gone.md" in _search(store, embedder, "forklift licence renewal")
    content.remove("gone.md")
    report = build_index(content.root, store, embedder)
    assert report.removed == ["gone.md"]
    assert _search(store, embedder, "forklift licence renewal") == ["keep.md"]
    assert "gone.md" not in store.open().by_path


def test_full_rebuild_re_embeds_everything(content, store, embedder):
    content.markdown("a.md", "A", "Alpha text.\n")
    content.markdown("b.md", "B", "Beta text.\n")
    build_index(content.root, store, embedder)
    report = build_index(content.root, store, embedder, full=True)
    assert report.embedded_chunks == 2 and report.published and sorted(report.changed) == ["a.md", "b.md"]


def test_keeps_the_last_versions_only(content, tmp_path, embedder):
    from indexer.store import IndexStore

    store = IndexStore(tmp_path / "idx", keep=2)
    versions = []
    for i in range(4):
        content.markdown("a.md", "A", f"Revision {i}.\n")
        versions.append(build_index(content.root, store, embedder).version)
    assert store.versions() == versions[-2:]
    assert store.current() == versions[-1]
    store.set_current(versions[-2])  # roll back
    assert store.open().version == versions[-2]


# --- bad input --------------------------------------------------------------------------------


def test_every_bad_file_is_reported_and_the_rest_indexed(content, store, embedder):
    content.markdown("good.md", "Good", "Fine content about vans.\n")
    content.write("bad-yaml.md", "---\ntitle: Broken\ntags: [a, b\nowner: U0TESTOWN1\n---\nBody.\n")
    content.write("unknown-type.md", "---\ntitle: X\ntype: jobaid\n---\nBody.\n")
    content.write("empty.md", "")
    content.write("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    content.write("latin1.md", "---\ntitle: Caf\xe9\n---\nCaf\xe9 menu.\n".encode("latin-1"))
    content.write("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a pdf really\n%%EOF")
    content.write("broken.yml", "title: Broken PDF\n")
    with open(content.root / "huge.md", "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    content.write(
        "videos/bad-time.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nOne.\n\n00:00:xx.000 --> 00:00:08.000\nTwo.\n",
    )
    content.write("videos/bad-time.yml", "title: Bad\nurl: https://v.example/bad\n")
    content.write("videos/no-sidecar.srt", "1\n00:00:01,000 --> 00:00:02,000\nHello.\n")
    content.write("notes.docx", b"PK\x03\x04 not really a docx")
    content.write("front-only.md", "---\ntitle: Nothing here\ntype: job-aid\n---\n\n")

    report = build_index(content.root, store, embedder)
    reasons = {f.path: f.reason for f in report.failed}
    assert report.added == ["good.md"]
    assert "not valid YAML on line 4" in reasons["bad-yaml.md"]
    assert "Unknown type 'jobaid'" in reasons["unknown-type.md"]
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.md"]
    assert "not UTF-8" in reasons["latin1.md"] and "line 2" in reasons["latin1.md"]
    assert "PDF could not be read" in reasons["broken.pdf"] or "no text" in reasons["broken.pdf"]
    assert "50.0 MB" in reasons["huge.md"] and "limit is 20 MB" in reasons["huge.md"]
    assert "Line 6 has a broken timestamp" in reasons["videos/bad-time.vtt"]
    assert "add no-sidecar.yml" in reasons["videos/no-sidecar.srt"]
    assert "cannot read '.docx'" in reasons["notes.docx"]
    assert "no text" in reasons["front-only.md"]
    assert len(reasons) == 11
    assert report.published and store.open().by_path.keys() == {"good.md"}


def test_a_file_that_breaks_keeps_its_previous_version(content, store, embedder):
    content.markdown("vpn.md", "VPN token", "Reset the VPN token in the self-service portal.\n")
    content.markdown("other.md", "Other", "Something else entirely.\n")
    build_index(content.root, store, embedder)
    content.write("vpn.md", "---\ntitle: VPN token\ntype: [oops\n---\nNew body.\n")
    content.markdown("other.md", "Other", "Something else, changed.\n")
    report = build_index(content.root, store, embedder)
    assert [f.path for f in report.failed] == ["vpn.md"]
    assert "previously indexed version stays" in report.failed[0].reason
    assert report.changed == ["other.md"]
    assert _search(store, embedder, "reset VPN token")[0] == "vpn.md"


def test_srt_broken_timestamp_is_reported(content):
    path = content.write("v.srt", "1\n00:00:01,000 --> 00:00:04,000\nHello\n\n2\n00:00:04,5x0 -> 00:00:08,000\nWorld\n")
    with pytest.raises(ContentError, match="broken cue near line 5"):
        sources.parse_srt(path.read_text())


def test_soft_metadata_problems_are_warnings(content, store, embedder):
    content.write(
        "m.md",
        "---\ntype: job-aid\nowner: bob\nreviewed: last week\nurl: intranet/page\n---\n# Heading title\nBody.\n",
    )
    report = build_index(content.root, store, embedder)
    assert report.ok and report.added == ["m.md"]
    warnings = " ".join(w.reason for w in report.warnings)
    assert "using 'Heading title'" in warnings and "not a Slack user ID" in warnings
    assert "not a date" in warnings and "not a web address" in warnings
    assert store.open().by_path["m.md"].meta.title == "Heading title"


def test_missing_content_folder_and_missing_index(tmp_path, store, embedder):
    with pytest.raises(FileNotFoundError):
        build_index(tmp_path / "nope", store, embedder)
    with pytest.raises(IndexMissingError, match="moment index"):
        store.open()


# --- readers during a rebuild, and a killed build ----------------------------------------------

READER = r"""
import sys, time, numpy as np
from indexer.store import IndexStore
store = IndexStore(sys.argv[1])
deadline = time.time() + float(sys.argv[2])
seen, errors = set(), []
query = np.random.default_rng(0).standard_normal((1, 384)).astype("float32")
while time.time() < deadline:
    try:
        v = store.open()
        n = v.size
        assert v.dense.ntotal == n == len(v.embeddings) == len(v.chunk_doc), (v.dense.ntotal, n)
        assert sum(d.chunk_count for d in v.documents) == n
        _, ids = v.dense.search(query, 5)
        found = v.chunks([int(i) for i in ids[0] if i >= 0])
        assert len(found) == min(5, n)
        assert len(v.keywords.scores("tyre pressure")) == n
        seen.add(v.version)
        v.close()
    except Exception as exc:
        errors.append(repr(exc))
print(len(seen), len(errors), errors[:3])
"""


@pytest.mark.slow
def test_a_reader_never_sees_a_half_written_index(content, store, embedder):
    for i in range(30):
        content.markdown(f"d{i}.md", f"Doc {i}", f"## A\n\nTyre pressure note {i}.\n\n## B\n\nMore words {i}.\n")
    build_index(content.root, store, embedder)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(store.root), "8"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    versions = 1
    deadline = time.time() + 6
    i = 0
    while time.time() < deadline:
        content.markdown(f"d{i % 30}.md", f"Doc {i}", f"## A\n\nChanged tyre note {i}.\n" * (1 + i % 3))
        if i % 4 == 3:
            content.remove(f"d{(i + 7) % 30}.md") if (content.root / f"d{(i + 7) % 30}.md").exists() else None
        versions += build_index(content.root, store, embedder).published
        i += 1
    out, _ = reader.communicate(timeout=30)
    seen, errors, sample = out.split(" ", 2)
    assert int(errors) == 0, sample
    assert versions >= 5 and int(seen) >= 3  # the reader really saw the index change under it


@pytest.mark.slow
def test_a_killed_build_leaves_the_previous_version_serving(content, store, tmp_path):
    for i in range(150):
        content.markdown(f"d{i}.md", f"Doc {i}", f"Paragraph about topic {i}. " * 40 + "\n")
    env = {
        **os.environ,
        "MOMENT_HOME": str(tmp_path / "home"),
        "MOMENT_MODEL_CACHE": str(ROOT / ".moment" / "models"),
    }
    cmd = [
        sys.executable,
        "-m",
        "assistant.cli",
        "index",
        "--content",
        str(content.root),
        "--index",
        str(store.root),
    ]
    first = subprocess.run([*cmd, "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = json.loads(first.stdout)["version"]
    for i in range(150):
        content.markdown(f"d{i}.md", f"Doc {i}", f"Changed paragraph about subject {i}. " * 40 + "\n")
    proc = subprocess.Popen([*cmd, "--json"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Kill it while it is embedding (the lock is held and the new version is not yet written).
    deadline = time.time() + 60
    while time.time() < deadline and not (store.root / "build.lock").exists():
        time.sleep(0.05)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.current() == before
    assert store.open().size > 0
    again = subprocess.run([*cmd, "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["published"] is True
    assert not list(store.versions_dir.glob(".building-*"))


# --- the CLI contract ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_json_contract_and_exit_status(content, tmp_path):
    content.markdown("ok.md", "OK", "Fine.\n")
    content.write("bad.md", "---\ntitle: [\n---\nx\n")
    env = {
        **os.environ,
        "MOMENT_HOME": str(tmp_path / "home"),
        "MOMENT_MODEL_CACHE": str(ROOT / ".moment" / "models"),
    }
    cmd = [sys.executable, "-m", "assistant.cli", "index", "--content", str(content.root), "--json"]
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr  # published, but a file failed
    data = json.loads(result.stdout)
    for key in ("added", "changed", "removed", "unchanged", "failed", "documents", "chunks", "version"):
        assert key in data
    assert data["added"] == ["ok.md"] and data["failed"][0]["path"] == "bad.md" and data["failed"][0]["reason"]
    content.remove("bad.md")
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout)["unchanged"] == ["ok.md"]
    human = subprocess.run(cmd[:-1], env=env, cwd=ROOT, capture_output=True, text=True)
    assert "Nothing changed" in human.stdout and human.returncode == 0
