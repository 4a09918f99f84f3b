"""Asking: a question in, an `Answer` out, recorded. Only content the asker may see and their workspace answers
from is searched; a section people taught for the question wins over the reader; an LLM's sentence is added
when one is configured; every answer is recorded (`assistant.records.interactions`). Teaching a question its
answer (`teach`) and the taught pairs are here too.

    answer = asking.ask("how do i reset my vpn token", Asker(user_id="U123", surface="cli"))
"""

from __future__ import annotations

import dataclasses
import logging
import time

from assistant.access.audiences import WITHHELD_NOTICE, Viewer
from assistant.access.tenancy import ContentScope, Workspaces
from assistant.access.viewers import Viewers
from assistant.answering.answers import Answer, compose, source_of, unanswerable
from assistant.answering.demotions import Demotions, without_sections
from assistant.answering.followups import with_context
from assistant.answering.generation import AnswerGenerator, generate_for
from assistant.answering.outline import page_outline
from assistant.answering.questions import prepare
from assistant.answering.retrieval import Retriever, SearchResult
from assistant.answering.verified import VerifiedAnswers, VerifyError, verified_answer
from assistant.db.database import DatabaseUnavailableError
from assistant.db.models import Interaction
from assistant.learning.suggestions import CourseSuggestions
from assistant.records.audit import AuditLog
from assistant.records.interactions import Asker, Interactions
from assistant.records.spool import vector_row
from assistant.settings import Settings

log = logging.getLogger(__name__)

SCOPED_CANDIDATES = 30  # documents ranked when only part of the content may answer


@dataclasses.dataclass(eq=False, repr=False)  # a use case: its collaborators are no value to compare or print
class Asking:
    """Answers questions from the index `retriever` serves and records them in `records`."""

    settings: Settings
    retriever: Retriever
    workspaces: Workspaces
    verified: VerifiedAnswers
    records: Interactions
    access: Viewers
    audit: AuditLog
    courses: CourseSuggestions
    generator: AnswerGenerator | None = None  # generated answers (MOMENT_LLM_URL), set from the settings
    demotions: Demotions | None = None  # Not helpful votes' demotions (`assistant.answering.demotions`)

    def ask(
        self,
        text: str | None,
        asker: Asker,
        *,
        types: list[str] | None = None,
        tags: list[str] | None = None,
        folders: list[str] | None = None,
        log_interaction: bool = True,
        viewer: Viewer | None = None,
    ) -> Answer:
        """Answer a question from the content the asker's workspace sees (and, with `folders`, only under
        those folders), and record the interaction in that workspace.

        Only content the asker may see is searched (`assistant.access.audiences`): their user groups are looked up
        when the index has restricted items at all; an answer posted in a channel uses content for everyone
        only. `viewer` answers as someone else would see it (`moment ask --as`).

        Raises `IndexMissingError` / `IndexMismatchError` when there is no usable index (after
        recording the attempt). A database outage never loses the record: it is spooled to disk and
        written when the database is back.
        """
        started = time.perf_counter()
        question = prepare(text, self.settings.max_question_chars, slack_markup=asker.in_slack)
        features = query_vector = vector = None
        if viewer is None:
            if asker.answered_in_channel:
                viewer = Viewer.public()
            else:
                viewer = lambda: self.access.viewer_for(asker.user_id, self.workspaces.team(asker.team_id))  # noqa: E731 (only when needed)
        if not question.searchable:
            answer = unanswerable(question)
        else:
            try:
                scope = self.workspaces.content_scope(self.workspaces.team(asker.team_id)).within(folders or ())
                # Scoped answers are chosen from more candidates, so that content outside the scope
                # can't crowd out everything inside it.
                k = 10 if scope.everything else SCOPED_CANDIDATES
                result = within_scope(
                    self.retriever.search(question.text, k=k, types=types, tags=tags, viewer=viewer), scope
                )
            except Exception:
                answer = Answer(question=question.text, answered=False, confidence=0.0, outcome="error")
                answer.latency_ms = (time.perf_counter() - started) * 1000
                if log_interaction:
                    self.records.record(answer, asker, len(question.original), None)
                raise
            keywords = self.retriever.version().keywords
            taught = self._verified(question.text, asker, result, viewer, scope)
            if not taught:
                result = self._without_demoted(question.text, asker, result)
            answer = taught or compose(
                question,
                result,
                self.retriever.params,
                content_base_url=self.settings.content_base_url,
                term_ids_of=keywords.passage_terms,
            )
            if answer.answered and not taught:
                answer.outline = page_outline(
                    result,
                    self.retriever.version(),
                    keywords.passage_terms,
                    content_base_url=self.settings.content_base_url,
                )
            unknown = result.viewer is not None and not result.viewer.known and result.hidden_documents
            if unknown and self._withheld_from(answer, question, result, types, tags):
                answer.notices.append(WITHHELD_NOTICE)
                log.warning("restricted content withheld from %s: %s", asker.user_id, result.viewer.why_unknown)
            features, query_vector = {k: round(v, 4) for k, v in result.features.items()}, result.query_vector
            if answer.answered and self.generator is not None and not taught:  # people outrank the model
                answer.generated = self._generated(question.text, result, asker)
            if not answer.answered and query_vector is not None:  # a content gap's: kept, not embedded again
                vector = vector_row(self.retriever.embedder.spec.describe(), query_vector)
        answer.latency_ms = (time.perf_counter() - started) * 1000
        if log_interaction:
            answer.interaction_id = self.records.record(answer, asker, len(question.original), features, vector)
            answer.course = self.courses.suggestion_for(  # a course, after repeated questions on its topic
                asker.user_id,
                self.workspaces.team(asker.team_id),
                asker.surface,
                answer.interaction_id,
                query_vector,
                viewer,
            )
        return answer

    def ask_again(self, interaction: Interaction) -> Answer:
        """A recorded question answered as its asker would be answered now, without recording it (content gaps
        re-ask their questions after the content changed)."""
        asker = Asker(user_id=interaction.user_id, surface=interaction.surface, team_id=interaction.team_id,
                      channel_id=interaction.channel_id)  # fmt: skip
        return self.ask(interaction.question, asker, log_interaction=False)

    def ask_in_thread(self, text: str | None, previous: str | None, asker: Asker, **kwargs) -> Answer:
        """A follow-up in a thread, searched with the thread's earlier question when it leans on it
        ("what about out of hours?")."""
        return self.ask(with_context(text or "", previous), asker, **kwargs)

    def _generated(self, text: str, result: SearchResult, asker: Asker):
        """A generated answer from the passages the asker was answered from (after the Slack
        acknowledgement, like all answering), unless the workspace switched them off; None when the model
        does not know or its quotes cannot be verified (the extractive answer stands)."""
        try:
            if not self.workspaces.generated_answers(self.workspaces.team(asker.team_id)):
                return None
        except Exception:
            log.exception("generated answers: the workspace's switch could not be read")
            return None
        version = self.retriever.version()
        term_ids_of = version.keywords.passage_terms
        base_url = self.settings.content_base_url
        return generate_for(
            self.generator,
            text,
            result,
            version=version,
            term_ids_of=term_ids_of,
            source_of=lambda hit: source_of(hit, result, term_ids_of=term_ids_of, content_base_url=base_url),
        ).generated

    def _verified(self, text: str, asker: Asker, result, viewer, scope) -> Answer | None:
        """The answer from a section taught for this question (`assistant.answering.verified`), when one is
        close enough and the asker may see it; else None (answered as usual)."""
        if result.query_vector is None:
            return None
        version = self.retriever.version()

        def may_see(audience) -> bool:
            who = viewer() if callable(viewer) else viewer
            return who.may_see(audience)

        try:
            match = self.verified.match(
                self.workspaces.team(asker.team_id), text, result.query_vector, version, may_see=may_see
            )
        except DatabaseUnavailableError as exc:  # an outage or read-only database, which recording reports too
            log.info("verified answers could not be consulted (%s); answering as usual", exc)
            return None
        except Exception:
            log.exception("verified answers could not be consulted; answering as usual")
            return None
        if match is None or not scope.allows(match.section.path):
            return None
        return verified_answer(text, match, version, result, self.settings.content_base_url)

    def _without_demoted(self, text: str, asker: Asker, result: SearchResult) -> SearchResult:
        """`result` without the sections Not helpful votes demoted for this question
        (`assistant.answering.demotions`); as it is when none are, or when they cannot be read."""
        if self.demotions is None or result.query_vector is None or not result.hits:
            return result
        try:
            sections = self.demotions.demoted(self.workspaces.team(asker.team_id), text, result.query_vector)
        except DatabaseUnavailableError as exc:
            log.info("demotions could not be consulted (%s); answering as usual", exc)
            return result
        except Exception:
            log.exception("demotions could not be consulted; answering as usual")
            return result
        version = self.retriever.version()
        return without_sections(
            result,
            sections,
            version,
            version.keywords.passage_terms,
            lambda hits: self.retriever.rescore(text, hits),
        )

    def demote(self, interaction_id: int, team_id: str, user_id: str):
        """`user_id` voted Not helpful on answer `interaction_id`: its section is demoted for that question and
        those close to it (audited). None when there was nothing to demote."""
        if self.demotions is None:
            return None
        recorded = self.demotions.record(interaction_id, team_id, user_id)
        if recorded is None:
            return None
        row, new = recorded
        if new:  # the same vote again (or its comment, asked for after the click) is no new demotion
            where = " › ".join([row.path, *row.heading_path])
            self.audit.record(
                user_id, "demote", True, f"#{row.id} {row.question[:300]!r} -> {where}"[:2000], team_id=team_id
            )
        return row

    def demotions_of(self, team_id: str | None = None) -> list:
        """The standing demotions (of the workspace `team_id`; None: of every workspace), oldest first."""
        return self.demotions.standing(team_id) if self.demotions is not None else []

    def lift_demotion(self, demotion_id: int, user_id: str, *, team_id: str | None = None):
        """Remove a demotion of the workspace (`moment demotions remove`); audited. None: no such demotion."""
        team = self.workspaces.team(team_id)
        row = self.demotions.remove(demotion_id, team) if self.demotions is not None else None
        detail = f"#{demotion_id} {row.question[:300]!r}" if row else f"#{demotion_id}: no such demotion"
        self.audit.record(user_id, "demotion_remove", row is not None, detail, team_id=team)
        return row

    def _withheld_from(self, answer: Answer, question, result, types, tags) -> bool:
        """The asker's groups are unknown and restricted items were left out: would the answer have shown
        one of them without the filter? (Ranked again over everything, with the question's vector and without
        the reader; only while groups cannot be learnt.) Telling the asker "something was withheld" on every
        answer would be noise; told only here, they know to ask again later. A non-member learns no more than
        that some restricted item matched their question, never which."""
        try:
            everything = self.retriever.search(
                question.text, k=10, types=types, tags=tags, query_vector=result.query_vector, read=False
            )
        except Exception:
            log.exception("could not tell whether restricted content was withheld")
            return True  # say so rather than not
        unfiltered = compose(question, everything, self.retriever.params)
        shown = {s.path for s in answer.sources}
        return any(s.audience and s.path not in shown for s in unfiltered.sources)

    def teach(
        self,
        question: str,
        path: str,
        heading: str | None,
        user_id: str,
        *,
        team_id: str | None = None,
        interaction_id: int | None = None,
    ):
        """Teach `question` to be answered from the section `heading` of item `path` (`moment verify`, a
        mentor's or admin's *This answered it* / *Pick the right section*); audited. Raises `VerifyError`."""
        team = self.workspaces.team(team_id)
        try:
            pair = self.verified.teach(
                team, question, path, heading, user_id, self.retriever.version(), interaction_id=interaction_id
            )
        except VerifyError as exc:
            self.audit.record(user_id, "verify", False, f"{path} › {heading or ''}: {exc}"[:2000], team_id=team)
            raise
        where = " › ".join([path, *pair.heading_path])
        self.audit.record(user_id, "verify", True, f"#{pair.id} {pair.question[:300]!r} -> {where}", team_id=team)
        return pair

    def verified_pairs(self, team_id: str | None = None) -> list[tuple]:
        """Every taught pair (of the workspace `team_id`; None: of every workspace) with its state against the
        serving index and the owner of its item: (pair, status, owner or None) (`moment verified list`)."""
        version = self.retriever.version()
        rows = []
        for pair in self.verified.pairs(team_id):
            doc = version.by_path.get(pair.path)
            rows.append((pair, self.verified.status(pair, version), doc.meta.owner if doc else None))
        return rows

    def sections_of(self, path: str) -> list[tuple[str, ...]]:
        """The heading paths of the indexed item at `path`, in page order (empty: not indexed)."""
        version = self.retriever.version()
        doc = version.by_path.get(path)
        if doc is None:
            return []
        stored = version.chunks(list(range(doc.chunk_start, doc.chunk_start + doc.chunk_count)))
        return list(dict.fromkeys(stored[i].chunk.heading_path for i in sorted(stored)))

    def forget_verified(self, pair_id: int, user_id: str, *, team_id: str | None = None):
        """Remove a taught pair of the workspace (`moment verified remove`); audited. None: no such pair."""
        team = self.workspaces.team(team_id)
        pair = self.verified.remove(pair_id, team)
        detail = f"#{pair_id} {pair.question[:300]!r}" if pair else f"#{pair_id}: no such verified answer"
        self.audit.record(user_id, "verified_remove", pair is not None, detail, team_id=team)
        return pair


def within_scope(result: SearchResult, scope: ContentScope) -> SearchResult:
    """Keep only the documents the scope allows (a workspace's content, a help channel's folders). When
    the best match was outside the scope, the confidence was about it, not about anything inside: the
    question is declined (and the asker offered a mentor)."""
    if scope.everything or not result.hits:
        return result
    inside = [hit for hit in result.hits if scope.allows(hit.doc.path)]
    if inside and inside[0] is result.hits[0]:
        return dataclasses.replace(result, hits=inside)
    return dataclasses.replace(result, hits=inside, confidence=0.0)
