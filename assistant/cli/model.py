"""`moment model`: prepare the embedding model; train and export the reader and the embedder."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.cli.common import (
    MomentGroup,
    settings_of,
)


@click.group(cls=MomentGroup)
def model() -> None:
    """The embedding model and the reader."""


@model.command("prepare")
@click.pass_context
def model_prepare(ctx: click.Context) -> None:
    """Export the embedding model to ONNX once (the set-up runs this; takes about 10 s)."""
    from indexer.embedding import BACKENDS, ModelError, load_embedder, prepare_onnx

    settings = settings_of(ctx)
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
    settings = settings_of(ctx)
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

    settings = settings_of(ctx)
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
    settings = settings_of(ctx)
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
