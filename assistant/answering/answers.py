"""What Moment says back: a structured answer that knows nothing of Slack.

An answered question carries its best passage (the sentences of the best chunk that match the
question, not the whole chunk), a link straight to that place (the section's anchor, the PDF page,
the video's second), the owner and how fresh the item is, and up to two more sources. A question
Moment cannot answer says so, lists close items as "possibly related" only when they are close, and
says a mentor should be offered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from assistant.answering.generation import Generated
from assistant.answering.outline import OutlineEntry
from assistant.answering.passages import deep_link, document_url, passage_of
from assistant.answering.questions import Question
from assistant.answering.retrieval import DocumentHit, RetrievalParams, SearchResult

TYPE_LABELS = {"job-aid": "Job aid", "procedure": "Procedure", "reference": "Reference", "video": "Video"}


@dataclass
class Source:
    """One document shown to the asker."""

    rank: int
    path: str  # relative to the content root
    title: str
    type: str
    url: str | None  # straight to the passage when the item has an address
    heading_path: list[str]
    snippet: str
    score: float  # cosine of the passage, 0..1
    owner: str | None
    reviewed: dt.date | None
    review_due: dt.date | None
    stale: bool
    start_seconds: float | None = None
    page: int | None = None
    audience: list[str] = field(default_factory=list)  # user groups that alone may see it; empty: everyone

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type.title())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reviewed"] = self.reviewed.isoformat() if self.reviewed else None
        data["review_due"] = self.review_due.isoformat() if self.review_due else None
        return data


@dataclass
class Answer:
    """Moment's reply to one question."""

    question: str  # the cleaned question that was searched
    answered: bool
    confidence: float
    sources: list[Source] = field(default_factory=list)  # answered: best first; else possibly related
    offer_mentor: bool = False
    outcome: str = "answered"  # answered | not_answered | empty | no_words | error
    notices: list[str] = field(default_factory=list)  # things the asker should know (truncation, language)
    index_version: str | None = None
    latency_ms: float = 0.0
    interaction_id: int | None = None
    # More on this page: the first page's next best passages (`assistant.answering.outline.OutlineEntry`).
    outline: list = field(default_factory=list)
    generated: Generated | None = None  # an answer generated and verified (`assistant.answering.generation`)
    # Answered from a section a person taught for this question (`assistant.answering.verified`): who, when.
    verified: dict | None = None
    # A course suggested with this answer, after repeated questions on its topic (`assistant.learning`).
    course: dict | None = None

    @property
    def restricted(self) -> bool:
        """Some source is for certain user groups only (such an answer is not shared in a channel)."""
        return any(s.audience for s in self.sources)

    def to_dict(self) -> dict:
        """The `moment ask --json` contract (plus a few extra keys)."""
        return {
            "question": self.question,
            "answered": self.answered,
            "confidence": round(self.confidence, 4),
            "outcome": self.outcome,
            "offer_mentor": self.offer_mentor,
            "notices": self.notices,
            "sources": [s.to_dict() for s in self.sources],
            "outline": [entry.to_dict() for entry in self.outline],
            "verified": self.verified,
            "index_version": self.index_version,
            "latency_ms": round(self.latency_ms, 2),
            "interaction_id": self.interaction_id,
            "generated": self.generated.to_dict() if self.generated else None,
            "course": self.course,
        }


def answer_from_dict(data: dict) -> Answer:
    """Rebuild an answer from `Answer.to_dict()` (as stored in the interaction log)."""
    sources = []
    for s in data.get("sources", []):
        s = dict(s)
        for key in ("reviewed", "review_due"):
            s[key] = dt.date.fromisoformat(s[key]) if s.get(key) else None
        sources.append(Source(**{k: v for k, v in s.items() if k in Source.__dataclass_fields__}))
    return Answer(
        question=data["question"],
        answered=data["answered"],
        confidence=data["confidence"],
        sources=sources,
        offer_mentor=data.get("offer_mentor", False),
        outcome=data.get("outcome", "answered"),
        notices=list(data.get("notices", [])),
        index_version=data.get("index_version"),
        latency_ms=data.get("latency_ms", 0.0),
        interaction_id=data.get("interaction_id"),
        outline=[OutlineEntry.from_dict(entry) for entry in data.get("outline") or []],
        generated=_generated_from(data.get("generated")),
        verified=data.get("verified"),
        course=data.get("course"),
    )


def _generated_from(data: dict | None) -> Generated | None:
    if not data:
        return None
    return Generated.from_dict(data)


def unanswerable(question: Question) -> Answer:
    """The reply to a question with nothing to search for."""
    notices = ["Your message was empty." if question.problem == "empty" else "I couldn't find any words to search for."]
    return Answer(
        question=question.text,
        answered=False,
        confidence=0.0,
        outcome=question.problem or "empty",
        notices=notices,
        offer_mentor=False,
    )


ALSO_SEE_MARGIN = 0.15  # an extra source at most this much further (cosine) from the question than the best


def compose(
    question: Question,
    result: SearchResult,
    params: RetrievalParams,
    *,
    today: dt.date | None = None,
    content_base_url: str | None = None,
    term_ids_of=None,
) -> Answer:
    """Build the answer from a search result.

    `term_ids_of(texts)` maps sentences to keyword-vocabulary term ids (the index's own tokenizer), so
    snippet sentences are matched to the question the same way the keyword search matched them.
    """
    today = today or dt.date.today()
    answered = bool(result.hits) and result.confidence >= params.threshold
    notices = []
    if question.truncated:
        notices.append(f"Your question was long, so I searched for its first {len(question.text):,} characters.")
    if question.other_language and not answered:
        notices.append("I can only search content written in English so far; try asking in English.")
    if result.lookup is not None and result.lookup.missing and not answered:
        # Why it was declined, in the content's terms: the table the asker would look in lacks the key.
        notices.append(f"“{result.hits[0].doc.meta.title}” has no row for {' or '.join(result.lookup.missing)}.")
    if answered:
        # The best, then up to two more that are nearly as close in meaning (not whatever ranked next).
        best = result.hits[0]
        chosen = [best] + [h for h in result.hits[1:3] if h.cosine >= best.cosine - ALSO_SEE_MARGIN]
        if result.lookup is not None and result.lookup.found:  # the row the question names: nothing else to see
            chosen = [best]
    else:
        # Close but not confident: show at most two, and only if they are close at all.
        chosen = [h for h in result.hits[:2] if result.confidence >= params.related_threshold]
    sources = [
        _source(rank, hit, question.text, result.query_terms, term_ids_of, today, content_base_url)
        for rank, hit in enumerate(chosen, start=1)
    ]
    return Answer(
        question=question.text,
        answered=answered,
        confidence=result.confidence,
        sources=sources,
        offer_mentor=not answered,
        outcome="answered" if answered else "not_answered",
        notices=notices,
        index_version=result.version,
    )


def source_of(hit: DocumentHit, result: SearchResult, *, term_ids_of=None, content_base_url: str | None = None):
    """The source a hit is shown as (its passage, link and place), as `compose` shows it."""
    return _source(1, hit, "", result.query_terms, term_ids_of, dt.date.today(), content_base_url)


def _source(rank, hit: DocumentHit, query, query_terms, term_ids_of, today, base_url) -> Source:
    meta = hit.doc.meta
    chunk = hit.chunk
    passage = passage_of(hit, query_terms, term_ids_of)
    start = chunk.start_seconds
    if chunk.cue_starts and passage:
        offset = chunk.text.find(passage.split("\n")[0].rstrip("…")[:40])
        start = chunk.seconds_at(max(0, offset))
    return Source(
        rank=rank,
        path=hit.doc.path,
        title=meta.title,
        type=meta.type,
        url=deep_link(document_url(hit.doc, base_url), chunk.anchor, chunk.page, start),
        heading_path=list(chunk.heading_path),
        snippet=passage,
        score=round(float(hit.cosine), 4),
        owner=meta.owner,
        reviewed=meta.reviewed,
        review_due=meta.review_due(),
        stale=meta.is_stale(today),
        start_seconds=start,
        page=chunk.page,
        audience=list(meta.audience),
    )
