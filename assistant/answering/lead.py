"""Safety content first: a page's `lead` section shown when the page is the best but its passage is uncertain.

A procedure's owner can name the section to show first (`lead: Immediate actions` in its front matter or
sidecar, checked against the page's headings when it is indexed). When the page comes first and the reader
is unsure which of its passages answers, the lead section is shown instead of the reader's guess: for "I can
smell gas", "Stop work at once… Get everyone out" is the right thing to read first even when the question's
words sit closer to "Do not let the customer turn the gas back on". The reader's own choice is then the first
of *More on this page* (`assistant.answering.outline`), one click away.

Uncertain: another window the reader read on the same page scores within `LEAD_MARGIN` logits of its best,
so the reader cannot tell two parts of the page apart. A clear choice is left alone: a question about the gas
emergency number gets the number, not the evacuation steps. (The margin was chosen on the demo's dev split,
where every question on a page with a lead but one is about a detail of it, not its emergency; the reader's
logit itself does not tell the two kinds apart there: docs/answer-quality.md.)
"""

from __future__ import annotations

from assistant.answering.reader.reading import SHOWN_CHARS, chunk_units, shown_text

LEAD_MARGIN = 0.5  # logits between the reader's two best windows on the page


def uncertain(hit, *, margin: float = LEAD_MARGIN) -> bool:
    """Whether the reader's choice of passage on `hit`'s page is uncertain (module docstring). Without the
    reader there is nothing to judge by, and the passage is left as it is."""
    if hit.reader_logit is None:
        return False
    read = sorted((w.logit for w in hit.windows or () if w.logit != float("-inf")), reverse=True)
    return len(read) > 1 and read[0] - read[1] < margin


def lead_passage(hit, version) -> tuple[int, object, str] | None:
    """(chunk id, chunk, text) of `hit`'s lead section: its chunks' lines from the start, whole lines up to
    `SHOWN_CHARS`. None when the page has no lead (or the index no longer holds its section)."""
    lead = tuple(hit.doc.meta.lead)
    if not lead:
        return None
    ids = range(hit.doc.chunk_start, hit.doc.chunk_start + hit.doc.chunk_count)
    stored = version.chunks(list(ids))
    inside = [i for i in ids if stored[i].chunk.heading_path[: len(lead)] == lead]
    if not inside:
        return None
    units = [u for i in inside for u in chunk_units(stored[i].chunk)]
    return inside[0], stored[inside[0]].chunk, shown_text(units, 0, len(units), SHOWN_CHARS)


def apply_lead(hit, version, *, margin: float = LEAD_MARGIN) -> bool:
    """Show `hit`'s lead section in place of an uncertain passage (in place: `chunk_id`, `chunk`, `passage`).
    True when it did. A passage already inside the lead section is left alone."""
    if not hit.doc.meta.lead or hit.chunk is None or not uncertain(hit, margin=margin):
        return False
    if hit.chunk.heading_path[: len(hit.doc.meta.lead)] == tuple(hit.doc.meta.lead):
        return False
    found = lead_passage(hit, version)
    if found is None:
        return False
    hit.chunk_id, hit.chunk, hit.passage = found
    return True
