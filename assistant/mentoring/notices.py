"""What people need to hear, free of any chat's markup.

The core (the hand-off) says who did what by naming people in slots: `Notice("{mentor} is helping you",
{"mentor": "U123"})`. Each edge renders a person its own way: Slack as a mention (`<@U123>`), a log or a
terminal as the id. Notice texts are the core's own templates, never user text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Notice:
    text: str
    people: Mapping[str, str] = field(default_factory=dict)

    def render(self, person: Callable[[str], str] = str) -> str:
        """The text with each `{slot}` replaced by `person(user_id)`."""
        out = self.text
        for slot, user_id in self.people.items():
            out = out.replace("{" + slot + "}", person(user_id))
        return out

    def __str__(self) -> str:
        return self.render()
