"""*Not helpful* demotes a passage, for the questions it was voted on only.

When a person votes *Not helpful* on an answer, the question and the section its passage came from (item path
and heading path) are kept, with the question's vector. A later question of the same workspace close enough to
that question (the verified answers' rule: within `MATCH_COSINE` and naming the same key tokens, so "M12" is
not "M10") is not answered from that section again: the page's next best passage outside it is shown, or the
next page when the page has nothing else, and the confidence is computed again for what is shown, so the
question is declined when nothing else is good enough. Any other question is answered as before.

People outweigh one person: a section stays demoted for a question while at least as many different people
voted *Not helpful* on it (for questions close to this one) as voted *Helpful* on it (for questions
near-identical to this one, `assistant.answering.verified.helpful_voters`). Two Helpful votes outweigh one Not
helpful.

A demotion holds only while its vote stands: a person who changes their vote to Helpful, or is forgotten
(`moment forget`), takes its effect away; an admin lists and removes demotions (`moment demotions`). A taught
(verified) answer is never demoted by a vote: people who taught it are asked to change it instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sqlalchemy import select

from assistant.answering.outline import window_rank
from assistant.answering.reader.reading import PassageReader, shown_text, widen
from assistant.answering.verified import MATCH_COSINE, detached, digit_keys, helpful_voters, remove_row, section_of
from assistant.db.models import Interaction, PassageDemotion, Vote

Section = tuple[str, tuple[str, ...]]  # (item path, heading path)


class Demotions:
    """Not helpful votes' demotions in the database, and which sections they keep from a question."""

    def __init__(self, database, embedder) -> None:
        self.database = database
        self.embedder = embedder

    def _model(self) -> str:
        return self.embedder.spec.describe()

    def record(self, interaction_id: int, team_id: str, user_id: str) -> tuple[PassageDemotion, bool] | None:
        """`user_id` voted Not helpful on the answer `interaction_id`: demote its section for its question. The
        demotion and whether it is new (a vote given again, or its comment, keeps the one there is); None when the
        answer showed no passage, was a verified answer, or is not the workspace's."""
        with self.database.session() as session:
            this = session.get(Interaction, interaction_id)
            if this is None or this.team_id != team_id or not this.answered or (this.answer or {}).get("verified"):
                return None
            section, question = section_of(this.answer), this.question
        if section is None:
            return None
        vector = self.embedder.encode([question])[0]
        with self.database.session() as session:
            row = session.scalar(
                select(PassageDemotion).where(
                    PassageDemotion.interaction_id == interaction_id, PassageDemotion.user_id == user_id
                )
            )
            new = row is None
            if new:
                row = PassageDemotion(team_id=team_id, interaction_id=interaction_id, user_id=user_id)
                session.add(row)
            row.question = question
            row.embedding = [round(float(x), 6) for x in vector]
            row.embedding_model = self._model()
            row.path, row.heading_path = section[0], list(section[1])
            session.flush()
            session.expunge(row)
            return row, new

    def standing(self, team_id: str | None = None) -> list[PassageDemotion]:
        """The demotions (of one workspace) whose Not helpful vote still stands, oldest first."""
        with self.database.session() as session:
            query = (
                select(PassageDemotion)
                .join(
                    Vote,
                    (Vote.interaction_id == PassageDemotion.interaction_id) & (Vote.user_id == PassageDemotion.user_id),
                )
                .where(Vote.helpful.is_(False))
                .order_by(PassageDemotion.id)
            )
            if team_id is not None:
                query = query.where(PassageDemotion.team_id == team_id)
            return detached(session, query)

    def remove(self, demotion_id: int, team_id: str | None = None) -> PassageDemotion | None:
        """Lift a demotion; None when there is no such demotion (in the workspace)."""
        return remove_row(self.database, PassageDemotion, demotion_id, team_id)

    def demoted(self, team_id: str, question: str, query_vector) -> set[Section]:
        """The sections kept from `question` (vector `query_vector`): demoted for a question close to it, and
        not outweighed by Helpful votes (module docstring)."""
        rows = [r for r in self.standing(team_id) if r.embedding_model == self._model()]
        if not rows:
            return set()
        cosines = np.asarray([r.embedding for r in rows], dtype=np.float32) @ np.asarray(
            query_vector, dtype=np.float32
        ).reshape(-1)
        keys = digit_keys(question)
        against: dict[Section, set[str]] = {}
        for row, cosine in zip(rows, cosines.tolist(), strict=True):
            if cosine >= MATCH_COSINE and digit_keys(row.question) == keys:
                against.setdefault((row.path, tuple(row.heading_path)), set()).add(row.user_id)
        return {
            section
            for section, people in against.items()
            if len(people) >= len(helpful_voters(self.database, self.embedder, team_id, question, section))
        }


def without_sections(result, sections: set[Section], version, term_ids_of, rescore):
    """`result` with no passage from `sections`: a hit whose passage is in one shows its page's next best window
    outside them (the reader's order, then the retrieval prior, as *More on this page* ranks them), or is left
    out when the page has none. `rescore(hits)` gives the confidence of the hits as they now stand. The result
    itself when nothing is demoted."""
    if not sections or not any(_section(hit) in sections for hit in result.hits):
        return result
    hits = []
    for hit in result.hits:
        if _section(hit) not in sections:
            hits.append(hit)
            continue
        windows = hit.windows
        if not windows and result.query_vector is not None:
            windows = PassageReader.candidates([hit], version, result.query_vector, result.query_terms, term_ids_of)
        left = [w for w in windows or () if (hit.doc.path, tuple(w.chunk.heading_path)) not in sections]
        if not left:
            continue
        best = min(left, key=window_rank)
        start, end = widen(best.units, best.start, best.end)
        read = best.logit != float("-inf")
        hits.append(
            dataclasses.replace(
                hit,
                chunk_id=best.chunk_id,
                chunk=best.chunk,
                passage=shown_text(best.units, start, end),
                reader_logit=best.logit if read else None,
                windows=left,
            )
        )
    features, confidence = rescore(hits)
    return dataclasses.replace(result, hits=hits, confidence=confidence, features=features, lookup=None)


def _section(hit) -> Section:
    return hit.doc.path, tuple(hit.chunk.heading_path if hit.chunk is not None else ())
