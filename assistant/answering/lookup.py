"""Look-up tables: a question that names a row's key ("E14", "3/8") is answered by that row.

Reference pages hold tables keyed by codes and sizes: an error-code table (E01 ... E22), a torque table
by pipe size (1/4 inch ... 3/4 inch). A question that names a key of the same form as a table's keys is a
look-up, and a person reads it so:

- the row with that key, under the table's header row, is the answer, however the reader or the
  keyword snippet scores the rows around it (for "heatpump E14 error??" the reader preferred the rows
  E07 and E09; for "E12 fault" the rows came without their header);
- a key of that form that the table does not list, and that the page mentions nowhere else ("E25" when
  the codes stop at E22, a 7/8 inch flare when the sizes stop at 3/4), means the page cannot answer, however
  close in meaning it is ("torque for a 7/8 flare nut" was answered with confidence 0.96).

So a found row becomes the first page's passage and the question is answered; a missing key declines the
question, the page still offered as possibly related. Only the first page's tables are consulted, and
only keys of an identifier's form count: a letter and digits ("E14", "CU-02", "OT15") or a fraction
("3/8"). Plain numbers are not keys: tables list them as ranges ("5 to 9 years"), and "6 years" is in one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from indexer.documents import Chunk, is_table_row

_TOKEN = re.compile(r"[a-z0-9]+(?:[/-][a-z0-9]+)*")
_TYPED = re.compile(r"[A-Za-z0-9]+(?:[/-][A-Za-z0-9]+)*")
MIN_ROWS = 3  # a keyed table has at least this many rows
KEYED_SHARE = 0.75  # and at least this share of its rows' keys have one form


def key_tokens(text: str) -> list[str]:
    """The text's word tokens, lower-cased, with "/" and "-" kept inside a token ("3/8", "cu-02")."""
    return _TOKEN.findall(text.lower())


def shape(token: str) -> str:
    """A token's form: letters to "a", digits to "9", runs of each collapsed ("e14" and "p01" -> "a9")."""
    return re.sub(r"[a-z]+", "a", re.sub(r"[0-9]+", "9", token))


def is_key_shape(form: str) -> bool:
    """A form that names one thing: a letter run then digits ("a9", "a-9"), or a fraction ("9/9")."""
    return bool(re.search(r"a-?9", form)) or form == "9/9"


def normal(token: str) -> str:
    """A key as compared: leading zeros and hyphens dropped ("E05" = "e5", "AHC-200" = "ahc200")."""
    return re.sub(r"(?<![0-9])0+(?=[0-9])", "", token.replace("-", ""))


@dataclass(frozen=True)
class Table:
    header: str
    rows: tuple[tuple[str, Chunk], ...]  # (row, the chunk it is in)
    form: str  # the form of its keys

    def key(self, row: str) -> str | None:
        token = first_token(row)
        return normal(token) if token else None


def first_token(row: str) -> str | None:
    """The first token of a row's first cell: its key, when the table is keyed."""
    tokens = key_tokens(row.split(" | ", 1)[0])
    return tokens[0] if tokens else None


@dataclass(frozen=True)
class Lookup:
    """What the first page's look-up tables say about a question: the rows it names, or the keys it names
    that they lack."""

    passage: str | None = None  # the header row and the rows named, when some are
    chunk: Chunk | None = None  # the chunk of the first row named (its section is linked to)
    missing: tuple[str, ...] = ()  # keys named (as typed) that no table lists and the page nowhere mentions

    @property
    def found(self) -> bool:
        return self.passage is not None

    def confidence(self, confidence: float, threshold: float, related_threshold: float) -> float:
        """The confidence after the look-up: at least `threshold` when a row was found; at most
        `related_threshold` (declined, offered as possibly related) when a key is missing."""
        if self.found:
            return max(confidence, threshold)
        if self.missing:
            return min(confidence, related_threshold)
        return confidence


def question_keys(question: str) -> set[str]:
    """The question's tokens of a key's form; empty for most questions, which then cost nothing more."""
    return {t for t in key_tokens(question) if is_key_shape(shape(t))}


def tables(chunks: list[Chunk]) -> list[Table]:
    """The keyed tables of a page's chunks, in order. A run of table rows starts with its header row; a
    run whose header is the previous run's, in the next chunk, continues that table (the chunker repeats
    a cut table's header)."""
    runs: list[tuple[str, list[tuple[str, Chunk]]]] = []
    open_header = None  # the header of the table the previous chunk ended in
    for chunk in chunks:
        lines = chunk.text.split("\n")
        repeated = bool(lines) and lines[0] == open_header  # the table goes on: its header is not a new run
        previous = repeated
        for line in lines[1:] if repeated else lines:
            row = is_table_row(line)
            if row and not previous:
                runs.append((line, []))
            elif row:
                runs[-1][1].append((line, chunk))
            previous = row
        open_header = runs[-1][0] if previous and runs else None
    out = []
    for header, rows in runs:
        forms = Counter(shape(t) for r, _ in rows if (t := first_token(r)))
        if len(rows) < MIN_ROWS or not forms:
            continue
        form, count = forms.most_common(1)[0]
        if is_key_shape(form) and count >= KEYED_SHARE * len(rows):
            out.append(Table(header, tuple(rows), form))
    return out


def lookup(question: str, chunks: list[Chunk]) -> Lookup | None:
    """What the page of `chunks` (in order) says about `question` as a look-up; None when the question
    names no key of any of the page's tables' forms."""
    keys = question_keys(question)
    if not keys:
        return None
    keyed = tables(chunks)
    wanted = {normal(k) for k in keys if any(shape(k) == t.form for t in keyed)}
    if not wanted:
        return None
    found: list[tuple[Table, list[tuple[str, Chunk]]]] = []
    for table in keyed:
        rows = [(row, chunk) for row, chunk in table.rows if table.key(row) in wanted]
        if rows:
            found.append((table, rows))
    if found:
        lines = [line for table, rows in found for line in (table.header, *(row for row, _ in rows))]
        return Lookup(passage="\n".join(lines), chunk=found[0][1][0][1])
    mentioned = {normal(t) for chunk in chunks for t in key_tokens(chunk.text)}
    typed = {normal(t.lower()): t for t in _TYPED.findall(question)}  # as the asker wrote them ("E25")
    missing = tuple(sorted(typed.get(k, k) for k in wanted if k not in mentioned))
    return Lookup(missing=missing) if missing else None
