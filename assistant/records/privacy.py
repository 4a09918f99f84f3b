"""`moment forget USER_ID`: a person's right to be forgotten."""

from __future__ import annotations

from sqlalchemy import delete, select

from assistant.db.database import Database
from assistant.db.models import (
    CourseInterest,
    CourseSuggestion,
    Interaction,
    MentorRequest,
    PassageDemotion,
    Vote,
)
from assistant.records.xapi import XapiOutbox


def forget_user(database: Database, xapi: XapiOutbox, user_id: str) -> dict[str, int]:
    """Delete the person's interactions (with their sources, votes and places in content gaps), their votes on
    other answers (and the passages those demoted), their mentor requests, their course suggestions and the
    questions counted towards them, in one transaction; statements about them already in the LRS are voided
    (voiding statements are queued in the same transaction), and unsent ones are dropped. Gaps left without
    questions go; the others are labelled again from the questions left, and the person leaves their history
    and owners (`Gaps.forget_person`)."""
    from assistant.insights.gaps import Gaps  # not at the top: assistant.insights reads assistant.records

    with database.session() as session:
        gaps = Gaps.gaps_of_person(session, user_id)
        interactions = session.scalars(select(Interaction).where(Interaction.user_id == user_id)).all()
        for interaction in interactions:
            session.delete(interaction)
        votes = session.execute(delete(Vote).where(Vote.user_id == user_id)).rowcount
        # Their Not helpful votes' demotions, and others' demotions of their questions (which hold the question).
        asked = [i.id for i in interactions]
        demotions = session.execute(
            delete(PassageDemotion).where(
                (PassageDemotion.user_id == user_id) | PassageDemotion.interaction_id.in_(asked)
            )
        ).rowcount
        requests = session.scalars(select(MentorRequest).where(MentorRequest.asker_id == user_id)).all()
        for request in requests:
            session.delete(request)
        suggestions = session.execute(delete(CourseSuggestion).where(CourseSuggestion.user_id == user_id)).rowcount
        interests = session.execute(delete(CourseInterest).where(CourseInterest.user_id == user_id)).rowcount
        voided = xapi.void_user(session, user_id)
        gaps_deleted = Gaps.forget_person(session, user_id, gaps)
    return {
        "interactions": len(interactions),
        "votes": votes,
        "demotions": demotions,
        "mentor_requests": len(requests),
        "course_suggestions": suggestions,
        "course_interests": interests,
        "voided": voided,
        "gaps_deleted": gaps_deleted,
    }
