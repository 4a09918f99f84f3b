"""A course suggestion under an answer: one line with the course's link, and *Not now*. Pure: data in, blocks out."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from assistant.learning.suggestions import suggestion_sentence
from assistant.slack.formatting import CONTEXT_TEXT_LIMIT, SECTION_TEXT_LIMIT, link, truncate

COURSE_BLOCK = "moment_course"  # the suggestion's block, taken out of the message on Not now
COURSE_NOT_NOW = "moment_course_not_now"
TITLE_CHARS = 150


def course_blocks(course: dict) -> list[Block]:
    """The suggestion (`Answer.course`): the polite line, the course title linked (escaped), and Not now."""
    title = link(course["url"], truncate(course["title"], TITLE_CHARS))
    return [
        SectionBlock(
            block_id=COURSE_BLOCK,
            text=MarkdownTextObject(
                text=truncate(f":mortar_board: {suggestion_sentence(course, title)}", SECTION_TEXT_LIMIT)
            ),
            accessory=ButtonElement(text="Not now", action_id=COURSE_NOT_NOW, value=str(course["suggestion_id"])),
        )
    ]


def dismissed_note() -> ContextBlock:
    """What replaces the suggestion after Not now."""
    return ContextBlock(
        block_id=COURSE_BLOCK,
        elements=[MarkdownTextObject(text=truncate("OK, I won't suggest that course again.", CONTEXT_TEXT_LIMIT))],
    )
