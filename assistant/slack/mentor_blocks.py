"""Block Kit for mentor hand-offs: offers, the conversation, escalation, drafts, the mentor's App Home."""

from __future__ import annotations

import json
from collections.abc import Sequence

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

from assistant.mentoring.drafts import DraftView
from assistant.mentoring.mentors import MentorView
from assistant.mentoring.views import OfferView, RequestView
from assistant.slack.blocks import group_label
from assistant.slack.formatting import SECTION_TEXT_LIMIT, escape, link, quote, truncate
from assistant.slack.teach_blocks import teach_actions

ACCEPT = "moment_mentor_accept"
DECLINE = "moment_mentor_decline"
CANCEL = "moment_request_cancel"
RESOLVE = "moment_request_resolve"
SAVE_DRAFT = "moment_save_draft"
DRAFT_MODAL = "moment_draft_modal"
DRAFT_TITLE = "draft_title"
DRAFT_BODY = "draft_body"
APPROVE_DRAFT = "moment_draft_approve"
REJECT_DRAFT = "moment_draft_reject"
RESOLVE_IN_THREAD = "moment_request_resolve_in_thread"
PAUSE = "moment_mentor_pause"
RESUME = "moment_mentor_resume"


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, SECTION_TEXT_LIMIT))


def _where(request: RequestView) -> str:
    return f" in <#{request.channel_id}>" if request.channel_id and request.channel_id[0] in "CG" else ""


SHOWN_PASSAGE_CHARS = 600


def _shown(shown: Sequence[dict]) -> str:
    if not shown:
        return "_Moment found nothing close in the content._"
    lines = [f"• {link(s.get('url'), s.get('title', 'untitled'))}" for s in shown[:3]]
    passage = shown[0].get("snippet")
    # The passage the asker saw, so the mentor starts where Moment left off.
    quoted = "\n" + quote(truncate(passage, SHOWN_PASSAGE_CHARS)) if passage else ""
    return "*What Moment showed*\n" + lines[0] + quoted + "".join("\n" + line for line in lines[1:])


def offer_blocks(request: RequestView, offer: OfferView, minutes: int) -> list[Block]:
    """The DM to a mentor: the question, who asked and where, what Moment showed (`request.shown`), Accept /
    Decline."""
    value = str(request.id)
    return [
        SectionBlock(text=_md(f":raising_hand: *<@{request.asker_id}>{_where(request)} needs a hand:*")),
        SectionBlock(text=_md(quote(truncate(request.question, 1500)))),
        SectionBlock(text=_md(_shown(request.shown))),
        ContextBlock(elements=[_md(f"{escape(offer.reason)} Please reply within {minutes} minutes.")]),
        ActionsBlock(
            block_id=f"offer_{offer.id}",
            elements=[
                ButtonElement(text="Accept", action_id=ACCEPT, value=value, style="primary"),
                ButtonElement(text="Decline", action_id=DECLINE, value=value),
            ],
        ),
    ]


def closed_offer_blocks(request: RequestView, why: str) -> list[Block]:
    return [
        SectionBlock(text=_md(f"~{escape(truncate(request.question, 300))}~")),
        ContextBlock(elements=[_md(escape(why))]),
    ]


def notice_blocks(
    request: RequestView, text: str, *, cancellable: bool = False, label: str = "Your question"
) -> list[Block]:
    """A note about a request (`text` is a trusted template), with the question, escaped, below it."""
    blocks: list[Block] = [SectionBlock(text=_md(text))]
    blocks.append(ContextBlock(elements=[_md(f"{label}: _{escape(truncate(request.question, 200))}_")]))
    if cancellable:
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text="I don't need help any more", action_id=CANCEL, value=str(request.id))]
            )
        )
    return blocks


def conversation_blocks(request: RequestView) -> list[Block]:
    """The first message of the asker + mentor conversation, with what Moment showed (`request.shown`)."""
    return [
        SectionBlock(
            text=_md(
                f":wave: <@{request.asker_id}>, meet <@{request.owner_id}> ({escape(request.owner_name or '')}), "
                "a peer mentor who knows this topic. Here is what you asked:"
            )
        ),
        SectionBlock(text=_md(quote(truncate(request.question, 1500)))),
        SectionBlock(text=_md(_shown(request.shown))),
        ContextBlock(
            elements=[
                _md("Talk here. When it's sorted, the mentor marks it resolved, and can save the answer as a job aid.")
            ]
        ),
        ActionsBlock(
            elements=[
                ButtonElement(text="Mark resolved", action_id=RESOLVE, value=str(request.id), style="primary"),
                ButtonElement(text="Cancel request", action_id=CANCEL, value=str(request.id)),
            ]
        ),
    ]


def helping_note_blocks(request: RequestView) -> list[Block]:
    """In the thread where the question was asked, once a mentor has taken it."""
    return [
        SectionBlock(
            text=_md(
                f":handshake: <@{request.owner_id}>, a peer mentor, is helping <@{request.asker_id}> with this "
                "in a direct conversation."
            )
        ),
        ActionsBlock(
            elements=[
                ButtonElement(text="Mark resolved", action_id=RESOLVE_IN_THREAD, value=str(request.id), style="primary")
            ]
        ),
        ContextBlock(elements=[_md("Only the person who asked (or the mentor) can mark it resolved.")]),
    ]


def resolved_note_blocks(request: RequestView, job_aid: str | None = None) -> list[Block]:
    """The thread's note once the question is resolved; `job_aid` is mrkdwn (already escaped)."""
    text = f":white_check_mark: Resolved: <@{request.owner_id}> helped <@{request.asker_id}> with this."
    if job_aid:
        text += f"\n:memo: The answer is {job_aid}."
    return [SectionBlock(text=_md(text))]


def escalation_blocks(request: RequestView, why: str) -> list[Block]:
    """To the admins' channel: the question, who asked and where, who it was offered to (`request.tried`)."""
    tried_text = (
        ", ".join(f"<@{m}>" for m in request.tried) if request.tried else "nobody (no vetted mentor matches the topic)"
    )
    return [
        SectionBlock(text=_md(f":rotating_light: *A question needs a person* ({escape(why)})")),
        SectionBlock(
            text=_md(f"From <@{request.asker_id}>{_where(request)}:\n{quote(truncate(request.question, 1500))}")
        ),
        ContextBlock(elements=[_md(f"Offered to: {tried_text}. Any vetted mentor or admin can take it.")]),
        ActionsBlock(
            elements=[ButtonElement(text="I'll take it", action_id=ACCEPT, value=str(request.id), style="primary")]
        ),
    ]


def resolved_blocks(request: RequestView) -> list[Block]:
    """To the mentor after resolving: thanks, and the offer to turn the answer into content."""
    return [
        SectionBlock(
            text=_md(
                ":tada: Resolved, thank you! If your answer would help the next person, save it as a job-aid draft: "
                "L&D reviews it and adds it to the content, so Moment can answer it next time."
            )
        ),
        ActionsBlock(
            elements=[ButtonElement(text="Save as a job aid draft", action_id=SAVE_DRAFT, value=str(request.id))]
        ),
        # Or teach Moment the section that answered it (verified answers).
        *([teach_actions(request.interaction_id)] if request.interaction_id is not None else []),
    ]


def draft_modal(request: RequestView) -> View:
    return View(
        type="modal",
        callback_id=DRAFT_MODAL,
        private_metadata=json.dumps({"request_id": request.id}),
        title=PlainTextObject(text="Job aid draft"),
        submit=PlainTextObject(text="Save draft"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=_md(f"The question: _{escape(truncate(request.question, 300))}_")),
            InputBlock(
                block_id=DRAFT_TITLE,
                label=PlainTextObject(text="Title"),
                element=PlainTextInputElement(
                    action_id=DRAFT_TITLE, max_length=150, initial_value=truncate(request.question, 150)
                ),
                hint=PlainTextObject(text="What someone would look for, e.g. “Reset a locked FieldPro account”."),
            ),
            InputBlock(
                block_id=DRAFT_BODY,
                label=PlainTextObject(text="The answer"),
                element=PlainTextInputElement(
                    action_id=DRAFT_BODY, multiline=True, max_length=3000, initial_value=request.resolution or ""
                ),
                hint=PlainTextObject(text="Short numbered steps work best. Markdown is fine."),
            ),
        ],
    )


def drafts_blocks(drafts: Sequence[DraftView]) -> list[Block]:
    if not drafts:
        return [SectionBlock(text=_md("No drafts waiting. Mentors save them when they resolve a request."))]
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=f"Job-aid drafts ({len(drafts)})"))]
    for draft in drafts[:15]:
        origin = f"request #{draft.request_id}" if draft.request_id else "a mentor"
        blocks.append(
            SectionBlock(
                text=_md(
                    f"*{escape(draft.title)}* by <@{draft.author_id}>, from {origin}\n"
                    f"{quote(truncate(draft.body, 600))}\n`{escape(draft.path)}`"
                    + (
                        f"\n:lock: For {escape(', '.join(group_label(g) for g in draft.audience))} only, like the"
                        " content the question was answered from (kept when approved; edit the file to change it)"
                        if draft.audience
                        else ""
                    )
                )
            )
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Approve and index", action_id=APPROVE_DRAFT, value=str(draft.id), style="primary"
                    ),
                    ButtonElement(text="Reject", action_id=REJECT_DRAFT, value=str(draft.id), style="danger"),
                ]
            )
        )
    return blocks


def mentor_home_section(
    mentor: MentorView, offered: Sequence[RequestView], owned: Sequence[RequestView]
) -> list[Block]:
    """The mentor's part of App Home: pause / resume, offers waiting, requests they own."""
    state = (
        ":double_vertical_bar: Paused: you get no new questions."
        if mentor.paused
        else ":large_green_circle: Taking questions."
    )
    toggle = (
        ButtonElement(text="Resume", action_id=RESUME, value=mentor.slack_id, style="primary")
        if mentor.paused
        else ButtonElement(text="Pause", action_id=PAUSE, value=mentor.slack_id)
    )
    blocks: list[Block] = [
        DividerBlock(),
        HeaderBlock(text=PlainTextObject(text="Mentoring")),
        SectionBlock(
            text=_md(
                f"{state}\nTopics: {escape(', '.join(mentor.topics))} · up to {mentor.capacity} at once · "
                f"{escape(mentor.working_hours)} {escape(mentor.timezone)}"
            ),
            accessory=toggle,
        ),
    ]
    if not mentor.vetted:
        blocks.append(ContextBlock(elements=[_md("Not vetted yet: an admin vets you before questions come your way.")]))
    for request in offered[:10]:
        blocks.append(
            SectionBlock(
                text=_md(f"*Waiting for you:* <@{request.asker_id}>: {escape(truncate(request.question, 200))}")
            )
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text="Accept", action_id=ACCEPT, value=str(request.id), style="primary"),
                    ButtonElement(text="Decline", action_id=DECLINE, value=str(request.id)),
                ]
            )
        )
    for request in owned[:10]:
        blocks.append(
            SectionBlock(
                text=_md(f"*Helping:* <@{request.asker_id}>: {escape(truncate(request.question, 200))}"),
                accessory=ButtonElement(text="Mark resolved", action_id=RESOLVE, value=str(request.id)),
            )
        )
    if not offered and not owned:
        blocks.append(ContextBlock(elements=[_md("No open requests.")]))
    return blocks
