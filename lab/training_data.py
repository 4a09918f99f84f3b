"""Training groups for the reader, built from the handbooks in `shared/corpora/training/`.

Each answerable question becomes a group: its own section (the positive) and hard negatives
(the near-miss case the reader exists for):

- the page with the answering section cut out, read from the top (its introduction: about the
  question's subject, seldom the answer);
- sibling sections of the same page (same parent heading): on the subject, not the answer;
- other sections of the same page;
- sections of other pages of the same handbook that BM25 or the embedding model rank high.

Passages are rendered exactly as the index renders chunks (`indexer.sources.markdown_sections`,
then "title > heading path" and the text), cut to about `PASSAGE_WORDS` words. A section's own
heading is left out of every passage in training: the questions were made from those headings, so
keeping them would teach the model to match headings, not to read.

Whole sources are held out for validation (never questions of the same page), and nothing here
reads the test sets (CivicActions, the demo content).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answering.reader.reading import passage_text
from indexer.documents import Section
from indexer.sources import markdown_sections
from indexer.text import KEYWORD_STOP_WORDS, content_words

PASSAGE_WORDS = 110
VALIDATION_SOURCES = ("carpentries-handbook", "turing-reg-handbook")


@dataclass
class Passage:
    page: str
    heading_path: tuple[str, ...]  # parents only (the section's own heading left out)
    text: str

    def render(self, title: str) -> str:
        return passage_text(title, self.heading_path, self.text)


@dataclass
class Group:
    """One question, its answering passage and its negatives (passage texts, rendered)."""

    source: str
    question: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # why each negative was chosen

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "question": self.question,
            "positive": self.positive,
            "negatives": self.negatives,
            "kinds": self.kinds,
        }


def cut_words(text: str, words: int = PASSAGE_WORDS) -> str:
    """The first `words` words of `text`, keeping its line breaks."""
    out, used = [], 0
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if used + len(parts) > words:
            out.append(" ".join(parts[: max(0, words - used)]))
            break
        out.append(line.strip())
        used += len(parts)
    return "\n".join(x for x in out if x)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def page_sections(page: str, text: str) -> tuple[str, list[tuple[tuple[str, ...], Section]]]:
    """The page's title and its sections, each with its heading path (the title left out, as the
    indexer leaves it out)."""
    sections, first_h1 = markdown_sections(text)
    title = first_h1 or Path(page).stem.replace("-", " ")
    out = []
    for s in sections:
        path = s.heading_path
        out.append((tuple(path[1:] if path and _norm(path[0]) == _norm(title) else path), s))
    return title, out


def heading_paths(text: str, title: str) -> list[tuple[str, ...]]:
    """Every heading of the page in order, as the heading path it opens (the title left out, as
    `page_sections` leaves it out), sections with no text of their own included."""
    from markdown_it import MarkdownIt

    from indexer.formats import _inline_text

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    stack: list[tuple[int, str]] = []
    out = []
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        level = int(tok.tag[1])
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, _inline_text(tokens[i + 1])))
        path = tuple(h for _, h in stack)
        out.append(path[1:] if path and _norm(path[0]) == _norm(title) else path)
    return out


def page_passages(
    page: str, text: str, words: int = PASSAGE_WORDS
) -> tuple[str, list[tuple[tuple[str, ...], Passage]]]:
    """The page's title and its sections as passages, each with its full heading path."""
    title, sections = page_sections(page, text)
    out = []
    for path, s in sections:
        body = cut_words("\n".join(s.blocks), words)
        if len(body.split()) < 8:
            continue
        out.append((tuple(path), Passage(page, tuple(path[:-1]), body)))
    return title, out


def build_groups(
    data_dir: Path,
    embed=None,
    *,
    negatives: int = 8,
    seed: int = 13,
    sources: list[str] | None = None,
    headings: int = 0,
    own_headings: float = 0.0,
    wide: bool = False,
    words: int = PASSAGE_WORDS,
) -> list[Group]:
    """Groups for every answerable question of every source under `data_dir`, and with `headings`,
    up to that many more made from the training sources' other headings (`heading_queries`). With
    `own_headings`, that share of passages are read under the heading they sit under in use
    (`_source_groups`).

    `embed(texts) -> normalised vectors` finds dense hard negatives (skipped when None). With `wide`, a
    pool for `mine_negatives`: up to half of `negatives` from the question's page (not only 3 siblings and
    5 of the page in all), the rest from other pages.
    """
    rng = random.Random(seed)
    groups: list[Group] = []
    dirs = sorted(p for p in Path(data_dir).iterdir() if (p / "questions.jsonl").is_file())
    dirs = [d for d in dirs if not sources or d.name in sources]
    extra = {d.name: heading_queries(d) if headings and d.name not in VALIDATION_SOURCES else [] for d in dirs}
    pool = [(name, i) for name, rows in extra.items() for i in range(len(rows))]
    keep = set(random.Random(seed).sample(pool, min(headings, len(pool))))
    for source_dir in dirs:
        more = [row for i, row in enumerate(extra[source_dir.name]) if (source_dir.name, i) in keep]
        groups.extend(_source_groups(source_dir, embed, negatives, rng, more, own_headings, wide, words))
    return groups


def mine_negatives(
    groups: list[Group], pool: list[Group], score, negatives: int = 8, denoise: bool = False
) -> list[Group]:
    """Each group's negatives replaced by the `negatives` its pool group's candidates that `score(question,
    passages) -> logits` (an earlier reader) ranks highest: the passages a reader confuses with the answer,
    not random ones of the same kind. The page with its answer cut out stays (it is the introduction a
    reader meets on every page); the positive is the pool group's. Groups without a pool group (matched by
    source and question) are kept as they are."""
    by_key = {(g.source, g.question): g for g in pool}
    out = []
    for g in groups:
        p = by_key.get((g.source, g.question))
        if p is None or not p.negatives:
            out.append(g)
            continue
        keep = [i for i, k in enumerate(p.kinds) if k == "page-without-answer"]
        rest = [i for i, k in enumerate(p.kinds) if k != "page-without-answer"]
        logits = [float(x) for x in score(p.question, [p.positive] + [p.negatives[i] for i in rest])]
        # A candidate scored above the answer itself is as likely another answer (FAQ siblings often say
        # the same thing) as a hard negative: with `denoise` it is left out, as RocketQA's denoising does.
        ranked = [
            rest[j]
            for j in sorted(range(len(rest)), key=lambda j: -logits[j + 1])
            if not denoise or logits[j + 1] <= logits[0]
        ]
        chosen = (keep + ranked)[:negatives]
        negs, kinds = [p.negatives[i] for i in chosen], [p.kinds[i] for i in chosen]
        out.append(Group(g.source, g.question, p.positive, negs, kinds))
    return out


# Headings that name a kind of section, not a subject: no query would be made of them.
_GENERIC_HEADINGS = {
    "overview", "introduction", "summary", "background", "resources", "links", "contact", "contacts",
    "further reading", "see also", "references", "next steps", "notes", "faq", "faqs", "examples",
    "prerequisites", "requirements", "context", "purpose", "scope", "details", "related", "more information",
    "additional resources", "useful links", "getting help", "support", "help", "questions", "contents",
}  # fmt: skip


def heading_queries(source_dir: Path) -> list[dict]:
    """Rows like `questions.jsonl`'s, made from the headings no question was made of: the heading as a
    query ("Meeting rooms", "Rotating credentials"), its section as the answer. People ask in Slack in
    words like these as often as in questions; and the pages' own headings give several times the
    authors' questions. Only headings of two content words or more over sections of 25 words or more."""

    questions = [json.loads(line) for line in (source_dir / "questions.jsonl").read_text().splitlines() if line]
    asked = {(q["page"], _norm(q["source_heading"])) for q in questions}
    rows = []
    for page in sorted({q["page"] for q in questions} | _all_pages(source_dir)):
        try:
            text = (source_dir / "corpus" / page).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        title, sections = page_sections(page, text)
        for path, section in sections:
            if not path:
                continue
            heading = path[-1].strip().rstrip(":").strip()
            body = "\n".join(section.blocks)
            if (
                (page, _norm(path[-1])) in asked
                or _norm(heading) in _GENERIC_HEADINGS
                or len(content_words(heading)) < 2
                or len(body.split()) < 25
            ):
                continue
            rows.append(
                {
                    "question": heading,
                    "page": page,
                    "origin": "heading_query",
                    "heading_path": [title, *path[:-1]],
                    "source_heading": path[-1],
                    "heading_level": 2,
                    "answer_text": body,
                }
            )
    return rows


def _source_groups(
    source_dir: Path,
    embed,
    negatives: int,
    rng: random.Random,
    more: list[dict] | None = None,
    own_headings: float = 0.0,
    wide: bool = False,
    words: int = PASSAGE_WORDS,
) -> list[Group]:
    """A source's groups. With `own_headings` > 0, that share of passages (positives and negatives
    alike) are read under the heading they sit under in use, not only their parents': real content is
    read so (a job aid's "Lost or stolen card" is worth reading). A heading a query was made of word for
    word (the authors' questions, `heading_queries`) is never shown: the test sets take those out, and a
    section's text then sits under the heading before it, so it is read under that one (`landing`). A
    derived question's heading ("Submitting expenses" for "How do I submit expenses?") stays: the words
    a heading shares with a question are a fair clue, but only a clue."""
    import bm25s
    import Stemmer

    questions = [json.loads(line) for line in (source_dir / "questions.jsonl").read_text().splitlines() if line]
    questions += more or []
    asked: dict[str, set[str]] = {}
    for q in questions:
        if q.get("kind") != "derived":
            asked.setdefault(q["page"], set()).add(_norm(q["source_heading"]))
    outlines: dict[str, list[tuple[str, ...]]] = {}

    def landing(page: str, full: tuple[str, ...]) -> tuple[str, ...]:
        """Where a section's text lands when its heading is a question and taken out, as the test sets take
        it out: under the nearest heading before it that stays (or the page's introduction)."""
        mine = asked.get(page, set())
        if not full or _norm(full[-1]) not in mine:
            return full
        if page not in outlines:
            outlines[page] = heading_paths(texts[page], pages[page][0])
        paths = outlines[page]
        at = paths.index(full) if full in paths else -1
        for path in reversed(paths[:at] if at >= 0 else []):
            if path and _norm(path[-1]) not in mine:
                return path
        return ()

    def show(page: str, title: str, full: tuple[str, ...], passage: Passage) -> str:
        """The passage under its parents' headings, or (`own_headings` of the time) under the heading it
        sits under in use: its own, or for a question's section the one its text lands under."""
        if not own_headings or rng.random() >= own_headings:
            return passage.render(title)
        return passage_text(title, landing(page, full), passage.text)

    pages: dict[str, tuple[str, list]] = {}
    texts: dict[str, str] = {}  # read once: `landing` parses the headings of the few pages it needs
    for page in sorted({q["page"] for q in questions} | _all_pages(source_dir)):
        try:
            texts[page] = (source_dir / "corpus" / page).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pages[page] = page_passages(page, texts[page], words)
    flat: list[tuple[str, tuple[str, ...], Passage]] = [
        (page, full, passage) for page, (_, items) in pages.items() for full, passage in items
    ]
    rendered = [p.render(pages[page][0]) for page, _, p in flat]
    stemmer = Stemmer.Stemmer("english")
    tokens = bm25s.tokenize(rendered, stopwords=KEYWORD_STOP_WORDS, stemmer=stemmer, show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    vectors = embed(rendered) if embed is not None else None

    usable = [q for q in questions if q.get("answer_text") and q["page"] in pages]
    q_tokens = bm25s.tokenize(
        [q["question"] for q in usable], stopwords=KEYWORD_STOP_WORDS, stemmer=stemmer, show_progress=False
    )
    k = min(30, len(flat))
    kw_ids, _ = bm25.retrieve(q_tokens, k=k, show_progress=False)
    dense_ids = None
    if vectors is not None:
        qv = embed([q["question"] for q in usable])
        dense_ids = np.argsort(-(qv @ vectors.T), axis=1)[:, :k]

    groups = []
    for qi, q in enumerate(usable):
        title, items = pages[q["page"]]
        answer = _norm(q["answer_text"])[:200]
        own = tuple(q["heading_path"][1:]) + ((q["source_heading"],) if q["heading_level"] else ())

        whole_page = q["origin"] == "page_title"

        def answers(full: tuple[str, ...], passage: Passage, own=own, answer=answer, whole_page=whole_page) -> bool:
            # The answer section itself, its subsections, and any passage that repeats the answer.
            if whole_page:
                return False
            if own and full[: len(own)] == own:
                return True
            text = _norm(passage.text)[:200]
            return bool(text) and (text[:80] in answer or answer[:80] in text)

        parent = own[:-1] if own else ()
        same_page = [(full, p) for full, p in items if not answers(full, p)]
        chosen: list[tuple[str, str]] = []
        if not whole_page and len(same_page) > 1:
            # The page with the answer cut out, read from the top: its introduction restates what the page
            # is about (the near-miss a reader meets on every page) without answering. (Its first section
            # is not also taken alone below.)
            rest = cut_words("\n".join(p.text for _, p in same_page), words)
            chosen.append((passage_text(title, (), rest), "page-without-answer"))
            same_page = same_page[1:]
        siblings = [(full, p) for full, p in same_page if full[:-1] == parent and q["origin"] != "page_title"]
        others_same = [(full, p) for full, p in same_page if (full, p) not in siblings]
        rng.shuffle(siblings)
        rng.shuffle(others_same)
        if wide:  # the mining pool: as much of the page as half the pool holds, siblings first
            same = [(full, p, "sibling") for full, p in siblings] + [(full, p, "same-page") for full, p in others_same]
            room = max(0, negatives // 2 - len(chosen))
            chosen += [(show(q["page"], title, full, p), kind) for full, p, kind in same[:room]]
        else:
            chosen += [(show(q["page"], title, full, p), "sibling") for full, p in siblings[:3]]
            chosen += [
                (show(q["page"], title, full, p), "same-page") for full, p in others_same[: max(1, 5 - len(chosen))]
            ]
        ranked = list(kw_ids[qi]) + (list(dense_ids[qi]) if dense_ids is not None else [])
        if dense_ids is not None:
            # Interleave: best of BM25, best of dense, second of each, ...
            ranked = [x for pair in zip(kw_ids[qi], dense_ids[qi], strict=False) for x in pair]
        seen = {text for text, _ in chosen}
        for idx in ranked:
            if len(chosen) >= negatives:
                break
            page, full, passage = flat[int(idx)]
            if page == q["page"]:
                continue
            text = rendered[int(idx)]
            if text in seen or _norm(passage.text)[:80] in answer:
                continue
            seen.add(text)
            chosen.append((show(page, pages[page][0], full, passage), "other-page"))
        if not chosen:
            continue
        path = tuple(q["heading_path"][1:])
        if own_headings and q["heading_level"] >= 2 and rng.random() < own_headings:
            path = landing(q["page"], own)
        positive = passage_text(title, path, cut_words(q["answer_text"], words))
        groups.append(Group(source_dir.name, q["question"], positive, [t for t, _ in chosen], [k for _, k in chosen]))
    return groups


def _all_pages(source_dir: Path) -> set[str]:
    sections = source_dir / "sections.jsonl"
    if not sections.is_file():
        return set()
    return {json.loads(line)["page"] for line in sections.read_text().splitlines() if line}


# --- window groups: the task as the reader meets it in use ---------------------------------------
#
# In use the reader chooses among windows of a page that start at every line (`reading.windows_of`),
# on pages whose question headings may not exist at all (the test sets remove them, and real job aids
# seldom have one heading per question). So each question's page is read with every question heading
# taken out (`strip_question_headings`), cut into windows the same way (of the training passages' size,
# `PASSAGE_WORDS`, so that the groups stay as they were when this task was measured), and labelled by
# the rule `moment eval` judges passages by: the share of a window's content words found in the
# answering section.

POSITIVE_SHARE = 0.7  # a later window this much inside the answer, starting inside it, answers too
NEGATIVE_SHARE = 0.5  # below this a window does not (the eval's "inside" rule)


def strip_question_headings(text: str, questions: list[dict]) -> str:
    """The page without the heading lines of its questions (level 2 and below), so that no page
    repeats the question it answers."""
    cuts = sorted(
        ((q["heading_start"], q["answer_start"]) for q in questions if q.get("heading_level", 0) >= 2),
        reverse=True,
    )
    for start, end in cuts:
        line_end = text.find("\n", start)
        line_end = end if line_end < 0 or line_end > end else line_end
        text = text[:start] + text[line_end:]
    return text


@dataclass
class PageWindow:
    heading_path: tuple[str, ...]
    units: list[str]
    start: int
    end: int

    @property
    def text(self) -> str:
        return "\n".join(self.units[self.start : self.end])


def page_windows(page: str, text: str) -> tuple[str, list[PageWindow]]:
    """The page's title and its windows, as `PassageReader` cuts them (one starting at every line)."""
    from assistant.answering.reader.reading import text_units, windows_of

    title, sections = page_sections(page, text)
    out = []
    for path, s in sections:
        units = text_units("\n".join(s.blocks))
        out += [PageWindow(path, units, a, b) for a, b in windows_of(units, PASSAGE_WORDS)]
    return title, out


def label_windows(windows: list[PageWindow], words: list[list[str]], answer_text: str) -> tuple[list[int], list[int]]:
    """Which windows answer and which do not; `words[i]` are window i's content words.

    The window that starts where the answer starts answers, however short the answer (the passage
    shown is then cut to the lines that answer), and so does any later window that starts inside the
    answer and lies mostly in it. A window less than half inside that does not start in the answer
    does not. Positives come first in the list: the first is where the answer starts."""

    answer = set(content_words(answer_text))
    plain = _norm(answer_text)

    def share(ws: list[str]) -> float:
        return sum(w in answer for w in ws) / len(ws) if ws else 0.0

    def starts_inside(w: PageWindow) -> bool:
        first = w.units[w.start]
        unit, first_words = _norm(first), content_words(first)
        return bool(unit) and (unit in plain or (len(first_words) >= 3 and share(first_words) >= 0.9))

    inside = [starts_inside(w) for w in windows]
    if not any(inside):
        return [], []
    first = inside.index(True)
    shares = [share(ws) for ws in words]
    positives = [first] + [i for i in range(first + 1, len(windows)) if inside[i] and shares[i] >= POSITIVE_SHARE]
    negatives = [i for i in range(len(windows)) if not inside[i] and shares[i] < NEGATIVE_SHARE and words[i]]
    return positives, negatives


def build_window_groups(
    data_dir: Path, embed=None, *, seed: int = 13, other_pages: int = 3, sections: list[Group] | None = None
) -> list[Group]:
    """Groups of one answering window and 4 windows of the same page that do not answer (the one that
    starts just before the answer, those sharing most words with the question, one at random), plus
    `other_pages` sections of other pages ranked high by BM25 and the embedding model (taken from
    `sections`, the section groups of the same corpora, when given)."""

    rng = random.Random(seed)
    others = {
        (g.source, g.question): [n for n, k in zip(g.negatives, g.kinds, strict=True) if k == "other-page"]
        for g in (sections if sections is not None else build_groups(data_dir, embed, seed=seed))
    }
    groups: list[Group] = []
    for source_dir in sorted(p for p in Path(data_dir).iterdir() if (p / "questions.jsonl").is_file()):
        rows = [json.loads(line) for line in (source_dir / "questions.jsonl").read_text().splitlines() if line]
        by_page: dict[str, list[dict]] = {}
        for q in rows:
            by_page.setdefault(q["page"], []).append(q)
        for page, questions in sorted(by_page.items()):
            try:
                text = (source_dir / "corpus" / page).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            title, windows = page_windows(page, strip_question_headings(text, questions))
            if not windows:
                continue
            words = [content_words(w.text) for w in windows]
            for q in questions:
                if q.get("heading_level", 0) < 2 or not q.get("answer_text"):
                    continue
                positives, negatives = label_windows(windows, words, q["answer_text"])
                if not positives or not negatives:
                    continue
                pick = positives[0] if rng.random() < 0.5 else rng.choice(positives)
                asked = set(content_words(q["question"]))
                chosen: list[tuple[int, str]] = []
                before = [i for i in negatives if i < positives[0] and i >= positives[0] - 3]
                if before:
                    chosen.append((before[-1], "before-answer"))
                by_words = sorted(negatives, key=lambda i: (-len(asked & set(words[i])), rng.random()))
                for i in by_words:
                    if len(chosen) >= 3:
                        break
                    if all(i != c for c, _ in chosen):
                        chosen.append((i, "same-page-words"))
                rest = [i for i in negatives if all(i != c for c, _ in chosen)]
                if rest:
                    chosen.append((rng.choice(rest), "same-page"))
                render = [passage_text(title, windows[i].heading_path, windows[i].text) for i, _ in chosen]
                far = others.get((source_dir.name, q["question"]), [])[:other_pages]
                groups.append(
                    Group(
                        source_dir.name,
                        q["question"],
                        passage_text(title, windows[pick].heading_path, windows[pick].text),
                        render + far,
                        [k for _, k in chosen] + ["other-page"] * len(far),
                    )
                )
    return groups
