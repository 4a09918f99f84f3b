"""Split documents into chunks that fit the embedding model.

all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest, so every chunk, with the
title and heading path that are embedded with it, is kept under that limit: nothing is lost to
truncation (`bench/chunk_sizes.py` checks it on the demo content). Chunks never straddle two sections,
so each knows its heading path; transcript chunks are runs of whole cues and keep their start and end.
A table cut between two chunks has its header row repeated at the top of the next one, so that every
row is read (by the model, by keyword search and by a person) under its columns' names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from indexer.documents import Chunk, Document, Section, is_table_row

# Bumped whenever chunking changes, so an incremental build re-chunks every document.
CHUNKER_VERSION = "4"

MODEL_MAX_TOKENS = 256
# Leave room for the [CLS]/[SEP] pieces and for the title and heading path that prefix each chunk.
DEFAULT_MAX_TOKENS = 200
MIN_BODY_TOKENS = 64

TokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (good enough for job aids: no abbreviation dictionary)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class Chunker:
    """Packs a document's blocks into chunks of at most `max_tokens` word pieces."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens

    def chunk(self, doc: Document) -> list[Chunk]:
        """All chunks of one document, in reading order."""
        chunks: list[Chunk] = []
        for section in doc.sections:
            prefix = " > ".join((doc.meta.title, *section.heading_path))
            budget = max(MIN_BODY_TOKENS, MODEL_MAX_TOKENS - 4 - self.count_tokens([prefix])[0])
            budget = min(budget, self.max_tokens)
            if section.cues:
                chunks.extend(self._chunk_cues(doc.path, section, budget, len(chunks)))
            else:
                for text in self._pack(list(section.blocks), budget):
                    chunks.append(
                        Chunk(
                            doc_path=doc.path,
                            position=len(chunks),
                            heading_path=section.heading_path,
                            text=text,
                            anchor=section.anchor,
                            page=section.page,
                        )
                    )
        return chunks

    def _pack(self, blocks: list[str], budget: int) -> list[str]:
        units = self._fit(blocks, budget)
        sizes = self.count_tokens(units) if units else []
        out: list[str] = []
        current: list[str] = []
        used = 0
        header: tuple[int, int] | None = None  # (index, size) of the header row of the table being packed
        for index, (unit, size) in enumerate(zip(units, sizes, strict=True)):
            if not is_table_row(unit):
                header = None
            elif header is None:
                header = (index, size)
            if current and used + size > budget:
                out.append("\n".join(current))
                current, used = [], 0
                if header is not None and header[0] != index and header[1] + size <= budget:
                    current, used = [units[header[0]]], header[1]
            current.append(unit)
            used += size
        if current:
            out.append("\n".join(current))
        return out

    def _fit(self, blocks: list[str], budget: int) -> list[str]:
        """Break blocks that alone exceed the budget into sentences, and sentences into word runs."""
        sizes = self.count_tokens(blocks) if blocks else []
        units: list[str] = []
        for block, size in zip(blocks, sizes, strict=True):
            if size <= budget:
                units.append(block)
                continue
            sentences = split_sentences(block)
            for sentence, s_size in zip(sentences, self.count_tokens(sentences), strict=True):
                if s_size <= budget:
                    units.append(sentence)
                else:
                    units.extend(self._split_words(sentence, budget))
        return units

    def _split_words(self, sentence: str, budget: int) -> list[str]:
        words = sentence.split()
        out: list[str] = []
        start = 0
        # Word pieces per word vary; step down until the run fits.
        while start < len(words):
            take = max(1, min(len(words) - start, budget // 2))
            while take > 1 and self.count_tokens([" ".join(words[start : start + take])])[0] > budget:
                take = max(1, take * 3 // 4)
            out.append(" ".join(words[start : start + take]))
            start += take
        return out

    def _chunk_cues(self, doc_path: str, section: Section, budget: int, offset: int) -> list[Chunk]:
        cues = list(section.cues)
        sizes = self.count_tokens([c[2] for c in cues])
        chunks: list[Chunk] = []
        run: list[tuple[float, float, str]] = []
        used = 0

        def emit() -> None:
            starts, cursor = [], 0
            for cue in run:
                starts.append((cursor, cue[0]))
                cursor += len(cue[2]) + 1
            chunks.append(
                Chunk(
                    doc_path=doc_path,
                    position=offset + len(chunks),
                    heading_path=section.heading_path,
                    text=" ".join(c[2] for c in run),
                    start_seconds=run[0][0],
                    end_seconds=run[-1][1],
                    cue_starts=tuple(starts),
                )
            )

        for cue, size in zip(cues, sizes, strict=True):
            if run and used + size > budget:
                emit()
                run, used = [], 0
            run.append(cue)
            used += size
        if run:
            emit()
        return chunks
