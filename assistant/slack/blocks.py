"""Block Kit rendering: data in, blocks out. Pure functions; no Slack calls, no database.

Built with slack_sdk's typed block classes; action ids are the constants below, shared with the
listeners in `app.py`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from assistant.answering.answers import Answer, Source
from assistant.answering.generation import Generated
from assistant.answering.outline import outline_label
from assistant.answering.verified import verified_label
from assistant.slack.course_blocks import course_blocks
from assistant.slack.formatting import (
    CONTEXT_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    duration,
    escape,
    link,
    quote,
    truncate,
)
from assistant.slack.teach_blocks import teach_actions

# Action and callback ids.
VOTE_HELPFUL = "moment_vote_helpful"
VOTE_NOT_HELPFUL = "moment_vote_not_helpful"
ASK_MENTOR = "moment_ask_mentor"
SHARE_ANSWER = "moment_share_answer"
FEEDBACK_MODAL = "moment_feedback_modal"
FEEDBACK_BLOCK = "feedback"
FEEDBACK_INPUT = "looking_for"
ASK_SHORTCUT = "ask_moment"
SAME_QUESTION = "moment_same_question"
OUTLINE_BLOCK = "moment_outline"
OUTLINE_LABEL_CHARS = 90  # one entry's heading path and first words, in the context line
METADATA_QUESTION_CHARS = 500  # the question an answer was for, kept in its metadata for thread follow-ups

TYPE_EMOJI = {
    "job-aid": ":clipboard:",
    "procedure": ":bookmark_tabs:",
    "reference": ":books:",
    "video": ":movie_camera:",
}


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, SECTION_TEXT_LIMIT))


def source_line(
    source: Source, owner_names: Mapping[str, str] | None = None, today: dt.date | None = None
) -> tuple[str, str]:
    """(title line, context line) for one source."""
    where = " › ".join(escape(h) for h in source.heading_path)
    if source.start_seconds is not None:
        where = f"at {duration(source.start_seconds)}"
    elif source.page is not None and not source.heading_path:
        where = f"page {source.page}"
    title = f"{TYPE_EMOJI.get(source.type, ':page_facing_up:')} {link(source.url, source.title)}"
    if where:
        title += f"  ·  {where}"
    facts = [source.type_label]
    if source.audience:
        # Said plainly, so that the asker knows not to pass it on: the item is for these groups only.
        facts.append(":lock: For " + ", ".join(escape(group_label(g)) for g in source.audience) + " only")
    if source.owner:
        # A name, not a mention: a mention would notify the owner every time their page is shown.
        name = (owner_names or {}).get(source.owner)
        facts.append(f"Owner: {escape(name) if name else escape(source.owner)}")
    if source.stale and source.review_due:
        facts.append(f":warning: Past its review date ({source.review_due:%-d %b %Y}); check with the owner")
    elif source.reviewed:
        facts.append(f"Reviewed {source.reviewed:%-d %b %Y}")
    return title, "  ·  ".join(facts)


def group_label(name: str) -> str:
    """A user group as text: @handle, or its id as written (never `<!subteam^…>`, which would notify it)."""
    return name if name[:1] == "S" and name.isupper() else f"@{name}"


def answer_blocks(
    answer: Answer,
    *,
    owner_names: Mapping[str, str] | None = None,
    shareable: bool = False,
    shared_by: str | None = None,
    teachable: bool = False,
) -> list[Block]:
    """The answer message: snippet, up to three sources, and the buttons."""
    value = str(answer.interaction_id or "")
    blocks: list[Block] = []
    if shared_by:
        blocks.append(
            ContextBlock(elements=[_mrkdwn(f"Shared by <@{shared_by}>: “{escape(truncate(answer.question, 200))}”")])
        )
    for notice in answer.notices:
        blocks.append(ContextBlock(elements=[_mrkdwn(f":information_source: {escape(notice)}")]))

    if answer.outcome in ("empty", "no_words"):
        blocks.append(
            SectionBlock(text=_mrkdwn("Ask me a question in words, for example: _how do I reset my VPN token?_"))
        )
        return blocks

    mentor_button = ButtonElement(text="Ask a mentor", action_id=ASK_MENTOR, value=value)
    if answer.answered and answer.generated:
        own = next((s for s in answer.sources if s.path == answer.generated.path), None)
        blocks.extend(generated_blocks(answer.generated, source_line(own, owner_names)[1] if own else None))
        more = [s for s in answer.sources if s is not own]
    elif answer.answered:
        best, *more = answer.sources
        title, facts = source_line(best, owner_names)
        blocks.append(SectionBlock(text=_mrkdwn(f"{title}\n{quote(best.snippet)}")))
        if answer.verified:
            label = escape(verified_label(answer.verified, owner_names))
            facts = f":white_check_mark: *{label}*  ·  {facts}"
        blocks.append(ContextBlock(elements=[_mrkdwn(facts)]))
        if answer.outline:
            blocks.append(outline_block(answer.outline))
    if answer.answered:
        if more:
            blocks.append(DividerBlock())
            lines = []
            for source in more:
                t, f = source_line(source, owner_names)
                lines.append(f"{t}\n{f}")
            blocks.append(SectionBlock(text=_mrkdwn("*Also see*\n" + "\n".join(lines))))
        buttons = [
            ButtonElement(text="Helpful", action_id=VOTE_HELPFUL, value=value, style="primary"),
            ButtonElement(text="Not helpful", action_id=VOTE_NOT_HELPFUL, value=value),
            mentor_button,
        ]
    else:
        blocks.append(
            SectionBlock(
                text=_mrkdwn(
                    ":thinking_face: I don't have a vetted answer for that yet. A peer mentor who knows the topic "
                    "can help: they get your question with what I found."
                )
            )
        )
        if answer.sources:
            lines = []
            for source in answer.sources:
                t, f = source_line(source, owner_names)
                lines.append(f"{t}\n{f}")
            blocks.append(SectionBlock(text=_mrkdwn("*Possibly related*\n" + "\n".join(lines))))
        mentor_button = ButtonElement(text="Ask a mentor", action_id=ASK_MENTOR, value=value, style="primary")
        buttons = [mentor_button]
        if answer.sources:
            buttons.append(ButtonElement(text="This helped", action_id=VOTE_HELPFUL, value=value))
    if shareable:
        buttons.append(ButtonElement(text="Share in channel", action_id=SHARE_ANSWER, value=value))
    if answer.interaction_id is not None:
        blocks.append(ActionsBlock(block_id="moment_answer_actions", elements=buttons))
        if teachable:  # an admin: This answered it / Pick the right section (verified answers)
            blocks.append(teach_actions(answer.interaction_id))
    if answer.course and not shared_by:  # a course after repeated questions: the asker's, never shared
        blocks.extend(course_blocks(answer.course))
    return blocks


def outline_block(entries) -> ContextBlock:
    """More on this page, compactly: one context line of links, each an entry's heading path and first words
    (escaped: content text is echoed)."""
    links = [link(entry.url, truncate(outline_label(entry), OUTLINE_LABEL_CHARS)) for entry in entries]
    return ContextBlock(block_id=OUTLINE_BLOCK, elements=[_context("*More on this page:* " + "  ·  ".join(links))])


def _context(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, CONTEXT_TEXT_LIMIT))


def generated_blocks(generated: Generated, facts: str | None = None) -> list[Block]:
    """A generated answer: the model's sentence above the verified quotes, and where they come from, said to
    be generated (everything the model wrote, and the content it quotes, escaped); `facts`: its page's
    context line (type, owner, review), when it is one of the answer's sources."""
    if facts is None and generated.audience:
        facts = ":lock: For " + ", ".join(escape(group_label(g)) for g in generated.audience) + " only"
    quotes = "\n".join(quote(q) for q in generated.quotes)
    where = " › ".join(escape(h) for h in generated.heading_path)
    place = link(generated.url, generated.title) + (f" › {where}" if where else "")
    return [
        SectionBlock(text=_mrkdwn(f"{escape(generated.text)}\n{quotes}")),
        ContextBlock(
            elements=[
                _mrkdwn(
                    f":sparkles: Generated from {place}; check the quoted passage. "
                    f"(Model: {escape(truncate(generated.model, 80))})"
                )
            ]
        ),
        *([ContextBlock(elements=[_mrkdwn(facts)])] if facts else []),
    ]


def answer_text(answer: Answer) -> str:
    """The notification / fallback text of an answer message."""
    if answer.outcome in ("empty", "no_words"):
        return "Ask me a question in words."
    if answer.answered and answer.generated:
        return escape(truncate(f"{answer.generated.text} (generated from {answer.generated.title})", 300))
    if answer.answered:
        # Escaped like the blocks: Slack parses this text too (notifications, fallback), so <!channel> would ping.
        return escape(truncate(f"{answer.sources[0].title}: {answer.sources[0].snippet}", 300))
    return "I don't have a vetted answer for that yet. A peer mentor can help."


def answer_metadata(answer: Answer) -> dict:
    """What an answer message carries in its metadata: the question, for follow-ups in its thread."""
    payload = {"question": truncate(answer.question, METADATA_QUESTION_CHARS)}
    if answer.interaction_id is not None:
        payload["interaction_id"] = answer.interaction_id
    return payload


def source_title_link(source: Source) -> str:
    return link(source.url, source.title)


def same_question_blocks(asker_id: str, interaction_id: int) -> list[Block]:
    """To a bystander who clicked Ask a mentor on someone else's answer."""
    return [
        SectionBlock(
            text=_mrkdwn(
                f"Only <@{asker_id}>, who asked, can ask a mentor for this question. "
                "If you have the same question, say so: you'll hear when it's answered."
            )
        ),
        ActionsBlock(
            elements=[
                ButtonElement(text="I have this question too", action_id=SAME_QUESTION, value=str(interaction_id))
            ]
        ),
    ]


def channel_offer_blocks(answer: Answer) -> list[Block]:
    """In a help channel, only to the asker, when Moment is not sure enough to answer in public."""
    return [
        SectionBlock(
            text=_mrkdwn(
                ":wave: I don't have an answer I'm sure of for this, so I've stayed quiet in the channel. "
                "A peer mentor who knows the topic can help: they get your question with what I found."
            )
        ),
        ActionsBlock(
            block_id="moment_answer_actions",
            elements=[
                ButtonElement(
                    text="Ask a mentor", action_id=ASK_MENTOR, value=str(answer.interaction_id), style="primary"
                )
            ],
        ),
        ContextBlock(elements=[_mrkdwn("Only you can see this.")]),
    ]


def problem_blocks(message: str) -> list[Block]:
    """A short, honest message when something failed after the acknowledgement."""
    return [SectionBlock(text=_mrkdwn(f":warning: {escape(message)}"))]


def feedback_modal(interaction_id: int, question: str) -> View:
    """ "What were you looking for?" after a Not helpful vote."""
    return View(
        type="modal",
        callback_id=FEEDBACK_MODAL,
        private_metadata=json.dumps({"interaction_id": interaction_id}),
        title=PlainTextObject(text="Not helpful"),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Skip"),
        blocks=[
            SectionBlock(text=_mrkdwn(f"You asked: _{escape(truncate(question, 300))}_")),
            InputBlock(
                block_id=FEEDBACK_BLOCK,
                label=PlainTextObject(text="What were you looking for?"),
                optional=True,
                element=PlainTextInputElement(action_id=FEEDBACK_INPUT, multiline=True, max_length=2000),
                hint=PlainTextObject(text="L&D reads these to fix and write content."),
            ),
        ],
    )


def home_view(
    recent: Sequence[Mapping], mentor_section: Sequence[Block] = (), admin_section: Sequence[Block] = ()
) -> View:
    """App Home: how to ask, the person's recent questions, and (for mentors and admins) their queues."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="Moment")),
        SectionBlock(
            text=_mrkdwn(
                "Stuck in the middle of something? Ask me: send me a direct message, type `/ask your question`, "
                "mention me in a channel, or use *Ask Moment* on any message. I answer from the curated job aids, "
                "procedures and training videos, and find a peer mentor when they are not enough."
            )
        ),
        DividerBlock(),
        HeaderBlock(text=PlainTextObject(text="Your recent questions")),
    ]
    if not recent:
        blocks.append(SectionBlock(text=_mrkdwn("_Nothing yet. Your questions and my answers will appear here._")))
    for item in recent:
        mark = ":white_check_mark:" if item["answered"] else ":grey_question:"
        line = f"{mark} *{escape(truncate(item['question'], 150))}*"
        if item.get("top_title"):
            line += f"\n{link(item.get('top_url'), item['top_title'])}"
        elif not item["answered"]:
            line += "\n_No vetted answer yet._"
        blocks.append(SectionBlock(text=_mrkdwn(line)))
        blocks.append(ContextBlock(elements=[_mrkdwn(f"{item['when']:%-d %b %Y, %H:%M} UTC")]))
    blocks.extend(mentor_section)
    blocks.extend(admin_section)
    return View(type="home", blocks=blocks[:100])
