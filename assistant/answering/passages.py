"""The passage an answer shows for a hit, and the link straight to its place (a section's anchor, a PDF's page,
a video's second). Answers, the outline of a page and generated answers all show passages this way.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from assistant.answering.reader.reading import back_to_referent, is_bullet, shown_text, text_units
from assistant.answering.retrieval import DocumentHit

SNIPPET_CHARS = 480


def passage_of(hit: DocumentHit, query_terms, term_ids_of=None) -> str:
    """The passage shown for a hit: the reader's choice when it read the page, else the sentences of
    the best chunk that match the question's words."""
    if hit.passage is not None:
        return hit.passage
    return snippet(hit.chunk.text, query_terms, term_ids_of)


def document_url(doc, base_url: str | None) -> str | None:
    """The address of an indexed document: its own `url`, or one under MOMENT_CONTENT_BASE_URL."""
    return doc.meta.url or _base_link(base_url, doc.path)


def _base_link(base_url: str | None, path: str) -> str | None:
    if not base_url:
        return None
    return base_url.rstrip("/") + "/" + path


def deep_link(url: str | None, anchor: str | None, page: int | None, start_seconds: float | None) -> str | None:
    """A link to the passage: `#t=SECONDS` for a video (YouTube-style `t=` for YouTube), `#page=N` for a
    PDF page, `#anchor` for a section."""
    if not url:
        return None
    parts = urlsplit(url)
    if start_seconds is not None:
        seconds = int(start_seconds)
        if parts.netloc.endswith(("youtube.com", "youtu.be")):
            query = f"{parts.query}&t={seconds}" if parts.query else f"t={seconds}"
            return urlunsplit(parts._replace(query=query))
        return urlunsplit(parts._replace(fragment=f"t={seconds}"))
    if page is not None:
        return urlunsplit(parts._replace(fragment=f"page={page}"))
    if anchor and not parts.fragment:
        return urlunsplit(parts._replace(fragment=anchor))
    return url


def snippet(text: str, query_terms: list[int], term_ids_of=None, limit: int = SNIPPET_CHARS) -> str:
    """The run of sentences (or list lines) in `text` that best matches the question, up to `limit` chars."""
    units = text_units(text)
    if not units:
        return ""
    wanted = set(query_terms)
    if wanted and term_ids_of is not None:
        scores = [len(wanted & set(ids)) for ids in term_ids_of(units)]
    else:
        scores = [0] * len(units)
    best = max(range(len(units)), key=lambda i: (scores[i], -i)) if any(scores) else 0
    first = back_to_referent(units, best)  # not from mid-thought ("That speeds it up.")
    if is_bullet(units[best]):
        return shown_text(units, first, best + 1, limit)  # a bullet is a fact of its own
    # Start one unit earlier when the best one continues a list (keep steps in order and in context).
    start = best - 1 if best > 0 and _is_list_item(units[best]) and _is_list_item(units[best - 1]) else first
    return shown_text(units, start, len(units), limit)


def _is_list_item(unit: str) -> bool:
    return bool(re.match(r"^(\d+[.)]|-|\*)\s", unit))
