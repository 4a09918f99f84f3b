"""Content in, figures out: `moment index`, `moment eval` and `moment demo`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from assistant.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    require_folder,
    require_index,
    service_for,
    settings_of,
)
from assistant.errors import explain
from assistant.settings import Settings


@click.command("index")
@click.option("--content", "content_dir", type=click.Path(path_type=Path), help="Content folder (default content/).")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index folder (default .moment/index).",
)
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

    settings = settings_of(ctx)
    content_dir = content_dir or settings.content_dir
    require_folder(content_dir, "--content or MOMENT_CONTENT_DIR")
    try:
        indexed = _index(settings, content_dir, index_dir, full=full, show_progress=not as_json)
    except (ModelError, FileNotFoundError) as exc:
        if as_json:
            line, status = explain(exc)
            click.echo(json.dumps({"error": line}))
            sys.exit(status)
        raise
    report = indexed.report
    if as_json:
        out = {
            **report.to_dict(),
            "answers_written": indexed.answers_written,
            "database_problem": indexed.database_problem,
            "database_published": indexed.database_published,
        }
        click.echo(json.dumps(out, indent=2))
    else:
        _print_build_report(report, content_dir)
        for path in indexed.answers_written:
            click.echo(f"  wrote the approved mentor answer {path}")
        if indexed.database_published:
            click.echo(f"  published version {report.version} through the database (it did not hold it)")
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
    database = Database.from_settings(settings) if publish else None
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
    require_folder(content, "the folder a --calibrate-with set's gold paths refer to")
    every = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 2:
            raise click.BadParameter(f"{parts[2]!r}: N is a whole number of 2 or more.", param_hint="--calibrate-with")
        every = int(parts[2])
    return questions, content, every


def eval_set(settings, questions_file: Path, split, content_dir, index_dir, remove_every, quiet: bool):
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
        require_folder(content_dir, "the folder the questions' gold paths refer to as --content")
    else:
        require_index(settings, index_dir)
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
    store = IndexStore(index_dir or settings.index_dir, keep=settings.index_keep)
    version = store.open(search=False)
    try:
        problem = evaluation.unknown_gold(questions, {d.path for d in version.documents}, questions_file)
    finally:
        version.close()
    if problem:
        raise click.ClickException(problem)
    return questions, store


@click.command("eval")
@click.argument("questions_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True, help="Rank cut-off for MRR.")
@click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), help="Content folder the gold paths refer to."
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index to evaluate (built from --content first).",
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
    from assistant.answering import calibrating, evaluation
    from assistant.answering.reader import reader_for
    from assistant.answering.retrieval import CalibrationError, RetrievalParams, Retriever, calibration_file
    from indexer.embedding import load_embedder
    from indexer.inference import cpu_features

    settings = settings_of(ctx)
    extra = [_parse_calibration_set(spec) for spec in calibrate_with]
    if extra and not calibrate:
        raise click.ClickException("--calibrate-with adds questions to --calibrate; give --calibrate too.")
    questions, store = eval_set(settings, questions_file, split, content_dir, index_dir, remove_every, as_json)
    also_sets = [eval_set(settings, f, None, c, None, n, as_json) for f, c, n in extra]
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
            params = calibrating.calibrate(retriever, questions, base=retrieval_only.params, also=also)
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
    from assistant.answering.generation import AnswerGenerator, LLMConfigError

    try:
        generator = AnswerGenerator.from_settings(settings)  # generated answers too, where MOMENT_LLM_URL is set
    except LLMConfigError as exc:
        raise click.ClickException(str(exc)) from None
    result = evaluation.evaluate(retriever, questions, systems, k, alternatives, generator=generator)
    data = result.to_dict()
    data["llm"] = {"model": generator.model, "url": settings.llm_url} if generator else None
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
    latency = data["latency_ms"]
    if latency:
        click.echo(f"\nMoment's answer time per question: median {latency['p50']} ms, p95 {latency['p95']} ms")
    generation = data["generation"]
    if generation:
        right = generation["passage_right"]
        click.echo(
            f"Generated answers ({generator.model}): shown for {generation['shown']} of {generation['answered']} "
            f"answered questions ({', '.join(f'{k} {v}' for k, v in generation['reasons'].items())}); "
            f"passage in the answering section {right if right is not None else '–'} "
            f"({generation['passage_questions']} judged); what is read first right {generation['read_first_right']} "
            f"against {generation['extractive_right']} extractive; generation median "
            f"{generation['generation_ms']['p50']} ms, p95 {generation['generation_ms']['p95']} ms"
        )
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


DEMO_QUESTIONS = ("how do i reset my vpn token", "whats the mileage rate if i use my own car")


@click.command("demo")
@click.option("--question", "questions", multiple=True, help="Ask this instead of the sample questions.")
@click.pass_context
def demo(ctx: click.Context, questions: tuple[str, ...]) -> None:
    """Index the demo content and answer sample questions: the one command to try Moment."""
    from assistant.cli.render_text import render_answer
    from assistant.records.interactions import Asker

    settings = settings_of(ctx)
    require_folder(settings.content_dir, "MOMENT_CONTENT_DIR")
    indexed = _index(settings, settings.content_dir, None, full=False, show_progress=True)
    report = indexed.report
    _print_build_report(report, settings.content_dir)
    if report.version is None:
        sys.exit(EXIT_ERROR)
    service = service_for(settings)
    for question in questions or DEMO_QUESTIONS:
        click.echo(f"\n$ moment ask {json.dumps(question)}")
        click.echo(render_answer(service.asking.ask(question, Asker(user_id="cli:demo", surface="cli"))))
    click.echo(f'\nInteractions are logged in {settings.database_url}. Try: moment ask "your question"')
