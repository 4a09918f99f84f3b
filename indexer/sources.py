"""Find content files and load them into `Document`s.

Markdown carries its metadata in YAML front matter; every other format (HTML, plain text, PDF,
WebVTT/SRT transcripts) in a `.yml` sidecar with the same stem. Transcripts must have one (the video's
URL lives there); for the others it is optional.

Each format's text is read by `indexer.formats`. Every problem a content owner can fix raises `ContentError`
with a message written for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import frontmatter
import yaml

from indexer.documents import (
    CONTENT_TYPES,
    AudienceError,
    ContentError,
    Document,
    DocumentMeta,
    Section,
    group_name,
    person_id,
)
from indexer.formats import html_sections, markdown_sections, parse_srt, parse_webvtt, pdf_sections, text_sections

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt"}
PDF_SUFFIXES = {".pdf"}
TRANSCRIPT_SUFFIXES = {".vtt", ".srt"}
DOCUMENT_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES | TRANSCRIPT_SUFFIXES
SIDECAR_SUFFIXES = (".yml", ".yaml")
# Files that sit beside content (pictures a page shows, its styles) and are not content themselves.
ASSET_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".css", ".js", ".ico", ".mp4", ".webm"}
# Folders inside the content root that are not published content.
SKIPPED_DIRS = {"eval", "drafts"}
SKIPPED_FILES = {"mentors.yml", "mentors.yaml"}

DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")


@dataclass(frozen=True)
class SourceFile:
    """A content file found on disk, with its optional sidecar and a hash of both."""

    path: str  # relative to the content root
    absolute: Path
    sidecar: Path | None
    size: int
    digest: str | None  # None when the file is too large to read


def discover(
    root: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES, links: list[str] | None = None
) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """List the content files below `root`, sorted by path.

    Returns the files and a list of (path, reason) for files that cannot be content at all
    (unsupported formats), so the owner hears about them. Symbolic links are not followed (one could
    bring a file from anywhere on the host into answers); their paths are added to `links`, when given.
    """
    found: list[SourceFile] = []
    rejected: list[tuple[str, str]] = []
    skipped_links: list[Path] = []
    unreadable: list[tuple[Path, OSError]] = []
    files = sorted(_walk(root, skipped_links, unreadable))
    rejected.extend((folder.relative_to(root).as_posix() + "/", unreadable_reason(exc)) for folder, exc in unreadable)
    if links is not None:
        links.extend(sorted(link.relative_to(root).as_posix() for link in skipped_links))
    for file in files:
        rel = file.relative_to(root).as_posix()
        suffix = file.suffix.lower()
        if suffix in SIDECAR_SUFFIXES or suffix in ASSET_SUFFIXES or file.name in SKIPPED_FILES:
            continue
        if suffix not in DOCUMENT_SUFFIXES:
            rejected.append(
                (
                    rel,
                    f"Moment cannot read '{suffix or 'extensionless'}' files. Save it as Markdown (.md), "
                    "HTML, PDF or plain text (.txt), or as a .vtt/.srt transcript for a video.",
                )
            )
            continue
        sidecar = _sidecar_of(file)
        try:
            size = file.stat().st_size
            digest = None
            if size <= max_bytes:
                h = hashlib.sha256(file.read_bytes())
                if sidecar is not None:
                    h.update(b"\0sidecar\0" + sidecar.read_bytes())
                digest = h.hexdigest()
        except OSError as exc:  # one file Moment may not read (or that vanished) must not sink the others
            rejected.append((rel, unreadable_reason(exc)))
            continue
        found.append(SourceFile(rel, file, sidecar, size, digest))
    return found, rejected


def unreadable_reason(exc: OSError) -> str:
    """Why a file or folder could not be read, and what to do, for its owner."""
    what = exc.strerror or type(exc).__name__
    return (
        f"Moment could not read it ({what}: {exc.filename}). Give the user Moment runs as read access "
        "(e.g. chmod a+r for a file, a+rx for a folder); the other files were indexed."
    )


def _walk(root: Path, links: list[Path], unreadable: list[tuple[Path, OSError]]) -> Iterator[Path]:
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        unreadable.append((root, exc))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            links.append(entry)
            continue
        if entry.is_dir():
            if entry.parent == root and entry.name in SKIPPED_DIRS:
                continue
            yield from _walk(entry, links, unreadable)
        elif entry.is_file():
            yield entry


def _sidecar_of(file: Path) -> Path | None:
    for suffix in SIDECAR_SUFFIXES:
        candidate = file.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def load(source: SourceFile, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
    """Load one content file; raises `ContentError` with a reason its owner can act on."""
    if source.size > max_bytes:
        raise ContentError(
            f"The file is {source.size / 1_048_576:.1f} MB; the limit is {max_bytes / 1_048_576:.0f} MB. "
            "Split it into smaller documents."
        )
    if source.size == 0:
        raise ContentError("The file is empty.")
    suffix = source.absolute.suffix.lower()
    warnings: list[str] = []
    if suffix in MARKDOWN_SUFFIXES:
        text = _read_text(source.absolute)
        raw_meta, body = _split_front_matter(text)
        sections, first_h1 = markdown_sections(body)
        meta = parse_meta(raw_meta, fallback_title=first_h1, path=source.path, warnings=warnings)
        sections = _drop_title_heading(sections, meta.title)
    elif suffix in TRANSCRIPT_SUFFIXES:
        if source.sidecar is None:
            stem = Path(source.path).stem
            raise ContentError(
                f"No metadata file for this transcript: add {stem}.yml beside it with the video's "
                "title, url, owner, tags, reviewed and review_every."
            )
        raw_meta = _read_sidecar(source.sidecar)
        text = _read_text(source.absolute)
        cues = parse_webvtt(text) if suffix == ".vtt" else parse_srt(text)
        sections = (Section(heading_path=(), blocks=(), cues=tuple(cues)),)
        raw_meta.setdefault("type", "video")
        meta = parse_meta(raw_meta, fallback_title=None, path=source.path, warnings=warnings)
        if not meta.url:
            raise ContentError("The transcript's metadata file has no `url`: give the video's address.")
    else:
        raw_meta = _read_sidecar(source.sidecar) if source.sidecar else {}
        if suffix in HTML_SUFFIXES:
            sections, html_title = html_sections(_read_text(source.absolute))
        elif suffix in PDF_SUFFIXES:
            sections, html_title = pdf_sections(source.absolute.read_bytes()), None
        else:
            sections, html_title = text_sections(_read_text(source.absolute)), None
        raw_meta.setdefault("type", "reference")
        meta = parse_meta(raw_meta, fallback_title=html_title, path=source.path, warnings=warnings)
        sections = _drop_title_heading(sections, meta.title)
    if not any(s.blocks or s.cues for s in sections):
        raise ContentError("The file has no text to index (only metadata, or only markup).")
    meta = resolve_lead(meta, raw_meta.get("lead"), sections, warnings)
    return Document(path=source.path, meta=meta, sections=tuple(sections), warnings=tuple(warnings))


def resolve_lead(meta: DocumentMeta, raw, sections, warnings: list[str]) -> DocumentMeta:
    """The `lead` field: a heading of the page (any level; case and spacing aside, or a path written
    "Section > Subsection"), kept as that heading's full path. A heading the page does not have is left out
    with a warning that lists the page's headings, so the owner can correct it."""
    if raw is None or str(raw).strip() == "":
        return meta
    wanted = [_heading_key(part) for part in str(raw).split(">")]
    paths = list(dict.fromkeys(s.heading_path for s in sections if s.heading_path))
    for path in paths:
        for end in range(len(path), 0, -1):  # the shortest path that ends with the words written
            keys = [_heading_key(h) for h in path[:end]]
            if keys[-len(wanted) :] == wanted:
                return dataclasses.replace(meta, lead=tuple(path[:end]))
    headings = list(dict.fromkeys(h for path in paths for h in path))
    listed = "; ".join(f"'{h}'" for h in headings) if headings else "none (the page has no headings)"
    warnings.append(f"`lead` '{raw}' is not a heading of this page, so nothing is shown first. Its headings: {listed}.")
    return meta


def _heading_key(text: str) -> str:
    return " ".join(str(text).split()).casefold()


# --- text and metadata ------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise ContentError(
            f"This looks like a binary file, not {path.suffix.lstrip('.').upper()} text "
            "(it contains NUL bytes). Check that the right file was saved under this name."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line} cannot be read). "
            "Save it with UTF-8 encoding."
        ) from None
    if not text.strip():
        raise ContentError("The file is empty (only white space).")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _FrontMatter(frontmatter.YAMLHandler):
    """YAML front matter as python-frontmatter finds it, with YAML's own end marker: it opens with a `---`
    line and closes at the next `---` or `...` line (`----` is a Markdown rule, not a boundary)."""

    FM_BOUNDARY = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)


_FRONT_MATTER = _FrontMatter()


def _split_front_matter(text: str) -> tuple[dict, str]:
    """Separate YAML front matter from the Markdown body."""
    if not (text.startswith("---") and _FRONT_MATTER.detect(text)):
        return {}, text
    try:
        raw, body = _FRONT_MATTER.split(text)
    except ValueError:  # no closing line
        if text.startswith("---\n"):
            raise ContentError(
                "The front matter starts with '---' but never ends: add a closing '---' line after it."
            ) from None
        return {}, text
    # `raw` keeps the newline that ends the opening line, so YAML's line numbers are the file's.
    return _load_yaml(raw, where="front matter (between the --- lines)", line_offset=0), body.removeprefix("\n")


def _read_sidecar(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ContentError(f"The metadata file {path.name} is not UTF-8 text.") from None
    return _load_yaml(text, where=f"metadata file {path.name}", line_offset=0)


def _load_yaml(text: str, where: str, line_offset: int) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 + line_offset if exc.problem_mark else None
        at = f" on line {line}" if line else ""
        raise ContentError(f"The {where} is not valid YAML{at}: {exc.problem or exc}.") from None
    except yaml.YAMLError as exc:
        raise ContentError(f"The {where} is not valid YAML: {exc}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContentError(f"The {where} must be a list of `key: value` lines (title, type, owner, ...).")
    return {str(k): v for k, v in data.items()}


def parse_meta(raw: dict, *, fallback_title: str | None, path: str, warnings: list[str]) -> DocumentMeta:
    """Validate metadata: hard errors for what breaks answers, warnings for what only weakens them."""
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        title = fallback_title or Path(path).stem.replace("-", " ").replace("_", " ").capitalize()
        warnings.append(f"No `title` in the metadata; using '{title}'.")
    type_ = raw.get("type")
    if type_ is None:
        type_ = "reference"
        warnings.append("No `type` in the metadata; treating it as a reference page.")
    type_ = str(type_).strip().lower()
    if type_ not in CONTENT_TYPES:
        raise ContentError(f"Unknown type '{type_}': use one of {', '.join(CONTENT_TYPES)}.")

    owner = raw.get("owner")
    if owner is not None:
        owner = str(owner).strip()
        if not SLACK_USER_ID.match(owner):
            warnings.append(f"`owner` '{owner}' is not a Slack user ID (like U024BE7LH); reminders cannot reach them.")
    else:
        warnings.append("No `owner`: nobody will get review reminders for this item.")

    tags_raw = raw.get("tags") or ()
    if isinstance(tags_raw, str):
        tags_raw = [t for t in re.split(r"[,\s]+", tags_raw) if t]
    tags = tuple(str(t).strip().lower() for t in tags_raw if str(t).strip())

    reviewed = raw.get("reviewed")
    if isinstance(reviewed, dt.datetime):
        reviewed = reviewed.date()
    elif isinstance(reviewed, str):
        try:
            reviewed = dt.date.fromisoformat(reviewed.strip())
        except ValueError:
            warnings.append(f"`reviewed` '{reviewed}' is not a date like 2026-09-01; freshness is unknown.")
            reviewed = None
    elif reviewed is not None and not isinstance(reviewed, dt.date):
        warnings.append("`reviewed` is not a date like 2026-09-01; freshness is unknown.")
        reviewed = None

    review_every = raw.get("review_every")
    if review_every is not None:
        try:
            review_every = int(review_every)
            if review_every <= 0:
                raise ValueError
        except (TypeError, ValueError):
            warnings.append(f"`review_every` must be a number of days, not '{review_every}'.")
            review_every = None

    url = raw.get("url")
    if url is not None:
        url = str(url).strip()
        if not re.match(r"^https?://", url):
            warnings.append(f"`url` '{url}' is not a web address (http:// or https://); it is not linked.")
            url = None

    duration = raw.get("duration")
    try:
        duration = float(duration) if duration is not None else None
    except (TypeError, ValueError):
        duration = None
    audience = parse_audience(raw.get("audience", ()), warnings)
    return DocumentMeta(
        title=title.strip(),
        type=type_,
        owner=owner,
        tags=tags,
        reviewed=reviewed,
        review_every=review_every,
        url=url,
        duration=duration,
        audience=audience,
    )


AUDIENCE_HELP = (
    "Write the Slack user groups whose members may see this item as their handles or ids, "
    "like `audience: [managers, people-ops]` or `audience: [S0123ABCD]`."
)


def parse_audience(raw, warnings: list[str]) -> tuple[str, ...]:
    """The `audience` field: user group handles or ids (a list, or one string with commas). A value that is
    not a group is left out with a warning (the item is then shown to fewer people, never to more); when
    none is left, or the field is not a list of names at all, the file is not indexed (`AudienceError`)."""
    if raw is None or raw == () or raw == "":
        return ()
    if isinstance(raw, str):
        values: list = [v for v in re.split(r"[,\s]+", raw) if v]
    elif isinstance(raw, list):
        values = raw
    else:
        kind = type(raw).__name__
        raise AudienceError(f"`audience` must be a list of Slack user groups, not a {kind}. {AUDIENCE_HELP}")
    if not values:
        raise AudienceError(
            "`audience` is an empty list: nobody could see this item. Remove the field to show it to everyone. "
            + AUDIENCE_HELP
        )
    names: list[str] = []
    for value in values:
        name = (person_id(value) or group_name(value)) if isinstance(value, str) else None
        if name is None:
            warnings.append(f"`audience` value {value!r} is not a Slack user group handle or id; it is left out.")
        elif name not in names:
            names.append(name)
    if not names:
        raise AudienceError(f"No value of `audience` is a Slack user group ({values!r}). {AUDIENCE_HELP}")
    return tuple(names)


def _drop_title_heading(sections: list[Section], title: str) -> list[Section]:
    """The first H1 usually repeats the title: keep it out of heading paths."""
    out = []
    for s in sections:
        path = s.heading_path
        if path and _norm(path[0]) == _norm(title):
            path = path[1:]
        out.append(Section(path, s.blocks, s.anchor, s.page, s.cues))
    return out


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()
