"""The blocks of teaching Moment from Slack: the *This answered it* / *Pick the right section* buttons and the
modal listing a page's sections. Built here, with no listener, so the answer and mentor blocks can show them;
the listeners are in `teaching`."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from assistant.slack.formatting import escape, truncate

TEACH_SHOWN = "moment_teach_shown"
TEACH_PICK = "moment_teach_pick"
TEACH_MODAL = "moment_teach_modal"
TEACH_BLOCK = "moment_teach"
SECTION_BLOCK = "teach_section"
SECTION_SELECT = "section"
MAX_OPTIONS = 100  # a static select lists at most 100 options
REFUSED = "Only the mentor who helped with this question, or an admin, can teach Moment its answer."


def teach_actions(interaction_id: int) -> ActionsBlock:
    """The two buttons, for a mentor or admin looking at the answer to interaction `interaction_id`."""
    value = str(interaction_id)
    return ActionsBlock(
        block_id=TEACH_BLOCK,
        elements=[
            ButtonElement(text="This answered it", action_id=TEACH_SHOWN, value=value),
            ButtonElement(text="Pick the right section", action_id=TEACH_PICK, value=value),
        ],
    )


def section_label(heading_path) -> str:
    return " › ".join(heading_path) if heading_path else "Introduction (before the first heading)"


def pick_modal(interaction_id: int, question: str, path: str, title: str, sections: list[tuple[str, ...]]) -> View:
    """The modal: the question, and a static select of the page's sections (value: the section's place)."""
    options = [
        Option(value=str(n), text=truncate(section_label(hp), 75)) for n, hp in enumerate(sections[:MAX_OPTIONS])
    ]
    return View(
        type="modal",
        callback_id=TEACH_MODAL,
        private_metadata=json.dumps({"interaction_id": interaction_id, "path": path}),
        title=PlainTextObject(text="Pick the right section"),
        submit=PlainTextObject(text="Teach"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"The question: _{escape(truncate(question, 300))}_\nFrom *{escape(truncate(title, 150))}*"
                )
            ),
            InputBlock(
                block_id=SECTION_BLOCK,
                label=PlainTextObject(text="The section that answers it"),
                element=StaticSelectElement(action_id=SECTION_SELECT, options=options),
            ),
        ],
    )
