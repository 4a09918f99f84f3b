"""More on this page: the first page's next best passages, one click away.

The passage shown is the reader's best guess within the first page; when it is wrong, the right one is
often on the same page (on CivicActions the first page is right far more often than the first passage).
So an answer lists up to `OUTLINE_PASSAGES` other passages of that page, each as its heading path and first
words, linking to its nearest heading (a video's to its second).

Nothing is read again for this: the windows of the first page that retrieval and the reader already scored
(`DocumentHit.windows`, set by `PassageReader.read`) are ranked, the reader's logit first for the windows it
read, then the retrieval prior (chunk cosine and the question's words) raised by the share of the question's
rare words the window and its headings hold, for the rest; without the reader the page's windows are ranked by
that alone. A window that shares a line with the passage shown, or with a passage already listed, is passed
over, so each entry is somewhere else on the page. (Preferring other sections or other chunks first was
measured and lost questions: the next best passage is often beside the one shown. docs/answer-quality.md)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assistant.answering.passages import deep_link, document_url, passage_of
from assistant.answering.reader.reading import PassageReader, Window, shown_text, widen

OUTLINE_PASSAGES = 3
MIN_WORDS = 8  # a passage shorter than this is not listed (a heading's lone line says little)
RARE_WORDS_WEIGHT = 0.1  # chosen on the demo's dev split and the held-out handbooks (docs/answer-quality.md)


@dataclass
class OutlineEntry:
    """One other passage of the answer's page."""

    heading_path: list[str]
    snippet: str  # the passage's text
    url: str | None  # its nearest heading (a video: its second); None when the item has no address
    start_seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OutlineEntry:
        return cls(
            heading_path=list(data.get("heading_path") or []),
            snippet=str(data.get("snippet") or ""),
            url=data.get("url"),
            start_seconds=data.get("start_seconds"),
        )


def page_outline(result, version, term_ids_of, *, content_base_url: str | None = None, limit: int = OUTLINE_PASSAGES):
    """Up to `limit` passages of `result`'s first page besides the one shown (best first), as `OutlineEntry`s.

    `version`: the index version searched (for a page the reader did not read: its chunks and vectors);
    `term_ids_of`: the keyword index's `passage_terms`."""
    if not result.hits or limit <= 0:
        return []
    hit = result.hits[0]
    windows = getattr(hit, "windows", None)
    if not windows:
        if result.query_vector is None:
            return []
        windows = PassageReader.candidates([hit], version, result.query_vector, result.query_terms, term_ids_of)
    shown = passage_of(hit, result.query_terms, term_ids_of)
    taken = {line.strip() for line in (shown or "").split("\n") if line.strip()}
    chosen: list[tuple[Window, int, int]] = []
    base = document_url(hit.doc, content_base_url)
    rank = window_ranking(windows, version.keywords, result.query_terms, term_ids_of)
    for w in sorted(windows, key=rank):
        if len(chosen) == limit:
            break
        start, end = widen(w.units, w.start, w.end)
        lines = [u.strip() for u in w.units[start:end] if u.strip()]
        if sum(len(line.split()) for line in lines) < MIN_WORDS or any(line in taken for line in lines):
            continue
        if any(c.chunk_id == w.chunk_id and a < end and start < b for c, a, b in chosen):
            continue
        chosen.append((w, start, end))
        taken.update(lines)
    out = []
    for w, start, end in chosen:
        chunk = w.chunk
        seconds = None
        if chunk.cue_starts:
            seconds = chunk.seconds_at(max(0, chunk.text.find(w.units[start][:40])))
        elif chunk.start_seconds is not None:
            seconds = chunk.start_seconds
        out.append(
            OutlineEntry(
                heading_path=list(chunk.heading_path),
                snippet=shown_text(w.units, start, end),
                url=deep_link(base, chunk.anchor, chunk.page, seconds),
                start_seconds=seconds,
            )
        )
    return out


def window_rank(w: Window) -> tuple:
    """Windows the reader read first, by its logit; then the others by their retrieval prior; ties in page
    order."""
    read = w.logit != float("-inf")
    return (0 if read else 1, -(w.logit if read else w.prior), w.chunk_id, w.start)


def window_ranking(windows: list[Window], keywords, query_terms, term_ids_of):
    """`window_rank`, with the prior of a window the reader did not read raised by `RARE_WORDS_WEIGHT` times the
    share of the question's words (each weighted by its rarity in the content, IDF) that the window or its
    headings hold: of a page's many unread windows, the one that says the question's rare words comes first."""
    wanted = set(query_terms)
    weight = {t: keywords.idf(t) for t in wanted}
    total = sum(weight.values())
    if not total:
        return window_rank
    texts = [" ".join([*w.chunk.heading_path, *w.units[w.start : w.end]]) for w in windows]
    share = {
        id(w): sum(weight[t] for t in wanted.intersection(terms)) / total
        for w, terms in zip(windows, term_ids_of(texts), strict=True)
    }

    def rank(w: Window) -> tuple:
        read = w.logit != float("-inf")
        prior = w.prior + RARE_WORDS_WEIGHT * share[id(w)]
        return (0 if read else 1, -(w.logit if read else prior), w.chunk_id, w.start)

    return rank


def first_words(text: str, words: int = 8) -> str:
    """The first words of a passage, for a one-line link ("Stop work at once and …")."""
    parts = [p for p in text.split() if p not in ("-", "*", "•")]  # bullets' marks are no words
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def outline_label(entry: OutlineEntry) -> str:
    """An entry as one line of text: its heading path (a video's second), then its first words."""
    where = " › ".join(entry.heading_path)
    if entry.start_seconds is not None:
        seconds = int(entry.start_seconds)
        where = f"at {seconds // 60}:{seconds % 60:02d}"
    words = first_words(entry.snippet)
    return f"{where}: {words}" if where else words
