"""Each content format's text as `Section`s: Markdown, HTML, plain text, PDF, and WebVTT/SRT transcripts.

`indexer.sources` finds the files, reads their metadata and calls these; a format's problem a content owner
can fix raises `ContentError` with a message written for them.
"""

from __future__ import annotations

import io
import re

from indexer.documents import ContentError, Section


def slugify(text: str, seen: dict[str, int] | None = None) -> str:
    """GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens, de-duplicated."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    if seen is not None:
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        if n:
            slug = f"{slug}-{n}"
    return slug


# --- Markdown -----------------------------------------------------------------------------------


def markdown_sections(body: str) -> tuple[list[Section], str | None]:
    """Split Markdown into sections by heading; returns them and the first H1's text."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    blocks: list[str] = []
    anchor: str | None = None
    seen: dict[str, int] = {}
    first_h1: str | None = None
    lists: list[list] = []  # [ordered, counter]
    row: list[str] | None = None

    def flush() -> None:
        if blocks:
            sections.append(Section(tuple(h for _, h in stack), tuple(blocks), anchor))
            blocks.clear()

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            text = _inline_text(tokens[i + 1])
            flush()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            anchor = slugify(text, seen)
            if level == 1 and first_h1 is None:
                first_h1 = text
            i += 3
            continue
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([tok.type == "ordered_list_open", int(tok.attrGet("start") or 1)])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            if any(c for c in row):
                blocks.append(" | ".join(row))
            row = None
        elif tok.type == "inline":
            text = _inline_text(tok)
            if row is not None:
                row.append(text)
            elif text:
                if lists and tokens[i - 1].type == "paragraph_open" and tokens[i - 2].type == "list_item_open":
                    ordered = lists[-1]
                    if ordered[0]:
                        text = f"{ordered[1]}. {text}"
                        ordered[1] += 1
                    else:
                        text = f"- {text}"
                blocks.append(text)
        elif tok.type in ("fence", "code_block"):
            code = tok.content.strip()
            if code:
                blocks.append(code)
        elif tok.type == "html_block":
            text = re.sub(r"<[^>]+>", " ", tok.content)
            text = re.sub(r"\s+", " ", text).strip()
            if text:
                blocks.append(text)
        i += 1
    flush()
    return sections, first_h1


def _inline_text(token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content or "")
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


# --- HTML ---------------------------------------------------------------------------------------

_HTML_NOISE = ("script", "style", "nav", "footer", "header", "aside", "noscript", "form", "template", "svg")
_HTML_BLOCKS = ("p", "li", "tr", "pre", "blockquote", "dd", "dt", "figcaption", "caption")
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def html_sections(html: str) -> tuple[list[Section], str | None]:
    """Text and headings of an HTML page, without its navigation, scripts and styles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(_HTML_NOISE):
        tag.decompose()
    root = soup.body or soup
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    blocks: list[str] = []
    anchor: str | None = None
    seen: dict[str, int] = {}
    first_h1 = None
    wanted = set(_HTML_BLOCKS) | set(_HTML_HEADINGS)
    for el in root.find_all(list(wanted)):
        if el.name not in _HTML_HEADINGS and any(p.name in _HTML_BLOCKS for p in el.parents):
            continue  # a <p> inside an <li> is read with the <li>
        if el.name in _HTML_HEADINGS:
            text = el.get_text(" ", strip=True)
            if not text:
                continue
            if blocks:
                sections.append(Section(tuple(h for _, h in stack), tuple(blocks), anchor))
                blocks = []
            level = int(el.name[1])
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            anchor = el.get("id") or slugify(text, seen)
            first_h1 = first_h1 or (text if level == 1 else None)
            continue
        if el.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            text = " | ".join(c for c in cells if c)
        else:
            text = el.get_text(" ", strip=True)
        text = re.sub(r"\s+", " ", text)
        if text:
            blocks.append(f"- {text}" if el.name == "li" else text)
    if blocks:
        sections.append(Section(tuple(h for _, h in stack), tuple(blocks), anchor))
    if not sections:  # a page with bare text and no block elements
        text = re.sub(r"\s+", " ", root.get_text(" ", strip=True))
        if text:
            sections.append(Section((), (text,)))
    return sections, title or first_h1


# --- plain text and PDF ---------------------------------------------------------------------------


def text_sections(text: str) -> list[Section]:
    """Plain text: paragraphs separated by blank lines, one section."""
    paragraphs = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return [Section((), tuple(p for p in paragraphs if p))]


def pdf_sections(data: bytes) -> list[Section]:
    """One section per page of a PDF, so answers can link to the page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ContentError("The PDF is password-protected: save a copy without a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ContentError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ContentError(f"The PDF could not be read; it may be damaged ({exc}). Export it again.") from None
    sections = []
    for number, page_text in enumerate(pages, start=1):
        paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", page_text)]
        paragraphs = [p for p in paragraphs if p]
        if paragraphs:
            sections.append(Section((f"Page {number}",), tuple(paragraphs), anchor=f"page={number}", page=number))
    if not sections:
        raise ContentError("The PDF has no text that can be read (is it a scan?). Add a text version or run OCR on it.")
    return sections


# --- transcripts --------------------------------------------------------------------------------
# SubRip is parsed by the `srt` package, which is strict. WebVTT has its own small strict parser:
# webvtt-py silently drops a cue whose timestamp is broken and rounds times to whole seconds, and a
# content owner needs to hear about the first and a video link needs better than the second.

_VTT_TIME = r"(?:(\d{1,2}):)?(\d{2}):(\d{2})\.(\d{3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TIME}\s+-->\s+{_VTT_TIME}(?:\s+.*)?$")


def _cue_text(lines: list[str]) -> str:
    text = " ".join(re.sub(r"<[^>]+>", "", line).strip() for line in lines)
    return re.sub(r"\s+", " ", text).strip()


def parse_webvtt(text: str) -> list[tuple[float, float, str]]:
    """Cues of a WebVTT transcript as (start seconds, end seconds, text); strict about timings."""
    lines = text.split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise ContentError("A WebVTT transcript must start with the line 'WEBVTT'.")
    cues: list[tuple[float, float, str]] = []
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(("NOTE", "STYLE", "REGION")):
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        if "-->" not in line:
            i += 1
            continue
        match = _VTT_TIMING.match(line)
        if not match:
            raise ContentError(
                f"Line {i + 1} has a broken timestamp: '{line.strip()[:80]}'. "
                "Write each cue's timing as 00:01:02.500 --> 00:01:05.000."
            )
        g = match.groups()
        start = int(g[0] or 0) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
        end = int(g[4] or 0) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 1000
        if end < start:
            raise ContentError(f"Line {i + 1}: the cue ends ({end:.1f}s) before it starts ({start:.1f}s).")
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() and "-->" not in lines[i]:
            body.append(lines[i])
            i += 1
        if cue_text := _cue_text(body):
            cues.append((start, end, cue_text))
    if not cues:
        raise ContentError("The transcript has no cues with text.")
    return cues


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Cues of a SubRip transcript as (start seconds, end seconds, text)."""
    import srt

    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as exc:
        line = text[: exc.expected_start].count("\n") + 1 if hasattr(exc, "expected_start") else None
        snippet = text[getattr(exc, "expected_start", 0) :].strip().split("\n")[:2]
        at = f" near line {line}" if line else ""
        raise ContentError(
            f"The SRT transcript has a broken cue{at}: '{' / '.join(snippet)[:80]}'. "
            "Each cue is a number, a timing line like 00:01:02,500 --> 00:01:05,000, then its text."
        ) from None
    cues = []
    for sub in subtitles:
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        if end < start:
            raise ContentError(f"Cue {sub.index}: it ends ({end:.1f}s) before it starts ({start:.1f}s).")
        if cue_text := _cue_text(sub.content.split("\n")):
            cues.append((start, end, cue_text))
    if not cues:
        raise ContentError("The transcript has no cues with text.")
    return cues
