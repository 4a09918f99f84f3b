"""The reader: a cross-encoder trained here that reads question and passage together.

`reader_for(settings)` gives the service its reader, or None with the reason (switched off with
`MOMENT_READER=off`, or its files missing or broken: then answers come from retrieval alone and
`/moment status` and `moment eval` say so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReaderState:
    """Whether the reader is in use, in words for `/moment status` and `moment eval`."""

    on: bool
    description: str
    problem: str | None = None  # set when the reader should be on but could not be loaded


def reader_for(settings, *, force: bool = False):
    """The `PassageReader` the settings ask for (or None) and its `ReaderState`; `force` loads it even when
    the settings leave it off (`moment eval` measures both)."""
    if not settings.reader and not force:
        return None, ReaderState(False, "off (MOMENT_READER=off): passages and confidence come from retrieval")
    from assistant.answering.reader.model import ReaderError, load_reader
    from assistant.answering.reader.reading import PassageReader

    try:
        reader = load_reader(settings.reader_dir_override, threads=settings.embedding_threads)
    except ReaderError as exc:
        log.warning("%s Answers use retrieval alone.", exc)
        return None, ReaderState(False, "unavailable: answers use retrieval alone", str(exc))
    return PassageReader(reader), ReaderState(True, f"on: {reader.describe()}")
