"""Answering: a question in, an `Answer` out, from the published index. Knows nothing of Slack.

`asking` is the use case the edges call (ask, ask in a thread, teach a question its answer), which records
each answer through `assistant.records.interactions`; the modules below it read no database but
`verified` (the taught pairs).

`questions` cleans and prepares what was asked; `retrieval` finds the pages (dense and keyword search,
fused, with a calibrated confidence; `lookup` reads a keyed table row); the `reader` picks the passage and
judges answerability; `passages` shows a hit's passage and links to its place; `answers` composes what
Moment says back; `followups` reads a short follow-up in the context of the question before it;
`evaluation` measures all of it (`moment eval`), `calibrating` fits it (`--calibrate`).

Public surface: `Answer`, `Source`, `compose`, `unanswerable`, `answer_from_dict`, `document_url`,
`Retriever`, `RetrievalParams`, `SearchResult`, `CalibrationError`, `IndexMismatchError`,
`calibration_file`, `prepare`, `clean_slack_text`, `with_context`, `reader_for`, `ReaderState`.
"""

from assistant.answering.answers import Answer, Source, answer_from_dict, compose, unanswerable
from assistant.answering.followups import with_context
from assistant.answering.passages import document_url
from assistant.answering.questions import clean_slack_text, prepare
from assistant.answering.reader import ReaderState, reader_for
from assistant.answering.retrieval import (
    CalibrationError,
    IndexMismatchError,
    RetrievalParams,
    Retriever,
    SearchResult,
    calibration_file,
)

__all__ = [
    "Answer",
    "CalibrationError",
    "IndexMismatchError",
    "ReaderState",
    "RetrievalParams",
    "Retriever",
    "SearchResult",
    "Source",
    "answer_from_dict",
    "calibration_file",
    "clean_slack_text",
    "compose",
    "document_url",
    "prepare",
    "reader_for",
    "unanswerable",
    "with_context",
]
