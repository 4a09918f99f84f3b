"""Which questions make content gaps, and their embeddings: the questions not answered well and in no gap
yet, the embedding a declined question kept from being searched (`question_vectors`, written with its record:
`assistant.records.spool`), and whether a question re-asked after the content changed is answered now."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlalchemy import and_, exists, or_, select

from assistant.db.gap_models import GapQuestion, QuestionVector
from assistant.db.models import Interaction, MentorRequest, Vote


def model_key(embedder) -> str:
    """Which model made a vector (vectors of two models do not compare)."""
    return embedder.spec.describe()


def question_vectors(session, embedder, pending: list[tuple[int, str, str]]) -> tuple[np.ndarray, int]:
    """The questions' embeddings: kept when they were answered (`QuestionVector`, declined questions), else
    made now, each distinct question once (people repeat themselves word for word); and how many were made."""
    ids = [interaction_id for interaction_id, _, _ in pending]
    kept: dict[int, bytes] = {}
    for start in range(0, len(ids), 1000):
        kept.update(
            session.execute(
                select(QuestionVector.interaction_id, QuestionVector.embedding).where(
                    QuestionVector.interaction_id.in_(ids[start : start + 1000]),
                    QuestionVector.embedding_model == model_key(embedder),
                )
            ).all()
        )
    dimension = embedder.spec.dimension
    vectors = np.zeros((len(pending), dimension), dtype=np.float32)
    missing: dict[str, list[int]] = defaultdict(list)
    for row, (interaction_id, question, _) in enumerate(pending):
        blob = kept.get(interaction_id)
        if blob is not None and len(blob) == 4 * dimension:
            vectors[row] = np.frombuffer(blob, dtype=np.float32)
        else:
            missing[" ".join(question.lower().split())].append(row)
    if missing:
        texts = [pending[rows[0]][1] for rows in missing.values()]
        # Questions are short: batches of 32 embed them faster than the encoder's default 8 (bench/gaps.py).
        made = np.asarray(embedder.encode(texts, batch_size=32), dtype=np.float32)
        for rows, vector in zip(missing.values(), made, strict=True):
            vectors[rows] = vector
    return vectors, len(missing)


def pending_questions(session, team_id: str) -> list[tuple[int, str, str]]:
    """(interaction id, question, reason) of the workspace's questions not answered well and in no gap yet,
    oldest first: declined, answered and voted not helpful (no helpful vote), handed to a mentor."""
    unhelpful = exists().where(Vote.interaction_id == Interaction.id, Vote.helpful.is_(False))
    helpful = exists().where(Vote.interaction_id == Interaction.id, Vote.helpful.is_(True))
    handed = exists().where(MentorRequest.interaction_id == Interaction.id)
    placed = exists().where(GapQuestion.interaction_id == Interaction.id)
    rows = session.execute(
        select(Interaction.id, Interaction.question, Interaction.answered, unhelpful & ~helpful)
        .where(
            Interaction.team_id == team_id,
            ~placed,
            or_(
                and_(Interaction.answered.is_(False), Interaction.outcome == "not_answered"),
                and_(Interaction.answered.is_(True), unhelpful, ~helpful),
                and_(Interaction.outcome.in_(("answered", "not_answered")), handed),
            ),
        )
        .order_by(Interaction.created_at, Interaction.id)
    ).all()
    return [
        (i, q, "not_answered" if not answered else "not_helpful" if voted_down else "handed_off")
        for i, q, answered, voted_down in rows
    ]


def answered_now(interaction: Interaction, answer) -> bool:
    """The answer given now is a new one: the question was declined then, or another passage comes first."""
    if not getattr(answer, "answered", False):
        return False
    if not interaction.answered:
        return True
    before = ((interaction.answer or {}).get("sources") or [{}])[0]
    now = answer.sources[0] if answer.sources else None
    if now is None:
        return False
    return (now.path, now.snippet) != (before.get("path"), before.get("snippet"))
