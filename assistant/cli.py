"""The `moment` command: the front door for operators, admins and other tools.

Every command works on the embedded defaults (see `assistant.settings`). Commands with `--json` print
one JSON object whose keys other tools rely on.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from assistant.settings import Settings, load_settings
from indexer.documents import CONTENT_TYPES

# Exit statuses shared by every command (README, "Commands").
EXIT_OK = 0
EXIT_ERROR = 1  # an error, or a mistake in the command line: the message says which
EXIT_PARTIAL = 2  # `moment index`: published, but some files failed; `moment xapi flush`: some deferred


class _MomentGroup(click.Group):
    """The `moment` group: a mistyped command or option exits 1 with click's message, like every other
    mistake, so that exit status 2 keeps its documented meaning (click's own is 2)."""

    group_class = type  # `model` and `xapi` are groups of this kind too

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR
            raise

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR
            raise


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _require_folder(path: Path, option: str) -> None:
    """A content folder that does not exist stops the command before the model is loaded (loading it
    into a fresh data folder takes seconds and writes there)."""
    if not path.is_dir():
        raise click.ClickException(
            f"The content folder {path} does not exist. Run Moment in the folder it was set up in, or give {option}."
        )


def _viewer(service, settings: Settings, as_user: str | None, team: str | None):
    """Whose eyes `moment ask` answers with: `--as` someone (their cached groups, read from Slack when stale
    and a bot token is set), else anyone's (content for everyone only)."""
    from assistant.access.audiences import Viewer

    if not as_user:
        return Viewer.public()
    if not service.audience_names():
        return Viewer(as_user)  # nothing is restricted: their groups do not matter
    if settings.slack_bot_token is not None:
        from assistant.slack.outbound import web_client
        from assistant.slack.usergroups import SlackUserGroups

        service.group_source = SlackUserGroups(
            web_client(settings), service.groups, service.audience_names, default_team=settings.default_team_id
        )
    return service.viewer_for(as_user, service.team(team))


def _require_index(settings: Settings, index_dir: Path | None = None) -> None:
    """Stop before the model is loaded when there is no index to answer from."""
    from indexer.store import IndexMissingError, IndexStore

    try:
        IndexStore(index_dir or settings.index_dir).open(search=False).close()
    except IndexMissingError as exc:
        raise click.ClickException(str(exc)) from None


def _require_known_tags(settings: Settings, tags: tuple[str, ...]) -> None:
    """A tag no indexed content carries would silently filter every answer out: refuse it by name."""
    from indexer.store import IndexStore

    if not tags:
        return
    version = IndexStore(settings.index_dir).open(search=False)
    try:
        known = sorted({tag for document in version.documents for tag in document.meta.tags})
    finally:
        version.close()
    unknown = [tag for tag in tags if tag.lower() not in known]
    if unknown:
        raise click.ClickException(
            f"No content is tagged {', '.join(repr(t) for t in unknown)}. Tags in the index: {', '.join(known)}."
        )


def _require_database(settings: Settings):
    """The interaction database, migrated; a SQLite file that does not exist yet is an error here (a
    wrong working directory, or a data folder nothing was asked in), not a new empty database."""
    from assistant.db.database import Database

    url = settings.database_url
    if url == f"sqlite:///{(settings.home / 'moment.db').as_posix()}" and not (settings.home / "moment.db").is_file():
        raise click.ClickException(
            f"No interaction database in {settings.home}: nothing has been asked with this data folder. Run Moment "
            "in the folder it runs in, or set MOMENT_HOME (or DATABASE_URL)."
        )
    database = Database(url)
    database.upgrade(settings.default_team_id)
    return database


@click.group(cls=_MomentGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    """The embedding model and the reader."""


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


def _require_lab() -> None:
    """The training commands need the lab's libraries: say in one line how to install them."""
    from lab import LabMissing, require

    try:
        require()
    except LabMissing as exc:
        raise click.ClickException(str(exc)) from None


@model.command("train-reader")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The training corpora: one folder per source with questions.jsonl and corpus/ (shared/corpora/training).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the ONNX reader goes (default: the shipped one, assistant/answering/reader/model).",
)
@click.option("--minutes", default=80.0, show_default=True, help="Stop training after this long.")
@click.option("--epochs", default=2.2, show_default=True, help="Passes over the training groups.")
@click.option("--layers", default=3, show_default=True, help="Transformer layers kept from all-MiniLM-L6-v2.")
@click.option("--seed", default=13, show_default=True)
@click.option(
    "--task",
    type=click.Choice(["sections", "windows", "mixed"]),
    default="sections",
    show_default=True,
    help="What it learns to choose: a question's section among its neighbours (shipped), or the window "
    "where the answer starts on a page without question headings, or both (tried, not shipped).",
)
@click.option(
    "--headings",
    default=0,
    show_default=True,
    help="Also this many groups made from the training handbooks' other headings, each heading the query "
    "and its section the answer.",
)
@click.option(
    "--own-headings",
    default=0.5,
    show_default=True,
    help="The share of training passages read under their own heading too (never a heading a question was "
    "made of word for word); the reader then reads windows so in use.",
)
@click.option(
    "--mine",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A reader's folder (e.g. assistant/answering/reader/model): the training groups' negatives become the "
    "passages it scores highest out of a wider pool (up to 12 sections of the page, 24 candidates in all).",
)
@click.option(
    "--passage-words",
    default=110,
    show_default=True,
    help="The training passages' length in words (the reader reads 80-word windows in use).",
)
@click.option(
    "--casual",
    default=0.0,
    show_default=True,
    help="The share of training questions rewritten as people type them in Slack each time they are read "
    '("reset my vpn token", "need to claim mileage"); validation keeps the authors\' questions.',
)
@click.option(
    "--keep-checkpoints",
    is_flag=True,
    help="Keep every evaluated checkpoint (in the data folder's reader-train/step-N), to export one later "
    "with `moment model export-reader`.",
)
@click.pass_context
def model_train_reader(
    ctx,
    data_dir: Path,
    out_dir: Path | None,
    minutes: float,
    epochs: float,
    layers: int,
    seed: int,
    task: str,
    headings: int,
    own_headings: float,
    mine: Path | None,
    passage_words: int,
    casual: float,
    keep_checkpoints: bool,
):
    """Train the reader (a cross-encoder) on CPU from the bundled weights and export it to int8 ONNX.

    About 50 minutes on 2 cores with the defaults (1,485 steps; stopped at --minutes if slower); never needed by
    the set-up (the trained reader ships).
    """
    import logging

    from assistant.answering.reader.model import MODEL_DIR

    _require_lab()
    from lab.train import TrainConfig, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = _settings(ctx)
    config = TrainConfig(
        minutes=minutes,
        epochs=epochs,
        layers=layers,
        seed=seed,
        task=task,
        headings=headings,
        own_headings=own_headings,
        mine=str(mine or ""),
        passage_words=passage_words,
        casual=casual,
        keep_checkpoints=keep_checkpoints,
    )
    work = settings.home / "reader-train"
    work.mkdir(parents=True, exist_ok=True)
    record = train(data_dir, out_dir or MODEL_DIR, work, config, settings.model_cache)
    best = record["best"]
    click.echo(
        f"Reader written to {out_dir or MODEL_DIR}: validation accuracy {best['accuracy']:.3f} "
        f"(bi-encoder {record['baseline']['accuracy']:.3f}), AUC {best['auc']:.3f} "
        f"(bi-encoder {record['baseline']['auc']:.3f}); {record['steps']} steps in {record['seconds']} s."
    )


@model.command("export-reader")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The training corpora: the int8 reader is then measured on the validation groups too.",
)
@click.pass_context
def model_export_reader(ctx, checkpoint: Path, out_dir: Path, data_dir: Path | None):
    """Export a checkpoint kept by `train-reader --keep-checkpoints` as a reader (int8 ONNX) in --out."""
    _require_lab()
    from lab.train import export_checkpoint

    settings = _settings(ctx)
    if not (checkpoint / "train-config.json").is_file():
        raise click.ClickException(f"{checkpoint} is not a kept checkpoint (no train-config.json in it).")
    record = export_checkpoint(checkpoint, out_dir, data_dir, settings.home / "reader-train", settings.model_cache)
    shipped = record.get("shipped", {}).get("accuracy")
    click.echo(f"Reader written to {out_dir}" + (f": int8 validation accuracy {shipped:.3f}." if shipped else "."))


@model.command("train-embedder")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The training corpora (shared/corpora/training), as for train-reader.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder the fine-tuned model goes to (use it with MOMENT_EMBEDDING_MODEL=FOLDER).",
)
@click.option("--minutes", default=40.0, show_default=True, help="Stop training after this long.")
@click.option("--epochs", default=2.0, show_default=True, help="Passes over the training groups.")
@click.option("--seed", default=13, show_default=True)
@click.option(
    "--own-headings",
    default=0.0,
    show_default=True,
    help="The share of training passages read under their own heading too, as train-reader's option.",
)
@click.pass_context
def model_train_embedder(
    ctx, data_dir: Path, out_dir: Path, minutes: float, epochs: float, seed: int, own_headings: float
):
    """Fine-tune the embedding model on the reader's training groups (about 20 minutes on 2 cores).

    The result is a sentence-transformers folder; an index built with it must be rebuilt with it
    (`MOMENT_EMBEDDING_MODEL=FOLDER moment index`).
    """
    import logging

    _require_lab()
    from lab.train_embedder import EmbedderConfig, train_embedder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = _settings(ctx)
    config = EmbedderConfig(minutes=minutes, epochs=epochs, seed=seed, own_headings=own_headings)
    work = settings.home / "reader-train"
    work.mkdir(parents=True, exist_ok=True)
    record = train_embedder(data_dir, out_dir, work, config, settings.model_cache)
    final, base = record["final"], record["baseline"]
    click.echo(
        f"Embedding model written to {out_dir}: validation accuracy {final['accuracy']:.3f} "
        f"(bundled {base['accuracy']:.3f}), AUC {final['auc']:.3f} (bundled {base['auc']:.3f}); "
        f"{record['steps']} steps in {record['seconds']} s."
    )


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
    _require_folder(content_dir, "--content or MOMENT_CONTENT_DIR")
    try:
        indexed = _index(settings, content_dir, index_dir, full=full, show_progress=not as_json)
    except (ModelError, FileNotFoundError) as exc:
        if as_json:
            click.echo(json.dumps({"error": str(exc)}))
            sys.exit(EXIT_ERROR)
        raise click.ClickException(str(exc)) from None
    report = indexed.report
    if as_json:
        out = {
            **report.to_dict(),
            "answers_written": indexed.answers_written,
            "database_problem": indexed.database_problem,
        }
        click.echo(json.dumps(out, indent=2))
    else:
        _print_build_report(report, content_dir)
        for path in indexed.answers_written:
            click.echo(f"  wrote the approved mentor answer {path}")
        if indexed.database_problem:
            click.secho(f"Warning: {indexed.database_problem}.", fg="yellow")
    if report.failed:
        sys.exit(EXIT_PARTIAL if report.published else EXIT_ERROR)
    sys.exit(EXIT_OK if report.version else EXIT_ERROR)


def _index(settings: Settings, content_dir: Path, index_dir: Path | None, *, full: bool, show_progress: bool):
    """The one indexing path (`IndexOperations.index`). The deployment's index (no `--index`) also gets
    the approved mentor answers and is published through the database; another index is built alone."""
    from assistant.db.database import Database, DatabaseUnavailableError
    from assistant.operations.operations import IndexOperations
    from indexer.embedding import load_embedder
    from indexer.store import IndexStore

    publish = index_dir is None
    store = IndexStore(index_dir or settings.index_dir, keep=settings.index_keep)
    embedder = load_embedder(
        settings.embedding_model, settings.embedding_backend, settings.model_cache, settings.embedding_threads
    )
    database = Database(settings.database_url) if publish else None
    try:
        if database is not None:
            with contextlib.suppress(DatabaseUnavailableError):  # `index` says what it could not do without it
                database.upgrade(settings.default_team_id)
        operations = IndexOperations(settings, database, store, embedder)
        with _progress_bar(enabled=show_progress) as on_progress:
            return operations.index(content_dir, full=full, publish=publish, on_progress=on_progress)
    finally:
        if database is not None:
            database.dispose()


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
    from assistant.answering.retrieval import CalibrationError
    from assistant.service import MomentService
    from indexer.embedding import ModelError

    try:
        return MomentService.from_settings(settings)
    except (ModelError, CalibrationError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("ask")
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: answered, confidence, sources, ...")
@click.option(
    "--type", "types", multiple=True, type=click.Choice(CONTENT_TYPES, case_sensitive=False), help="Only this type."
)
@click.option("--tag", "tags", multiple=True, help="Only content with this tag.")
@click.option("--user", default=None, help="Who is asking, for the log (default: cli:your login name).")
@click.option(
    "--as",
    "as_user",
    default=None,
    metavar="USER_ID",
    help="Answer as this Slack user would see it (their user groups, from the cache; read from Slack when it is "
    "stale and SLACK_BOT_TOKEN is set). Without it: content for everyone only.",
)
@click.option("--team", default=None, metavar="TEAM_ID", help="With --as: their workspace (default: the only one).")
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    as_json: bool,
    types: tuple,
    tags: tuple,
    user: str | None,
    as_user: str | None,
    team: str | None,
) -> None:
    """Answer QUESTION from the indexed content (reads standard input when QUESTION is '-').

    The question is searched as typed (Slack's markup is Slack's: `<@U123>` or `:emoji:` here are words).
    Content restricted to some Slack user groups (`audience:`) is searched only with `--as` a member.
    """
    import getpass

    from assistant.answering.retrieval import IndexMismatchError
    from assistant.service import Asker
    from indexer.store import IndexMissingError

    if question == "-":
        question = sys.stdin.read()
    settings = _settings(ctx)
    _require_index(settings)
    _require_known_tags(settings, tags)
    service = _service(settings)
    asker = Asker(user_id=user or f"cli:{getpass.getuser()}", surface="cli", team_id=team)
    viewer = _viewer(service, settings, as_user, team)
    try:
        answer = service.ask(question, asker, types=list(types) or None, tags=list(tags) or None, viewer=viewer)
    except (IndexMissingError, IndexMismatchError) as exc:
        if as_json:
            click.echo(json.dumps({"error": str(exc), "answered": False}))
            sys.exit(EXIT_ERROR)
        raise click.ClickException(str(exc)) from None
    if as_json:
        data = answer.to_dict()
        if as_user:
            data["as"] = {
                "user_id": as_user,
                "groups": sorted(viewer.groups),
                "groups_known": viewer.known,
                "why_unknown": viewer.why_unknown,
            }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        from assistant.render_text import render_answer

        if as_user:
            if viewer.known:
                groups = ", ".join(sorted(g for g in viewer.groups if not g.startswith("S"))) or "none"
                click.echo(f"As {as_user} would see it (user groups: {groups}).\n")
            else:
                click.echo(f"As {as_user} would see it, without restricted content: {viewer.why_unknown}.\n", err=False)
        click.echo(render_answer(answer))


def _parse_calibration_set(spec: str) -> tuple[Path, Path, int | None]:
    """`QUESTIONS,CONTENT[,N]` of --calibrate-with."""
    parts = spec.split(",")
    if len(parts) not in (2, 3) or not all(parts):
        raise click.BadParameter(
            f"{spec!r}: give QUESTIONS,CONTENT or QUESTIONS,CONTENT,N.", param_hint="--calibrate-with"
        )
    questions, content = Path(parts[0]), Path(parts[1])
    if not questions.is_file():
        raise click.BadParameter(f"{questions} is not a file.", param_hint="--calibrate-with")
    _require_folder(content, "the folder a --calibrate-with set's gold paths refer to")
    every = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 2:
            raise click.BadParameter(f"{parts[2]!r}: N is a whole number of 2 or more.", param_hint="--calibrate-with")
        every = int(parts[2])
    return questions, content, every


def _eval_set(settings, questions_file: Path, split, content_dir, index_dir, remove_every, quiet: bool):
    """The questions of an eval set and the index they are asked of: --content indexed first (without every
    N-th gold page with `remove_every`), else --index or the main index."""
    import shutil

    from assistant.answering import evaluation
    from indexer.store import IndexStore

    try:
        questions = evaluation.load_questions(questions_file, split)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not questions:
        raise click.ClickException(f"No questions to evaluate in {questions_file}.")
    if content_dir is not None:
        _require_folder(content_dir, "the folder the questions' gold paths refer to as --content")
    else:
        _require_index(settings, index_dir)
    if remove_every:
        if content_dir is None:
            raise click.ClickException("--remove-gold-pages needs --content (the folder to take pages out of).")
        removed, questions = evaluation.remove_gold_pages(questions, remove_every)
        source = content_dir
        # Named like the source's index (its folder name and a hash of its path): two sources both called
        # `corpus` get copies of their own.
        own = evaluation.eval_index_dir(settings.home, source).name
        content_dir = settings.home / "eval-content" / f"{own}-minus-every-{remove_every}"
        shutil.rmtree(content_dir, ignore_errors=True)
        gone = {(source / p).resolve() for p in removed}
        shutil.copytree(
            source, content_dir, ignore=lambda d, names: [n for n in names if (Path(d) / n).resolve() in gone]
        )
        if not quiet:
            click.echo(
                f"Removed {len(removed)} gold pages; {sum(not q.answerable for q in questions)} questions "
                f"now have no answer in {content_dir}.",
                err=True,
            )
        index_dir = index_dir or evaluation.eval_index_dir(settings.home, content_dir)
    if content_dir is not None and index_dir is None:
        index_dir = evaluation.eval_index_dir(settings.home, content_dir)
    if content_dir is not None:
        report = _index(settings, content_dir, index_dir, full=False, show_progress=not quiet).report
        if report.version is None:
            raise click.ClickException(f"Could not index {content_dir}: {report.failed[:3]}")
    return questions, IndexStore(index_dir or settings.index_dir, keep=settings.index_keep)


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
    "--calibrate",
    is_flag=True,
    help="Choose fusion and the answer threshold on these questions and save them in the data folder.",
)
@click.option(
    "--calibrate-with",
    "calibrate_with",
    multiple=True,
    metavar="QUESTIONS,CONTENT[,N]",
    help="With --calibrate: calibrate on this development set too (its questions, the folder their gold paths "
    "refer to, and N to take out every N-th gold page as with --remove-gold-pages). Repeatable.",
)
@click.option(
    "--remove-gold-pages",
    "remove_every",
    type=click.IntRange(min=2),
    help="Near-miss test: index --content without every N-th page that is some question's only gold page; "
    "the questions that lose their page must be declined.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object with every figure and each question's rank."
)
@click.pass_context
def eval_command(
    ctx, questions_file, k, content_dir, index_dir, split, compare, calibrate, calibrate_with, remove_every, as_json
):
    """Measure retrieval on QUESTIONS_FILE (JSON lines: {"question", "gold": [paths]}; gold [] = no answer).

    Reports recall@1, recall@5 and MRR@10 over answerable questions, first passage right (questions with
    an `answer`), the share of answerable questions answered and of unanswerable ones declined, the AUC
    of the confidence, and each question's rank. With the reader on (the default), Moment without it is
    measured in the same run (`moment-retrieval`); with MOMENT_READER=off, Moment with it (`moment-reader`).
    With --content, the index is (re)built from that folder first (incrementally), into --index or a folder
    beside the default one.
    """
    from assistant.answering import evaluation
    from assistant.answering.reader import reader_for
    from assistant.answering.retrieval import CalibrationError, RetrievalParams, Retriever, calibration_file
    from indexer.embedding import load_embedder
    from indexer.inference import cpu_features

    settings = _settings(ctx)
    extra = [_parse_calibration_set(spec) for spec in calibrate_with]
    if extra and not calibrate:
        raise click.ClickException("--calibrate-with adds questions to --calibrate; give --calibrate too.")
    questions, store = _eval_set(settings, questions_file, split, content_dir, index_dir, remove_every, as_json)
    also_sets = [_eval_set(settings, f, None, c, None, n, as_json) for f, c, n in extra]
    # (The reader runs in this process either way: see `inference.session_options` on spinning.)
    embedder = load_embedder(settings.embedding_model, settings.embedding_backend, settings.model_cache, spinning=False)
    reader, reader_state = reader_for(settings)
    # Both in one run: the configured Moment, and the same with the reader switched the other way.
    other, other_state = (None, None) if settings.reader else reader_for(settings, force=True)
    problem = reader_state.problem or (other_state.problem if other_state else None)
    if problem:
        click.secho(f"Warning: {problem} Measuring retrieval alone.", fg="yellow", err=True)
    home = settings.home
    try:
        retrieval_only = Retriever(store, embedder, RetrievalParams.calibrated(home))
        retriever = (
            Retriever(store, embedder, RetrievalParams.calibrated(home, reader=True), reader=reader)
            if reader
            else retrieval_only
        )
        alternatives = {}
        if reader:
            alternatives["moment-retrieval"] = retrieval_only
        elif other:
            alternatives["moment-reader"] = Retriever(
                store, embedder, RetrievalParams.calibrated(home, reader=True), reader=other
            )
    except CalibrationError as exc:
        raise click.ClickException(str(exc)) from None
    if calibrate:
        # Into the data folder, where it wins over the packaged one; never into the installed package.
        target = home / calibration_file(reader=reader is not None).name
        also = [(own_store, own_questions) for own_questions, own_store in also_sets]
        try:
            params = evaluation.calibrate(retriever, questions, base=retrieval_only.params, also=also)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        home.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(params, indent=2) + "\n")
        click.echo(
            f"Saved calibration to {target} (it wins over the packaged one for this data folder; to ship it, copy it "
            f"to assistant/{target.name}): {json.dumps(params)}",
            err=True,
        )
        retriever = Retriever(store, embedder, RetrievalParams.load(target), reader=reader)
        alternatives.pop("moment-reader", None)  # its calibration is not the one just made
    systems = ["moment", *alternatives] + (["bm25", "dense"] if compare else [])
    # Which calibration each Moment measured used: a data folder's own wins over the shipped one, and figures
    # made with it are not the shipped product's (an experiment's leftover once moved a README figure).
    used = {"moment": target if calibrate else calibration_file(home, reader=reader is not None)}
    used |= {name: calibration_file(home, reader=name == "moment-reader") for name in alternatives}
    own = sorted({str(path) for path in used.values() if path.parent == home})
    if own:
        click.secho(
            f"Note: measured with this data folder's calibration ({', '.join(own)}), not the shipped one.",
            fg="yellow",
            err=True,
        )
    result = evaluation.evaluate(retriever, questions, systems, k, alternatives)
    data = result.to_dict()
    data["reader"] = {"on": reader_state.on, "description": reader_state.description, "problem": reader_state.problem}
    data["calibration"] = {name: str(path) for name, path in used.items()}
    data["machine"] = {"cpu_features": cpu_features()}  # the int8 reader's scores can differ with them
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{data['questions']} questions ({data['answerable']} answerable, {data['unanswerable']} without an answer)"
        f"{' in split ' + split if split else ''}, index {retriever.version().version}\n"
        f"Reader: {reader_state.description}\n"
        f"Calibration: {used['moment']}\n"
    )
    click.echo(result.table())
    against = {name: c for name, c in data["passage_against"].items() if c["only_first"] + c["only_second"]}
    if against:
        click.echo(
            "\nFirst passage right for Moment only / for the other only, same questions (McNemar exact p): "
            + ", ".join(f"{n} {c['only_first']} / {c['only_second']} (p = {c['p']:.2f})" for n, c in against.items())
        )
    misses = [q for q in data["per_question"] if q["gold"] and (q.get("moment_rank") is None or q["moment_rank"] > 5)]
    wrong = [
        q
        for q in data["per_question"]
        if (q["gold"] and not q.get("answered")) or (not q["gold"] and q.get("answered"))
    ]
    kinds = data["declined_by_kind"]
    if kinds:
        click.echo(
            "\nDeclined, by kind of unanswerable question: "
            + ", ".join(f"{kind} {v['declined']}/{v['questions']}" for kind, v in sorted(kinds.items()))
        )
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
    from assistant.slack.outbound import SlackConfigError, check_settings
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


@main.command("worker")
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the scheduler: re-index runs and the nightly re-index, mentor deadlines, xAPI delivery,
    the weekly digest, review reminders and retention. Run one per deployment."""
    from assistant.slack.server import _configure_logging
    from assistant.worker import run

    _configure_logging()
    run(_settings(ctx))


# --- admins outside Slack -----------------------------------------------------------------------


@main.command("report")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True, help="The period, in days.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md", show_default=True)
@click.option(
    "--chart",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the chart here (.png, .jpg, .svg or .pdf, by the file's ending).",
)
@click.option("--team", help="The workspace (Slack team id) to report on (default: MOMENT_DEFAULT_TEAM_ID).")
@click.pass_context
def report_command(ctx: click.Context, days: int, fmt: str, chart: Path | None, team: str | None) -> None:
    """Usage, answered and helpful rates, top content, content gaps, mentors, stale content (of one
    workspace)."""
    from assistant.records.reports import CHART_FORMATS, chart_image, to_csv, to_json, to_markdown

    settings = _settings(ctx)
    if chart is not None:
        if chart.suffix.lower().lstrip(".") not in CHART_FORMATS:
            raise click.ClickException(
                f"{chart}: Moment writes charts as .png, .jpg, .svg or .pdf; give the file one of those endings."
            )
        if not chart.parent.is_dir():
            raise click.ClickException(
                f"The folder {chart.parent} does not exist: create it, or write the chart elsewhere."
            )
    _require_database(settings)
    report = _service(settings).report(days, team_id=team)
    click.echo({"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](report), nl=False)
    if chart:
        chart.write_bytes(chart_image(report, chart.suffix.lower().lstrip(".")))
        click.echo(f"Chart written to {chart}", err=True)


@main.command("export")
@click.option("--days", type=click.IntRange(1, 3650), help="Only the last N days (default: everything).")
@click.option("--team", help="Only this workspace's (Slack team id; default: every workspace's).")
@click.pass_context
def export_command(ctx: click.Context, days: int | None, team: str | None) -> None:
    """Every interaction as CSV on standard output (cells that a spreadsheet would run as a formula are
    prefixed with ')."""
    from assistant.records.reports import export_csv

    click.echo(export_csv(_require_database(_settings(ctx)), days, team), nl=False)


@main.group()
def workspace() -> None:
    """The Slack workspaces Moment serves (OAuth installs), and their own content folders."""


@workspace.command("list")
@click.pass_context
def workspace_list(ctx: click.Context) -> None:
    """Every workspace: installed or not, its admins, its own content folder."""
    from assistant.access.tenancy import Workspaces

    settings = _settings(ctx)
    for w in Workspaces(_require_database(settings), settings.default_team_id).all():
        state = f"uninstalled {w.uninstalled_at:%Y-%m-%d}" if w.uninstalled_at else "installed"
        org = f" (org {w.enterprise_id})" if w.enterprise_id else ""
        folder = w.content_folder or "the shared content"
        click.echo(
            f"{w.team_id}{org} {w.name or ''}: {state}; admins {', '.join(w.admins) or '-'}; answers from {folder}"
        )


@workspace.command("content")
@click.argument("team")
@click.argument("folder", required=False)
@click.pass_context
def workspace_content(ctx: click.Context, team: str, folder: str | None) -> None:
    """Answer workspace TEAM from FOLDER of the content only, and nobody else from it (no FOLDER: from the
    shared content again). Web processes follow within 30 seconds."""
    from assistant.access.tenancy import WorkspaceError, Workspaces

    settings = _settings(ctx)
    if folder and not (settings.content_dir / folder).is_dir():
        raise click.ClickException(f"{settings.content_dir / folder} is not a folder of the content.")
    try:
        done = Workspaces(_require_database(settings), settings.default_team_id).set_content_folder(team, folder)
    except WorkspaceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{team} is answered from {done.content_folder or 'the shared content'}.")


@main.command("forget")
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, user_id: str, yes: bool) -> None:
    """Delete a person's interactions, votes and mentor requests; void their xAPI records."""
    from assistant.records.reports import counted

    settings = _settings(ctx)
    _require_database(settings)
    if not yes:
        click.confirm(f"Delete everything Moment holds about {user_id}?", abort=True)
    service = _service(settings)
    counts = service.forget(user_id)
    click.echo(
        f"Deleted {counted(counts['interactions'], 'interaction')}, {counted(counts['votes'], 'vote')} and "
        f"{counted(counts['mentor_requests'], 'mentor request')} of {user_id}; "
        f"{counted(counts['voided'], 'xAPI statement')} will be voided at the next delivery."
    )
    cli_user = f"cli:{user_id}"
    if not counts["interactions"] and ":" not in user_id and (held := service.interactions_of(cli_user)):
        click.echo(
            f"Questions asked from the command line are stored under cli:<login name>: {counted(held, 'interaction')} "
            f"of {cli_user}. To delete them too: moment forget {cli_user}"
        )


@main.group()
def xapi() -> None:
    """Statements for the Learning Record Store."""


@xapi.command("flush")
@click.pass_context
def xapi_flush(ctx: click.Context) -> None:
    """Deliver every queued statement now."""
    from assistant.records.xapi import XapiOutbox

    settings = _settings(ctx)
    if not settings.lrs_endpoint:
        raise click.ClickException("LRS_ENDPOINT is not set: there is no Learning Record Store to send to.")
    outbox = XapiOutbox(settings, _require_database(settings))
    outbox.retry_now()
    counts = outbox.flush()
    status = outbox.status()
    click.echo(
        f"Sent {counts['sent']}, rejected {counts['rejected']}, deferred {counts['deferred']}. "
        f"Now {status.queued} queued, {status.sent} sent, {status.rejected} rejected."
    )
    if counts["deferred"]:
        sys.exit(EXIT_PARTIAL)


@xapi.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def xapi_status(ctx: click.Context, as_json: bool) -> None:
    """Queued, sent and rejected statements (with the reasons of the latest rejections)."""
    from assistant.records.xapi import XapiOutbox

    settings = _settings(ctx)
    outbox = XapiOutbox(settings, _require_database(settings))
    status = outbox.status()
    rejected = outbox.rejected(10)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "queued": status.queued,
                    "sent": status.sent,
                    "rejected": status.rejected,
                    "oldest_queued": status.oldest_queued.isoformat() if status.oldest_queued else None,
                    "latest_rejections": [{"id": r.id, "verb": r.verb, "reason": r.error} for r in rejected],
                }
            )
        )
        return
    click.echo(f"LRS: {settings.lrs_endpoint or 'not configured (LRS_ENDPOINT)'}")
    click.echo(f"queued {status.queued}, sent {status.sent}, rejected {status.rejected}")
    if status.oldest_queued:
        click.echo(f"oldest queued: {status.oldest_queued:%Y-%m-%d %H:%M} UTC")
    for r in rejected:
        click.echo(f"  rejected {r.id} ({r.verb}): {r.error}")


DEMO_QUESTIONS = ("how do i reset my vpn token", "whats the mileage rate if i use my own car")


@main.command("demo")
@click.option("--question", "questions", multiple=True, help="Ask this instead of the sample questions.")
@click.pass_context
def demo(ctx: click.Context, questions: tuple[str, ...]) -> None:
    """Index the demo content and answer sample questions: the one command to try Moment."""
    from assistant.render_text import render_answer
    from assistant.service import Asker

    settings = _settings(ctx)
    _require_folder(settings.content_dir, "MOMENT_CONTENT_DIR")
    indexed = _index(settings, settings.content_dir, None, full=False, show_progress=True)
    report = indexed.report
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
