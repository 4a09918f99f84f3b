"""The `moment` command: the front door for operators, admins and other tools.

Every command works on the embedded defaults (see `assistant.settings`). Commands with `--json` print
one JSON object whose keys other tools rely on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from assistant.settings import Settings, load_settings

# Exit statuses shared by every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 2  # `moment index`: published, but some files failed


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), help="Data folder (default .moment, or $MOMENT_HOME).")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """Moment: answers from curated content, in Slack, and a vetted mentor when content is not enough."""
    ctx.ensure_object(dict)
    try:
        ctx.obj["settings"] = load_settings(home=home)
    except Exception as exc:  # pydantic's validation message names the variable
        raise click.ClickException(f"Invalid configuration: {exc}") from None


# --- model --------------------------------------------------------------------------------------


@main.group()
def model() -> None:
    """The embedding model."""


@model.command("prepare")
@click.pass_context
def model_prepare(ctx: click.Context) -> None:
    """Export the embedding model to ONNX once (the set-up runs this; takes about 10 s)."""
    from indexer.embedding import BACKENDS, ModelError, load_embedder, prepare_onnx

    settings = _settings(ctx)
    if settings.embedding_backend not in BACKENDS:
        raise click.ClickException(f"Unknown MOMENT_EMBEDDING_BACKEND '{settings.embedding_backend}'.")
    try:
        if settings.embedding_backend != "torch":
            prepare_onnx(settings.embedding_model, settings.model_cache)
        embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Model ready: {embedder.spec.describe()}")


# --- index --------------------------------------------------------------------------------------


@main.command("index")
@click.option("--content", "content_dir", type=click.Path(path_type=Path), help="Content folder (default content/).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder (default .moment/index).")
@click.option("--full", is_flag=True, help="Re-embed every document, not only added and changed ones.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for other tools).")
@click.pass_context
def index_command(
    ctx: click.Context, content_dir: Path | None, index_dir: Path | None, full: bool, as_json: bool
) -> None:
    """Index the content folder into a new index version.

    Only added and changed documents are embedded; removed ones are dropped. The new version is
    published atomically: searches keep using the previous one until it is complete.

    Exit status: 0 when every file was indexed, 2 when the index was published but some files
    failed (listed with reasons), 1 when nothing could be published.
    """
    from indexer.embedding import ModelError

    settings = _settings(ctx)
    content_dir = content_dir or settings.content_dir
    try:
        report = _build(settings, content_dir, index_dir, full=full, show_progress=not as_json)
    except (ModelError, FileNotFoundError) as exc:
        if as_json:
            click.echo(json.dumps({"error": str(exc)}))
            sys.exit(EXIT_ERROR)
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_build_report(report, content_dir)
    if report.version is None or (not report.published and report.failed and not report.unchanged):
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


def _build(settings: Settings, content_dir: Path, index_dir: Path | None, *, full: bool, show_progress: bool):
    from indexer.build import build_index
    from indexer.embedding import load_embedder
    from indexer.store import IndexStore

    store = IndexStore(index_dir or settings.index_dir, keep=settings.index_keep)
    embedder = load_embedder(
        settings.embedding_model, settings.embedding_backend, settings.model_cache, settings.embedding_threads
    )
    with _progress_bar(enabled=show_progress) as on_progress:
        return build_index(
            content_dir,
            store,
            embedder,
            full=full,
            max_file_bytes=settings.max_file_bytes,
            faiss_kind=settings.faiss_index,
            on_progress=on_progress,
        )


class _progress_bar:
    """A tqdm bar on stderr while chunks are embedded; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        def update(done: int, total: int) -> None:
            if not self.enabled or total < 64:
                return
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="chunk", desc="Embedding", file=sys.stderr, disable=None)
            self.bar.n = done
            self.bar.refresh()

        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_build_report(report, content_dir: Path) -> None:
    if report.published:
        head = f"Published index version {report.version}"
    elif report.version:
        head = f"Nothing changed; version {report.version} keeps serving"
    else:
        head = "Nothing was published"
    click.echo(f"{head}: {report.documents} documents, {report.chunks} chunks ({report.seconds:.1f} s).")
    click.echo(
        f"  added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}, "
        f"unchanged {len(report.unchanged)}, failed {len(report.failed)}; "
        f"{report.embedded_chunks} chunks embedded."
    )
    for label, paths in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        if paths and len(paths) <= 20:
            for path in paths:
                click.echo(f"  {label:8} {path}")
    if report.failed:
        click.secho(f"\n{len(report.failed)} file(s) could not be indexed:", fg="red", err=False)
        for failure in report.failed:
            click.echo(f"  {failure.path}\n      {failure.reason}")
    if report.warnings:
        click.secho(f"\n{len(report.warnings)} warning(s):", fg="yellow")
        for warning in report.warnings[:15]:
            click.echo(f"  {warning.path}: {warning.reason}")
        if len(report.warnings) > 15:
            click.echo(f"  ... and {len(report.warnings) - 15} more (`moment index --json` lists them all).")


# --- ask and eval --------------------------------------------------------------------------------


def _service(settings: Settings):
    from assistant.service import MomentService
    from indexer.embedding import ModelError

    try:
        return MomentService.from_settings(settings)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("ask")
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: answered, confidence, sources, ...")
@click.option("--type", "types", multiple=True, help="Only this content type (job-aid, procedure, reference, video).")
@click.option("--tag", "tags", multiple=True, help="Only content with this tag.")
@click.option("--user", default=None, help="Who is asking, for the log (default: your login name).")
@click.pass_context
def ask(ctx: click.Context, question: str | None, as_json: bool, types: tuple, tags: tuple, user: str | None) -> None:
    """Answer QUESTION from the indexed content (reads standard input when QUESTION is '-')."""
    import getpass

    from assistant.retrieval import IndexMismatchError
    from assistant.service import Asker
    from indexer.store import IndexMissingError

    if question == "-":
        question = sys.stdin.read()
    settings = _settings(ctx)
    service = _service(settings)
    asker = Asker(user_id=user or f"cli:{getpass.getuser()}", surface="cli")
    try:
        answer = service.ask(question, asker, types=list(types) or None, tags=list(tags) or None)
    except (IndexMissingError, IndexMismatchError) as exc:
        if as_json:
            click.echo(json.dumps({"error": str(exc), "answered": False}))
            sys.exit(EXIT_ERROR)
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        from assistant.render_text import render_answer

        click.echo(render_answer(answer))


@main.command("eval")
@click.argument("questions_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--k", default=10, show_default=True, help="Rank cut-off for MRR.")
@click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), help="Content folder the gold paths refer to."
)
@click.option(
    "--index", "index_dir", type=click.Path(path_type=Path), help="Index to evaluate (built from --content first)."
)
@click.option("--split", type=click.Choice(["dev", "test"]), help="Only questions of this split.")
@click.option("--compare/--no-compare", default=True, show_default=True, help="Also run BM25 alone and dense alone.")
@click.option(
    "--calibrate", is_flag=True, help="Choose fusion and the answer threshold on these questions and save them."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object with every figure and each question's rank."
)
@click.pass_context
def eval_command(ctx, questions_file, k, content_dir, index_dir, split, compare, calibrate, as_json) -> None:
    """Measure retrieval on QUESTIONS_FILE (JSON lines: {"question", "gold": [paths]}; gold [] = no answer).

    Reports recall@1, recall@5 and MRR@10 over answerable questions, the share of answerable questions
    answered and of unanswerable ones declined, and each question's rank. With --content, the index is
    (re)built from that folder first (incrementally), into --index or a folder beside the default one.
    """
    from assistant import evaluation
    from assistant.retrieval import CALIBRATION_FILE, Retriever
    from indexer.embedding import load_embedder
    from indexer.store import IndexStore

    settings = _settings(ctx)
    if content_dir is not None and index_dir is None:
        index_dir = settings.home / "eval-indexes" / content_dir.resolve().name
    if content_dir is not None:
        report = _build(settings, content_dir, index_dir, full=False, show_progress=not as_json)
        if report.version is None:
            raise click.ClickException(f"Could not index {content_dir}: {report.failed[:3]}")
    store = IndexStore(index_dir or settings.index_dir, keep=settings.index_keep)
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache)
    retriever = Retriever(store, embedder)
    questions = evaluation.load_questions(questions_file, split)
    if not questions:
        raise click.ClickException("No questions to evaluate.")
    if calibrate:
        params = evaluation.calibrate(retriever, questions)
        CALIBRATION_FILE.write_text(json.dumps(params, indent=2) + "\n")
        click.echo(f"Saved calibration to {CALIBRATION_FILE}: {json.dumps(params)}", err=True)
        from assistant.retrieval import RetrievalParams

        retriever = Retriever(store, embedder, RetrievalParams.load())
    systems = ["moment", "bm25", "dense"] if compare else ["moment"]
    result = evaluation.evaluate(retriever, questions, systems, k)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    data = result.to_dict()
    click.echo(
        f"{data['questions']} questions ({data['answerable']} answerable, {data['unanswerable']} without an answer)"
        f"{' in split ' + split if split else ''}, index {retriever.version().version}\n"
    )
    click.echo(result.table())
    misses = [q for q in data["per_question"] if q["gold"] and (q.get("moment_rank") is None or q["moment_rank"] > 5)]
    wrong = [
        q
        for q in data["per_question"]
        if (q["gold"] and not q.get("answered")) or (not q["gold"] and q.get("answered"))
    ]
    if misses:
        click.echo(f"\nNot in Moment's top 5 ({len(misses)}):")
        for q in misses[:15]:
            click.echo(f"  - {q['question']!r} (gold {', '.join(q['gold'])}; rank {q.get('moment_rank')})")
    if wrong:
        click.echo(f"\nWrong answer/decline decision ({len(wrong)}):")
        for q in wrong[:15]:
            verdict = "answered" if q.get("answered") else "declined"
            click.echo(f"  - {q['question']!r}: {verdict} at confidence {q.get('confidence')}")


# --- demo ---------------------------------------------------------------------------------------


# --- serve ------------------------------------------------------------------------------------------


@main.command("serve")
@click.option("--socket", "socket_mode", is_flag=True, help="Socket Mode (needs SLACK_APP_TOKEN) instead of HTTP.")
@click.option("--port", type=int, help="HTTP port (default $PORT, else 3000).")
@click.option("--workers", type=int, help="HTTP worker processes (default $MOMENT_WEB_WORKERS, else 2).")
@click.pass_context
def serve(ctx: click.Context, socket_mode: bool, port: int | None, workers: int | None) -> None:
    """Run the Slack app: HTTP on /slack/events (and /healthz), or Socket Mode."""
    from assistant.slack.app import SlackConfigError, check_settings
    from assistant.slack.server import serve_http, serve_socket_mode

    settings = _settings(ctx)
    try:
        check_settings(settings, socket_mode=socket_mode)  # before any worker forks, so the message is seen
        if socket_mode:
            serve_socket_mode(settings)
        else:
            serve_http(settings, port or settings.port, workers or settings.web_workers, settings.web_threads)
    except SlackConfigError as exc:
        raise click.ClickException(str(exc)) from None


DEMO_QUESTIONS = ("how do i reset my vpn token", "whats the mileage rate if i use my own car")


@main.command("demo")
@click.option("--question", "questions", multiple=True, help="Ask this instead of the sample questions.")
@click.pass_context
def demo(ctx: click.Context, questions: tuple[str, ...]) -> None:
    """Index the demo content and answer sample questions: the one command to try Moment."""
    from assistant.render_text import render_answer
    from assistant.service import Asker

    settings = _settings(ctx)
    report = _build(settings, settings.content_dir, None, full=False, show_progress=True)
    _print_build_report(report, settings.content_dir)
    if report.version is None:
        sys.exit(EXIT_ERROR)
    service = _service(settings)
    for question in questions or DEMO_QUESTIONS:
        click.echo(f"\n$ moment ask {json.dumps(question)}")
        click.echo(render_answer(service.ask(question, Asker(user_id="cli:demo", surface="cli"))))
    click.echo(f'\nInteractions are logged in {settings.database_url}. Try: moment ask "your question"')


if __name__ == "__main__":
    main()
