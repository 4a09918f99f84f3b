"""Verified answers, taught by people: a question a mentor or admin answered with one section, for everyone.

A taught pair keeps the question, its vector, the section (item path and heading path, with a hash of the
section's text as it was), who taught it, when, and the workspace. A later question of the same workspace
whose vector is within `MATCH_COSINE` of a taught question's, and that names the same key tokens (codes,
sizes, any token with a digit: "M12" never takes "M10"'s answer, "8kW" never "11kW"'s; the look-up tables'
tokens, `assistant.answering.lookup`), is answered from the taught section, shown whole and marked
*Verified by <mentor>, <date>*. People outrank the model: the reader is not asked.

- A taught section the asker may not see (its item's audience) is never shown to them: the question is then
  answered as if nothing had been taught.
- When the section's text changes (the index is rebuilt with other content there), the pair still answers
  but is flagged for review and says so, until someone teaches it again (re-confirms it). A section or item
  since removed answers nothing; the pair is listed as missing.

The threshold was chosen on `evalsets/verified-threshold-pairs.jsonl` (pairs of questions that mean the same
and that do not), written before any run: `python bench/verified_answers.py` prints the pairs' cosines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from assistant.answering.lookup import key_tokens, normal
from assistant.answering.reader.reading import chunk_units
from assistant.db.models import VerifiedAnswer

# Halfway between the closest pair of different questions the key guard lets through (0.766: "how do i print
# at the leeds office" / "… at the manchester depot") and the farthest pair of the same question (0.804: "gas
# emergency number" / "what number do i ring for a gas emergency") in evalsets/verified-threshold-pairs.jsonl.
MATCH_COSINE = 0.785
VOTES_TO_CONFIRM = 3  # Helpful votes from this many people, on one passage for near-identical questions
SECTION_CHARS = 2400  # a taught section is shown whole, up to this (a Slack section holds 3,000)


class VerifyError(Exception):
    """A question cannot be taught as asked (no such item or heading); the message says what exists."""


@dataclass(frozen=True)
class TaughtSection:
    """A section of an indexed item, as taught and as shown."""

    path: str
    heading_path: tuple[str, ...]
    text: str
    chunk_id: int  # its first chunk (for the link: its anchor, page or second)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class VerifiedMatch:
    """A taught pair that answers a question, with its section as it is now."""

    pair: VerifiedAnswer
    section: TaughtSection
    cosine: float

    @property
    def needs_review(self) -> bool:
        return self.section.content_hash != self.pair.content_hash

    def to_dict(self) -> dict:
        return {
            "id": self.pair.id,
            "question": self.pair.question,
            "by": self.pair.taught_by,
            "at": self.pair.taught_at.isoformat(),
            "path": self.pair.path,
            "heading_path": list(self.pair.heading_path),
            "cosine": round(self.cosine, 4),
            "needs_review": self.needs_review,
        }


def digit_keys(text: str) -> frozenset[str]:
    """The tokens of `text` that name one thing by a number (as look-up tables' keys are compared): "M12",
    "E05" = "e5", "8kw", "3/8", "4". Two questions that differ in one of these are different questions."""
    return frozenset(normal(t) for t in key_tokens(text) if any(c.isdigit() for c in t))


def in_section(heading_path: tuple[str, ...], section: tuple[str, ...]) -> bool:
    """Whether a chunk under `heading_path` is in the section `section` (its heading path; empty: the text
    before the first heading)."""
    return tuple(heading_path[: len(section)]) == tuple(section) if section else not heading_path


def question_terms(version, text: str) -> set[int]:
    """The keyword index's terms (stems) of a question's words, typos read as the content's words."""
    keywords = version.keywords
    return {sid for sid in keywords.resolve(keywords.words(text)) if sid is not None}


def section_words(version, section: TaughtSection, question: str) -> set[int]:
    """The words of the taught `question` that its section uses and the rest of its page does not: what ties the
    question to that section rather than to its page ("customer's wifi" to *Connect*, of a tablet VPN page whose
    *If it will not connect* answers "tablet won't connect to vpn"). A later question asks for the section only
    if it says one of them (when there are any)."""
    keywords = version.keywords
    doc = version.by_path[section.path]
    ids = range(doc.chunk_start, doc.chunk_start + doc.chunk_count)
    stored = version.chunks(list(ids))
    inside = {t for terms in keywords.passage_terms(section.text.split("\n")) for t in terms}
    rest = [stored[i].chunk.text for i in ids if not in_section(stored[i].chunk.heading_path, section.heading_path)]
    outside = {t for terms in keywords.passage_terms(rest) for t in terms}
    return question_terms(version, question) & (inside - outside)


def _key(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def find_section(version, path: str, heading: str | None) -> TaughtSection:
    """The section of item `path` under `heading` (any level, case and spacing aside; "A > B" for a path;
    None or "" for the text before the first heading, a transcript's whole text). Raises `VerifyError` naming
    the item's headings when it has no such heading, or when the index has no such item."""
    doc = version.by_path.get(path)
    if doc is None:
        raise VerifyError(f"No indexed item at {path!r}: give the path relative to the content folder.")
    ids = list(range(doc.chunk_start, doc.chunk_start + doc.chunk_count))
    stored = version.chunks(ids)
    paths = list(dict.fromkeys(stored[i].chunk.heading_path for i in ids))
    target: tuple[str, ...] | None = None
    if not heading or not str(heading).strip():
        target = ()
    else:
        wanted = [_key(part) for part in str(heading).split(">")]
        for hp in paths:
            for end in range(len(hp), 0, -1):
                if [_key(h) for h in hp[:end]][-len(wanted) :] == wanted:
                    target = tuple(hp[:end])
                    break
            if target is not None:
                break
    inside = [i for i in ids if target is not None and in_section(stored[i].chunk.heading_path, target)]
    if not inside:
        headings = list(dict.fromkeys(h for hp in paths for h in hp))
        listed = "; ".join(f"'{h}'" for h in headings) if headings else "none (it has no headings)"
        raise VerifyError(f"{path} has no heading {heading!r}. Its headings: {listed}.")
    units = [u for i in inside for u in chunk_units(stored[i].chunk)]
    return TaughtSection(path, target, "\n".join(units), inside[0])


class VerifiedAnswers:
    """Taught pairs in the database, and the matching of questions against them."""

    def __init__(self, database, embedder) -> None:
        self.database = database
        self.embedder = embedder

    def _model(self) -> str:
        return self.embedder.spec.describe()

    def teach(
        self,
        team_id: str,
        question: str,
        path: str,
        heading: str | None,
        taught_by: str,
        version,
        *,
        interaction_id: int | None = None,
    ) -> VerifiedAnswer:
        """Teach `question` to be answered from the section (`find_section`); a question already taught in
        the workspace (same words, case and spacing aside) is re-taught: its section and hash are replaced,
        which also re-confirms a pair flagged for review."""
        question = " ".join(question.split())
        if not question:
            raise VerifyError("The question is empty.")
        section = find_section(version, path, heading)
        vector = self.embedder.encode([question])[0]
        with self.database.session() as session:
            pair = next(
                (
                    p
                    for p in session.scalars(select(VerifiedAnswer).where(VerifiedAnswer.team_id == team_id))
                    if _key(p.question) == _key(question)
                ),
                None,
            )
            if pair is None:
                pair = VerifiedAnswer(team_id=team_id, question=question)
                session.add(pair)
            pair.embedding = [round(float(x), 6) for x in vector]
            pair.embedding_model = self._model()
            pair.path = section.path
            pair.heading_path = list(section.heading_path)
            pair.content_hash = section.content_hash
            pair.taught_by = taught_by
            pair.taught_at = dt.datetime.now(dt.UTC)
            pair.interaction_id = interaction_id
            session.flush()
            session.expunge(pair)
            return pair

    def pairs(self, team_id: str | None = None) -> list[VerifiedAnswer]:
        """Every taught pair (of one workspace), oldest first."""
        with self.database.session() as session:
            query = select(VerifiedAnswer).order_by(VerifiedAnswer.id)
            if team_id is not None:
                query = query.where(VerifiedAnswer.team_id == team_id)
            return detached(session, query)

    def remove(self, pair_id: int, team_id: str | None = None) -> VerifiedAnswer | None:
        """Forget a taught pair; None when there is no such pair (in the workspace)."""
        return remove_row(self.database, VerifiedAnswer, pair_id, team_id)

    def status(self, pair: VerifiedAnswer, version) -> str:
        """ "verified", "needs review" (its section's text changed) or "missing" (item or heading gone)."""
        try:
            section = find_section(version, pair.path, " > ".join(pair.heading_path))
        except VerifyError:
            return "missing"
        return "verified" if section.content_hash == pair.content_hash else "needs review"

    def match(self, team_id: str, question: str, query_vector, version, *, may_see=None) -> VerifiedMatch | None:
        """The taught pair that answers `question` (vector `query_vector`), if one is close enough and names
        the same keys, and its section still exists and `may_see(audience)` allows it."""
        pairs = [p for p in self.pairs(team_id) if p.embedding_model == self._model()]
        if not pairs:
            return None
        vectors = np.asarray([p.embedding for p in pairs], dtype=np.float32)
        cosines = vectors @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        keys = digit_keys(question)
        for index in np.argsort(-cosines):
            cosine = float(cosines[index])
            if cosine < MATCH_COSINE:
                break
            pair = pairs[int(index)]
            if digit_keys(pair.question) != keys:
                continue
            doc = version.by_path.get(pair.path)
            if doc is None or (may_see is not None and doc.meta.audience and not may_see(doc.meta.audience)):
                continue
            try:
                section = find_section(version, pair.path, " > ".join(pair.heading_path))
            except VerifyError:
                continue
            tying = section_words(version, section, pair.question)
            if tying and not tying & question_terms(version, question):
                continue  # close in meaning, but not about what the taught question asks of its section
            return VerifiedMatch(pair, section, cosine)
        return None


def detached(session, query) -> list:
    """The rows `query` selects, usable after the session closes (read, not written back)."""
    rows = list(session.scalars(query))
    for row in rows:
        session.expunge(row)
    return rows


def remove_row(database, model, row_id: int, team_id: str | None):
    """Delete row `row_id` of `model` (of the workspace `team_id`; None: of any): the row as it was, or None
    when there is no such row (in the workspace)."""
    with database.session() as session:
        row = session.get(model, row_id)
        if row is None or (team_id is not None and row.team_id != team_id):
            return None
        session.delete(row)
        session.flush()
        session.expunge(row)
        return row


def verified_label(verified: dict, names=None) -> str:
    """ "Verified by <mentor>, <date>" (plain text; `names` maps user ids to names)."""
    who = (names or {}).get(verified["by"], verified["by"])
    when = dt.datetime.fromisoformat(verified["at"]).date()
    return f"Verified by {who}, {when:%-d %b %Y}"


def verified_answer(question, match: VerifiedMatch, version, result, content_base_url: str | None = None):
    """The answer from a taught section: the section whole (up to `SECTION_CHARS`), linked to its heading,
    confidence 1, marked `verified` (and with a note when its section changed since it was taught)."""
    from assistant.answering.answers import Answer, Source
    from assistant.answering.passages import deep_link, document_url
    from assistant.answering.reader.reading import shown_text

    doc = version.by_path[match.section.path]
    chunk = version.chunks([match.section.chunk_id])[match.section.chunk_id].chunk
    meta = doc.meta
    units = match.section.text.split("\n")
    today = dt.date.today()
    source = Source(
        rank=1,
        path=doc.path,
        title=meta.title,
        type=meta.type,
        url=deep_link(document_url(doc, content_base_url), chunk.anchor, chunk.page, chunk.start_seconds),
        heading_path=list(match.section.heading_path),
        snippet=shown_text(units, 0, len(units), SECTION_CHARS),
        score=round(match.cosine, 4),
        owner=meta.owner,
        reviewed=meta.reviewed,
        review_due=meta.review_due(),
        stale=meta.is_stale(today),
        start_seconds=chunk.start_seconds,
        page=chunk.page,
        audience=list(meta.audience),
    )
    notices = []
    if match.needs_review:
        notices.append(
            "This section has changed since it was verified for this question: it is waiting for its owner to check it."
        )
    return Answer(
        question=question,
        answered=True,
        confidence=1.0,
        sources=[source],
        notices=notices,
        index_version=result.version if result is not None else None,
        verified=match.to_dict(),
    )


def section_of(answer: dict | None) -> tuple[str, tuple[str, ...]] | None:
    """The section an answer's first passage came from, as recorded: (item path, heading path); None when it
    showed no passage."""
    sources = (answer or {}).get("sources")
    if not sources:
        return None
    return sources[0].get("path"), tuple(sources[0].get("heading_path") or ())


def helpful_voters(database, embedder, team_id: str, question: str, section) -> set[str]:
    """The people who voted Helpful on answers of the workspace whose first passage came from `section`
    (`section_of`), for questions near-identical to `question` (within `MATCH_COSINE`, the same keys)."""
    from assistant.db.models import Interaction, Vote

    with database.session() as session:
        rows = session.execute(
            select(Interaction.question, Interaction.answer, Vote.user_id)
            .join(Vote, Vote.interaction_id == Interaction.id)
            .where(Interaction.team_id == team_id, Vote.helpful.is_(True))
            .order_by(Interaction.id.desc())
            .limit(2000)
        ).all()
    keys = digit_keys(question)
    same = [(q, user) for q, answer, user in rows if section_of(answer) == section and digit_keys(q) == keys]
    if not same:
        return set()
    texts = list(dict.fromkeys([question, *(q for q, _ in same)]))
    vectors = embedder.encode(texts)
    close = {t for t, v in zip(texts, vectors, strict=True) if float(v @ vectors[0]) >= MATCH_COSINE}
    return {user for q, user in same if q in close}


def confirmed_by_votes(asking, interaction_id: int, team_id: str) -> VerifiedAnswer | None:
    """Helpful votes count as teaching: when `VOTES_TO_CONFIRM` different people voted Helpful on answers whose
    passage came from the same section, for questions near-identical to this one (`helpful_voters`), the
    question is taught with that section ("votes" as its teacher; audited). None otherwise, or when a taught
    pair already answers it. `asking`: `assistant.answering.asking.Asking`, which teaches."""
    from assistant.db.models import Interaction

    database = asking.verified.database
    with database.session() as session:
        this = session.get(Interaction, interaction_id)
        if this is None or this.team_id != team_id or not this.answered or (this.answer or {}).get("verified"):
            return None
        section, question = section_of(this.answer), this.question
    if section is None:
        return None
    embedder = asking.retriever.embedder
    if len(helpful_voters(database, embedder, team_id, question, section)) < VOTES_TO_CONFIRM:
        return None
    version = asking.retriever.version()
    if asking.verified.match(team_id, question, embedder.encode([question])[0], version) is not None:
        return None
    return asking.teach(
        question, section[0], " > ".join(section[1]), "votes", team_id=team_id, interaction_id=interaction_id
    )
