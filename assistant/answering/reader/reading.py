"""Retrieval proposes, the reader decides.

After retrieval has ranked pages, `PassageReader.read` takes the top 4 pages' chunks, cuts them into
windows of about `WINDOW_WORDS` words (a little shorter than its training passages), one starting at every
line (an answer may start anywhere: real pages seldom have a heading per question), keeps each page's two
most promising windows (by the stored chunk vectors' cosine and the question's words; none starting in the
first half of one already kept), and lets the reader score those 8. Then:

- each page's passage is its best window, widened to whole list items so steps are not cut off;
- the top pages are re-ordered by their retrieval score plus `reader_weight` times the reader's
  probability for their best window (the weight chosen on the eval set's dev split);
- the reader's logit for the first page's passage becomes a confidence feature (`reader`).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from assistant.answering.reader.model import Reader
from indexer.chunking import split_sentences
from indexer.documents import Chunk, is_table_row

# Windows of about 80 words, shorter than the reader's training passages (110): chosen on the development
# sets on 2026-12-06 (60 / 70 / 80 / 95 / 110 words): held-out first page 0.746 / 0.746 / 0.754 / 0.754 /
# 0.730 (the reader's say in the page order gains where a short answer is no longer read with its
# neighbours), first passage the same within two questions on each set, and a quarter less to read.
WINDOW_WORDS = 80
SHOWN_CHARS = 900  # the passage shown: up to this long, widened to whole list items
MIN_SHOWN_CHARS = 120  # a focused passage shorter than this takes the next line too
FOCUS_MARGIN = 1.5  # lines within this many logits of the best line are shown with it
MIN_LEAD = 80  # an introduction shown leads on into the first section when this much room is left


@dataclass
class Window:
    hit: int  # index into the hits
    chunk_id: int
    chunk: Chunk
    start: int  # first unit (line or sentence) of the chunk in the window
    end: int  # one past the last unit
    units: list[str]  # the chunk's units (shared by its windows)
    prior: float = 0.0
    logit: float = float("-inf")

    @property
    def text(self) -> str:
        return "\n".join(self.units[self.start : self.end])


def chunk_units(chunk: Chunk) -> list[str]:
    """The units a passage is made of: a transcript's cues (each keeps its second), else the chunk's
    lines, with long lines split into sentences."""
    text = chunk.text
    if chunk.cue_starts:
        offsets = [o for o, _ in chunk.cue_starts] + [len(text)]
        return [u for a, b in itertools.pairwise(offsets) if (u := text[a:b].strip())]
    return text_units(text)


def text_units(text: str) -> list[str]:
    """Lines, with long lines split into sentences; a step of a list stays whole up to `SHOWN_CHARS` (cut
    into sentences, "1. Stop the card: call 0161 555 0177." lost its number and its list)."""

    def whole(line: str) -> bool:
        return len(line) <= 160 or (_is_item(line) and len(line) <= SHOWN_CHARS)

    return [u for line in text.split("\n") for u in ([line] if whole(line) else split_sentences(line)) if u.strip()]


def windows_of(units: list[str], words: int = WINDOW_WORDS) -> list[tuple[int, int]]:
    """(start, end) unit ranges of about `words` words each, one starting at every unit: an answer may
    start anywhere (a page need not have a heading before it), and the reader was trained on passages
    that start where the answer starts."""
    sizes = [len(u.split()) for u in units]
    out = []
    for start in range(len(units)):
        end, used = start, 0
        while end < len(units) and (end == start or used + sizes[end] <= words):
            used += sizes[end]
            end += 1
        out.append((start, end))
    return out


def widen(units: list[str], start: int, end: int, limit: int = SHOWN_CHARS) -> tuple[int, int]:
    """Grow a window so that steps are shown whole, within `limit` chars: numbered steps (and table rows)
    from the first to the last, with the sentence that introduces them, and a list whose lead-in
    (": ") or first item the window holds, to its end. A bullet on its own is left alone: bullets are
    separate facts ("The daily limit is £150"), and the one that answers is the answer."""

    def size(a: int, b: int) -> int:
        return sum(len(u) + 1 for u in units[a:b])

    def list_start(i: int) -> int:
        while i > 0 and _is_item(units[i - 1]):
            i -= 1
        return i

    last = units[end - 1]
    if end < len(units) and _is_item(units[end]):
        ends_inside = _is_item(last) and (_is_whole(last) or (list_start(end - 1) >= start and end - start > 1))
        if last.endswith(":") or ends_inside:
            while end < len(units) and _is_item(units[end]) and size(start, end + 1) <= limit:
                end += 1
    # Backward: numbered steps seen from step 1, and the sentence that introduces them.
    while start > 0 and _is_whole(units[start]) and (_is_item(units[start - 1]) or units[start - 1].endswith(":")):
        if size(start - 1, end) > limit:
            break
        start -= 1
        if not _is_item(units[start]):
            break
    return start, end


def _is_item(unit: str) -> bool:
    return bool(re.match(r"^\s*(\d+[.)]|-|\*|•)\s", unit)) or is_table_row(unit)


def is_bullet(unit: str) -> bool:
    """A bulleted line ("- ", "* ", "• "): a fact of its own, shown alone (not a table row)."""
    return bool(re.match(r"^\s*(-|\*|•)\s", unit)) and not is_table_row(unit)


def _is_whole(unit: str) -> bool:
    """A unit of something shown whole: a numbered step, or a table row."""
    return bool(re.match(r"^\s*\d+[.)]\s", unit)) or is_table_row(unit)


def shown_text(units: list[str], start: int, end: int, limit: int = SHOWN_CHARS) -> str:
    """The passage as shown: whole units up to `limit` chars (a single long unit cut at a word)."""
    out, used = [], 0
    for unit in units[start:end]:
        if out and used + len(unit) + 1 > limit:
            break
        out.append(unit)
        used += len(unit) + 1
    text = "\n".join(out)
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text


# A line that opens like this continues the one before ("That speeds things up a lot.", "Until then ...").
_REFERS_BACK = re.compile(
    r"^(that|this|these|those|it|its|they|them|then|until then|so|and|but|also|otherwise|if so|if not)\b",
    re.IGNORECASE,
)


def back_to_referent(units: list[str], start: int, most: int = 2) -> int:
    """Where a passage starting at `start` should start so that it does not open mid-thought: up to `most`
    lines earlier while its first line refers back (a transcript's cue or a sentence that begins "That ...",
    "It ...", "Then ...")."""
    for _ in range(most):
        line = units[start].lstrip("-*• ")
        if start == 0 or not _REFERS_BACK.match(line) or line.split(" ", 1)[0].isupper():  # "IT will call"
            break
        start -= 1
    return start


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


class PassageReader:
    """Chooses each top page's passage with the reader, re-orders the top pages, and focuses the first
    page's passage on the lines that answer."""

    def __init__(self, reader: Reader, pages: int = 4, windows: int = 8, focus_margin: float = FOCUS_MARGIN) -> None:
        self.reader = reader
        # Whether windows are read under their own heading too: as the reader was trained (`reader.json`).
        self.own_heading = bool(getattr(reader, "own_heading", False))
        self.pages = pages
        self.windows = windows
        self.focus_margin = focus_margin

    def read(
        self,
        question: str,
        hits: list,
        version,
        query_vector: np.ndarray,
        query_terms,
        term_ids_of,
        *,
        reader_weight: float = 0.0,
        prior_weight: float = 0.0,
    ) -> None:
        """Score the top pages' windows and act on it, in place: each read hit gets `reader_logit`,
        `chunk` and `passage`; the read hits are re-ordered by score + `reader_weight` times the reader's
        probability; a window's score is its logit + `prior_weight` times its prior (chunk cosine and
        shared words)."""
        top = hits[: self.pages]
        candidates = self.candidates(top, version, query_vector, query_terms, term_ids_of)
        if not candidates:
            return
        chosen = self._choose(candidates, len(top))
        titles = [h.doc.meta.title for h in top]
        logits = self.reader.score(
            question, [_render(titles[w.hit], w.chunk, w.text, self.own_heading) for w in chosen]
        )
        for w, logit in zip(chosen, logits.tolist(), strict=True):
            w.logit = logit
        best_of: dict[int, Window] = {}
        for index, hit in enumerate(top):
            mine = [w for w in chosen if w.hit == index]
            best = max(mine, key=lambda w: w.logit + prior_weight * w.prior)
            start, end = widen(best.units, best.start, best.end)
            hit.chunk_id = best.chunk_id
            hit.chunk = best.chunk
            hit.passage = shown_text(best.units, start, end)
            hit.reader_logit = best.logit
            hit.windows = [w for w in candidates if w.hit == index]  # what "More on this page" ranks
            best_of[id(hit)] = best
        for hit in top:
            hit.score += reader_weight * sigmoid(hit.reader_logit)
        top.sort(key=lambda h: (-h.score, -h.cosine))
        hits[: len(top)] = top
        first = top[0]
        first.passage = self.focus(question, first.doc.meta.title, best_of[id(first)])
        first.passage = self.lead_on(first, best_of[id(first)], version)

    @staticmethod
    def lead_on(hit, window: Window, version) -> str:
        """A page's introduction leads into its first section: when the passage shown comes from the text
        before the page's first heading, the start of the section after it is shown too (widened to whole
        steps, within `SHOWN_CHARS`). "If you smell gas, follow this procedure." is no answer without the
        procedure, and an introduction restates the subject in the question's words, so the reader often
        prefers it to the steps (docs/reader.md, "How it is used")."""
        passage = hit.passage
        following = window.chunk_id + 1
        room = SHOWN_CHARS - len(passage) - 1
        if window.chunk.heading_path or following >= hit.doc.chunk_start + hit.doc.chunk_count or room < MIN_LEAD:
            return passage
        chunk = version.chunks([following])[following].chunk
        if not chunk.heading_path:  # no first section: a page without headings, a transcript's next cues
            return passage
        units = chunk_units(chunk)
        start, end = widen(units, 0, windows_of(units)[0][1], limit=room)
        return passage + "\n" + shown_text(units, start, end, limit=room)

    @staticmethod
    def candidates(pages: list, version, query_vector: np.ndarray, query_terms, term_ids_of) -> list[Window]:
        """Every window of `pages`' chunks, each with its prior: its chunk's cosine to the question, plus
        0.03 for each of the question's words it holds, minus 0.02 per place its page stands lower."""
        ids = [cid for h in pages for cid in range(h.doc.chunk_start, h.doc.chunk_start + h.doc.chunk_count)]
        if not ids:
            return []
        stored = version.chunks(ids)
        cosines = np.asarray(version.embeddings[np.array(ids, dtype=np.int64)]) @ query_vector
        cos_of = dict(zip(ids, cosines.tolist(), strict=True))
        wanted = set(query_terms)
        pieces = []  # (page index, chunk id, chunk, units)
        for index, hit in enumerate(pages):
            for cid in range(hit.doc.chunk_start, hit.doc.chunk_start + hit.doc.chunk_count):
                chunk = stored[cid].chunk
                pieces.append((index, cid, chunk, chunk_units(chunk)))
        # The question's words in each unit (one call: a word is stemmed once however often pages use it).
        flat = [u for *_, units in pieces for u in units]
        shared = iter([wanted & set(t) for t in term_ids_of(flat)] if wanted and flat else [set()] * len(flat))
        out: list[Window] = []
        for index, cid, chunk, units in pieces:
            unit_terms = [next(shared) for _ in units]
            for a, b in windows_of(units):
                w = Window(index, cid, chunk, a, b, units)
                w.prior = cos_of[cid] + 0.03 * len(set().union(*unit_terms[a:b])) - 0.02 * index
                out.append(w)
        return out

    def focus(self, question: str, title: str, window: Window) -> str:
        """The lines of `window` that answer, by the reader: the best line with its neighbours that score
        nearly as well; a list shown whole; a table row with the table's header row."""
        units, a, b = window.units, window.start, window.end
        if b - a <= 1:
            return shown_text(units, *widen(units, back_to_referent(units, a), b))
        scores = self.reader.score(
            question, [_render(title, window.chunk, u, self.own_heading) for u in units[a:b]]
        ).tolist()
        best = a + int(np.argmax(scores))
        floor = max(scores) - self.focus_margin
        if is_table_row(units[best]):
            top_row = best
            while top_row > 0 and is_table_row(units[top_row - 1]):
                top_row -= 1
            rows = [i for i in range(a, b) if is_table_row(units[i]) and scores[i - a] >= floor and i != top_row]
            if rows:  # a header row alone answers nothing: then the window is shown as it is
                lines = [units[top_row], *(units[i] for i in rows)]
                return shown_text(lines, 0, len(lines))
            return shown_text(units, *widen(units, a, b))
        start, end = best, best + 1
        while start > a and scores[start - 1 - a] >= floor:
            start -= 1
        while end < b and scores[end - a] >= floor:
            end += 1
        short = sum(len(u) for u in units[start:end]) < MIN_SHOWN_CHARS
        if short and end < b and not is_bullet(units[best]):  # a bullet stands alone
            end += 1
        return shown_text(units, *widen(units, back_to_referent(units, start), end))

    def _choose(self, candidates: list[Window], pages: int) -> list[Window]:
        """Each page's two most promising windows, then the most promising of the rest; a window that
        starts inside the first half of one already chosen is passed over (windows overlap: one starts
        at every line)."""
        by_prior = sorted(candidates, key=lambda w: -w.prior)
        chosen: list[Window] = []
        per_page = [0] * pages

        def near(w: Window) -> bool:
            return any(
                c.chunk_id == w.chunk_id and abs(c.start - w.start) <= max(1, (c.end - c.start) // 2) for c in chosen
            )

        for w in by_prior:
            if per_page[w.hit] < 2 and not near(w):
                chosen.append(w)
                per_page[w.hit] += 1
        for w in by_prior:
            if len(chosen) >= self.windows:
                break
            if not near(w):
                chosen.append(w)
        return chosen


def passage_text(title: str, heading_path, text: str) -> str:
    """A passage as the reader reads it, in use and in training: "title > headings", then the text."""
    context = " > ".join([title, *heading_path]) if heading_path else title
    return f"{context}\n{text}"


def _render(title: str, chunk: Chunk, text: str, own_heading: bool = False) -> str:
    """A window as the reader reads it: the page's title and the chunk's headings, then the text; the
    chunk's own heading only for a reader trained with own headings (`Reader.own_heading`, as the shipped
    one is), since a reader trained without them reads better without (docs/reader.md)."""
    return passage_text(title, chunk.heading_path if own_heading else chunk.heading_path[:-1], text)
