"""Help channels: channels where Moment answers questions without being asked. Knows nothing of Slack.

`triage` decides whether a channel message reads as a question; `helpchannels` keeps the channels'
settings and their queues (each message once, oldest first, one process at a time per channel).

Public surface: `HelpDesk` (every workspace's channels), `HelpChannels`, `HelpChannelError`, `ChannelScope`,
`waiting_channels`, `settling`, `too_old`, `triage`.
"""

from assistant.helpchannels.helpchannels import (
    ChannelScope,
    HelpChannelError,
    HelpChannels,
    HelpDesk,
    settling,
    too_old,
    waiting_channels,
)
from assistant.helpchannels.triage import triage

__all__ = [
    "ChannelScope",
    "HelpChannelError",
    "HelpChannels",
    "HelpDesk",
    "settling",
    "too_old",
    "triage",
    "waiting_channels",
]
