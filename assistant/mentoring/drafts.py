"""A mentor's answer becomes content: drafts in the database, approved by an admin, written into the
content folder by whichever host indexes it.

    drafts = Drafts(database)
    draft = drafts.save(author_id="U0MENTOR1", title="Unfreeze a field tablet", body="Hold ...", request_id=7)
    drafts.decide(draft.id, "U0ADMIN01", approve=True)   # any web host: the database only
    drafts.write_approved(content_dir)                    # the indexing host, before it builds

Nothing here writes on the host where a draft is saved or approved: in a deployment of several hosts,
the worker that re-indexes has its own content folder, and the database is what they share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from assistant.access.audiences import inherited_audience
from assistant.db.database import Database
from assistant.db.models import Draft, InteractionSource, Mentor, MentorRequest, Workspace, utcnow
from assistant.mentoring.handoff import HandoffError
from assistant.mentoring.views import snapshot

APPROVED_FOLDER = "mentor-answers"  # inside the content folder, indexed like any content


class DraftError(HandoffError):
    """A draft cannot be saved or decided; the message says why, for the person who tried."""


@dataclass(frozen=True)
class DraftView:
    """A draft as its readers see it: a snapshot, not a database row."""

    id: int
    team_id: str
    author_id: str
    title: str
    body: str
    path: str  # where it lives in the content folder once approved
    status: str  # draft | approved | rejected
    request_id: int | None = None
    audience: tuple[str, ...] = ()  # the user groups it is for, inherited from the content it answers from

    @classmethod
    def of(cls, draft: Draft) -> DraftView:
        return snapshot(cls, draft, audience=tuple(draft.audience or ()))


class Drafts:
    """Job-aid drafts written from resolved requests; admins approve them into the content."""

    def __init__(
        self, database: Database, audience_of: Callable[[str, Iterable[str] | None], Iterable[str]] | None = None
    ) -> None:
        self.database = database
        # An item's audience now (`Viewers.audience_of`); without it, the one recorded when it was shown.
        self.audience_of = audience_of or (lambda path, recorded: tuple(recorded or ()))

    def save(self, team_id: str, *, author_id: str, title: str, body: str, request_id: int | None = None) -> DraftView:
        """Store a draft (its `path` is where it will live in the content folder once approved). A draft from
        a request whose question was answered from restricted content keeps that content's audience
        (`assistant.access.audiences.inherited_audience`): the mentor may have written down what it says."""
        title = " ".join(title.split())[:200]
        body = body.strip()
        if not title or not body:
            raise DraftError("A draft needs a title and the answer.")
        tags: list[str] = []
        audience: list[str] = []
        with self.database.session() as session:
            if request_id is not None:
                request = session.get(MentorRequest, request_id)
                if request is None or request.owner_id != author_id or request.team_id != team_id:
                    raise DraftError("Only the mentor who took this request can save its answer as a draft.")
                owner = session.get(Mentor, (team_id, author_id))
                tags = list(owner.topics[:3]) if owner else []
                if request.interaction_id is not None:
                    shown = session.scalars(
                        select(InteractionSource)
                        .where(InteractionSource.interaction_id == request.interaction_id)
                        .order_by(InteractionSource.rank)
                    ).all()
                    audience = inherited_audience(self.audience_of(s.path, s.audience) for s in shown)
            draft = Draft(
                team_id=team_id,
                author_id=author_id,
                title=title,
                body=body,
                tags=tags,
                request_id=request_id,
                path="",
                audience=audience or None,
            )
            session.add(draft)
            session.flush()
            # A workspace with a content folder of its own keeps its mentors' answers there, out of others' sight.
            workspace = session.get(Workspace, team_id)
            folder = workspace.content_folder if workspace and workspace.content_folder else ""
            draft.path = f"{folder}{APPROVED_FOLDER}/{_slug(title)}-{draft.id}.md"
            return DraftView.of(draft)

    def pending(self, team_id: str) -> list[DraftView]:
        """The workspace's drafts waiting for a decision."""
        with self.database.session() as session:
            return [
                DraftView.of(d)
                for d in session.scalars(
                    select(Draft).where(Draft.team_id == team_id, Draft.status == "draft").order_by(Draft.created_at)
                ).all()
            ]

    def decide(self, team_id: str, draft_id: int, by: str, *, approve: bool) -> DraftView:
        """Approve (the next index build writes it into the content) or reject a draft. Only a pending
        draft changes."""
        with self.database.session() as session:
            changed = session.execute(
                update(Draft)
                .where(Draft.id == draft_id, Draft.team_id == team_id, Draft.status == "draft")
                .values(status="approved" if approve else "rejected", decided_by=by, decided_at=utcnow())
            ).rowcount
            draft = session.get(Draft, draft_id)
            draft = draft if draft is not None and draft.team_id == team_id else None
            if not changed:
                raise DraftError(
                    "That draft no longer exists." if draft is None else f"That draft is already {draft.status}."
                )
            return DraftView.of(draft)

    def write_approved(self, content_dir: Path) -> list[str]:
        """Write every approved answer this content folder does not have yet (an existing file, perhaps
        edited by its owner since, is left alone); returns the paths written."""
        with self.database.session() as session:
            approved = session.scalars(select(Draft).where(Draft.status == "approved").order_by(Draft.id)).all()
            questions = {
                r.id: r.question
                for r in session.scalars(
                    select(MentorRequest).where(MentorRequest.id.in_([d.request_id for d in approved if d.request_id]))
                )
            }
        written = []
        for draft in approved:
            path = Path(content_dir) / draft.path
            if not path.exists():
                _write(draft, path, questions.get(draft.request_id))
                written.append(draft.path)
        return written


def _write(draft: Draft, path: Path, question: str | None) -> None:
    import yaml

    meta = {
        "title": draft.title,
        "type": "job-aid",
        "owner": draft.author_id,
        "tags": draft.tags,
        "reviewed": (draft.decided_at or draft.created_at or utcnow()).date(),
        "review_every": 180,
        **({"audience": list(draft.audience)} if draft.audience else {}),
        "source": {"kind": "mentor answer", "request": draft.request_id, "draft": draft.id, "question": question},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    tmp = path.with_name(f".{path.name}.tmp")  # a dotfile: never picked up by the indexer
    tmp.write_text(f"---\n{front}\n---\n\n{draft.body}\n", encoding="utf-8")
    tmp.replace(path)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "answer"
