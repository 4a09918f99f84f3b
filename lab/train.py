"""Train the reader: a small cross-encoder that scores (question, passage) pairs.

It starts from the bundled all-MiniLM-L6-v2 weights: the first `layers` transformer layers of its
BERT encoder, reading question and passage together, and a similarity head (`scorer.PairScorer`). Each step
sees groups of one answering passage and its hard negatives (`training_data.build_groups`); the
loss is a listwise softmax over the group (pick the passage that answers) plus a pointwise
logistic loss (an absolute score, so that "nothing here answers" can be read off it too).

Deterministic given the seed and thread count; bounded by `minutes`; the best checkpoint by
validation accuracy (held-out whole sources) is exported to ONNX and quantised to int8.

    moment model train-reader --data ../shared/corpora/training --out assistant/answering/reader/model
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.answering.evaluation import auc
from lab.query_styles import casual, keywords
from lab.training_data import (
    PASSAGE_WORDS,
    VALIDATION_SOURCES,
    Group,
    build_groups,
    build_window_groups,
    mine_negatives,
)

log = logging.getLogger(__name__)

# Bumped when `training_data` makes different groups from the same corpora (the group cache's key).
GROUPS_VERSION = 2


@dataclass
class TrainConfig:
    layers: int = 3
    max_length: int = 160
    question_tokens: int = 40
    group_negatives: int = 8
    groups_per_step: int = 4
    epochs: float = 2.2
    minutes: float = 80.0
    lr: float = 6e-5
    head_lr: float = 1e-3
    warmup: float = 0.05
    pointwise_weight: float = 0.5
    seed: int = 13
    threads: int = 2
    eval_every: int = 200
    # "sections" (the shipped reader): a question's own section among sibling and other sections.
    # "windows": the window where the answer starts among the page's other windows, on pages without
    # question headings, as `PassageReader` meets them (tried 2026-12-04: held-out window groups 0.425
    # against 0.408 for the sections reader and 0.300 for the embedding model, and no better passages on
    # the held-out development set, so not shipped; `moment model train-reader --task windows`).
    # "mixed": both kinds of group in one run.
    task: str = "sections"
    # Extra section groups made from the training sources' other headings, the heading as the query
    # (`training_data.heading_queries`); 0: the authors' and derived questions only.
    headings: int = 0
    # The share of training passages read under the heading they sit under in use as well as their parents'
    # (never a heading a query was made of word for word); a reader trained so reads windows so in use.
    # 0.5 for the shipped reader (2026-12-06: demo dev passage 0.644 -> 0.667, held-out 0.492 -> 0.508).
    own_headings: float = 0.5
    # A reader (its folder) whose highest-scoring wrong passages become the training groups' negatives, out
    # of a wider pool (up to 12 sections of the page, 24 candidates in all: `training_data.mine_negatives`);
    # "": the negatives as drawn. Validation groups are never mined (they stay comparable between runs).
    mine: str = ""
    mine_pool: int = 24
    # Leave out mined candidates the mining reader scores above the answer (likely other answers).
    mine_denoise: bool = True
    # The training passages' length in words (answers and negatives alike); in use the reader reads
    # windows of `reading.WINDOW_WORDS` (80).
    passage_words: int = PASSAGE_WORDS
    # The share of training questions rewritten each time they are read as people type them in Slack
    # ("reset my vpn token", "need to claim mileage": `query_styles.casual`); validation keeps the authors'.
    casual: float = 0.0
    # Keep every evaluated checkpoint (`work_dir/step-N`, with its config) as well as the best, so that
    # checkpoints can be chosen by the pipeline's figures (`moment model export-reader`), not only by
    # validation-group accuracy.
    keep_checkpoints: bool = False


def _bundled_model_dir() -> Path:
    from indexer.embedding import model_source

    return Path(model_source("all-MiniLM-L6-v2"))


def load_groups(data_dir: Path, cache: Path, config: TrainConfig, model_cache: Path) -> list[Group]:
    """Build (or read from `cache`) the training groups, with dense negatives from the bundled model."""
    if cache.is_file():
        return [Group(**json.loads(line)) for line in cache.read_text().splitlines() if line]
    from indexer.embedding import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2", "onnx", model_cache, threads=config.threads)
    started = time.time()
    groups = build_groups(
        data_dir,
        embedder.encode,
        negatives=config.group_negatives,
        seed=config.seed,
        headings=config.headings,
        own_headings=config.own_headings,
        words=config.passage_words,
    )
    if config.task in ("windows", "mixed"):
        windows = build_window_groups(data_dir, embedder.encode, seed=config.seed, sections=groups)
        groups = windows if config.task == "windows" else groups + windows
    if config.mine:
        groups = mine_training_groups(data_dir, groups, embedder.encode, config)
    log.info("built %d groups in %.0f s", len(groups), time.time() - started)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(g.to_dict()) + "\n" for g in groups))
    return groups


def mine_training_groups(data_dir: Path, groups: list[Group], embed, config: TrainConfig) -> list[Group]:
    """The training groups' negatives chosen by the reader in `config.mine` out of a wider pool; the
    validation groups untouched."""
    from assistant.answering.reader.model import load_reader

    reader = load_reader(Path(config.mine), threads=config.threads)
    sources = sorted({g.source for g in groups if g.source not in VALIDATION_SOURCES})
    pool = build_groups(
        data_dir,
        embed,
        negatives=config.mine_pool,
        seed=config.seed,
        sources=sources,
        own_headings=config.own_headings,
        wide=True,
        words=config.passage_words,
    )
    started = time.time()
    training = mine_negatives(
        [g for g in groups if g.source not in VALIDATION_SOURCES],
        pool,
        reader.score,
        config.group_negatives,
        denoise=config.mine_denoise,
    )
    log.info("mined the negatives of %d groups with %s in %.0f s", len(training), config.mine, time.time() - started)
    return training + [g for g in groups if g.source in VALIDATION_SOURCES]


def seed_everything(seed: int, threads: int) -> None:
    """Fixed seeds and thread count: a training run is repeatable on the same machine."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)


def take_step(loss, model, optimiser, scheduler) -> None:
    """One optimiser step on `loss`, gradients clipped to norm 1."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()
    scheduler.step()
    optimiser.zero_grad()


def warmup_then_linear(optimiser, total_steps: int, warmup_share: float, floor: float):
    """The learning rate rises over the first `warmup_share` of the steps, then falls linearly to `floor`
    times its peak at the last step."""
    import torch

    warmup = max(1, int(total_steps * warmup_share))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(floor, 1 - (step - warmup) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)


def training_and_validation(
    data_dir: Path, work_dir: Path, config: TrainConfig, model_cache: Path
) -> tuple[list[Group], list[Group]]:
    """The groups (built once, then read from `work_dir`), split into training groups and the held-out
    sources' validation groups."""
    key = f"{Path(data_dir).resolve()}|{config.group_negatives}|{config.seed}|{config.task}|{GROUPS_VERSION}"
    key += f"|headings={config.headings}" if config.headings else ""
    key += f"|own={config.own_headings}" if config.own_headings else ""
    key += f"|mine={Path(config.mine).resolve()}|{config.mine_pool}" if config.mine else ""
    key += "|denoise" if config.mine and config.mine_denoise else ""
    key += f"|words={config.passage_words}" if config.passage_words != PASSAGE_WORDS else ""
    key = hashlib.sha256(key.encode()).hexdigest()
    groups = load_groups(data_dir, work_dir / f"groups-{key[:12]}.jsonl", config, model_cache)
    train_groups = [g for g in groups if g.source not in VALIDATION_SOURCES]
    valid_groups = [g for g in groups if g.source in VALIDATION_SOURCES]
    log.info("%d training groups, %d validation groups (%s)", len(train_groups), len(valid_groups), VALIDATION_SOURCES)
    return train_groups, valid_groups


def run_record(config, train_groups: list[Group], valid_groups: list[Group], steps: int, started: float) -> dict:
    """What every training record starts with: the settings, the groups, and the steps and time taken."""
    return {
        "config": asdict(config),
        "training_groups": len(train_groups),
        "validation_groups": len(valid_groups),
        "validation_sources": list(VALIDATION_SOURCES),
        "steps": steps,
        "seconds": round(time.time() - started),
    }


def train(data_dir: Path, out_dir: Path, work_dir: Path, config: TrainConfig, model_cache: Path) -> dict:
    """Train, keep the best checkpoint by validation accuracy, export it; returns the training record."""
    import torch
    from transformers import AutoTokenizer

    from lab.scorer import PairScorer

    seed_everything(config.seed, config.threads)
    train_groups, valid_groups = training_and_validation(data_dir, work_dir, config, model_cache)

    base = _bundled_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = PairScorer.from_pretrained(base, config.layers)

    def encode(questions: list[str], passages: list[str]):
        qs = [_cut_question(tokenizer, q, config.question_tokens) for q in questions]
        return tokenizer(
            qs, passages, truncation="only_second", max_length=config.max_length, padding=True, return_tensors="pt"
        )

    head = model.head_parameters()
    body = list(model.bert.parameters())
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}], weight_decay=0.01
    )
    steps_per_epoch = math.ceil(len(train_groups) / config.groups_per_step)
    total_steps = max(1, int(steps_per_epoch * config.epochs))
    scheduler = warmup_then_linear(optimiser, total_steps, config.warmup, floor=0.05)
    rng = random.Random(config.seed)
    styles = random.Random(config.seed + 1)  # its own stream: casual=0 draws nothing, as before it existed
    deadline = time.time() + config.minutes * 60
    best = {"accuracy": -1.0}
    history = []
    step = 0
    started = time.time()
    checkpoint = work_dir / "best"

    def evaluate() -> dict:
        def scores_of(ask) -> list[np.ndarray]:
            return [
                model(**encode([ask(g.question)] * (1 + len(g.negatives)), [g.positive, *g.negatives]))[:, 0].numpy()
                for g in valid_groups
            ]

        model.eval()
        with torch.no_grad():
            scores = scores_of(str)
            # The same groups asked as keywords ("reset my vpn token"), for the record of a casual run.
            typed = scores_of(keywords) if config.casual else None
        model.train()
        metrics = choice_metrics(scores)
        if config.task == "mixed":  # each kind of group's own accuracy, to compare with single-task readers
            for task in sorted({group_task(g) for g in valid_groups}):
                own = [s for g, s in zip(valid_groups, scores, strict=True) if group_task(g) == task]
                metrics[f"{task}_accuracy"] = choice_metrics(own)["accuracy"]
        if typed is not None:
            metrics["keywords_accuracy"] = choice_metrics(typed)["accuracy"]
        return metrics

    model.train()
    stop = False
    while not stop:
        order = list(range(len(train_groups)))
        rng.shuffle(order)
        for start in range(0, len(order), config.groups_per_step):
            batch = [train_groups[i] for i in order[start : start + config.groups_per_step]]
            questions, passages, labels, sizes = [], [], [], []
            for g in batch:
                negs = g.negatives[: config.group_negatives]
                items = [g.positive, *negs]
                question = g.question
                if config.casual and styles.random() < config.casual:
                    question = casual(question, styles)
                questions += [question] * len(items)
                passages += items
                labels += [1.0] + [0.0] * len(negs)
                sizes.append(len(items))
            logits = model(**encode(questions, passages))[:, 0]
            target = torch.tensor(labels)
            listwise = 0.0
            offset = 0
            for size in sizes:
                listwise = listwise - torch.log_softmax(logits[offset : offset + size], dim=0)[0]
                offset += size
            listwise = listwise / len(sizes)
            pointwise = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target, pos_weight=torch.tensor(float(config.group_negatives))
            )
            loss = listwise + config.pointwise_weight * pointwise
            take_step(loss, model, optimiser, scheduler)
            step += 1
            if step % 10 == 0:
                log.info("step %d/%d loss %.4f (%.0f s)", step, total_steps, float(loss), time.time() - started)
            last = step >= total_steps or time.time() > deadline
            if step % config.eval_every == 0 or last:
                metrics = evaluate()
                metrics.update(step=step, seconds=round(time.time() - started))
                history.append(metrics)
                log.info("validation at step %d: %s", step, metrics)
                if config.keep_checkpoints:
                    save_checkpoint(model, tokenizer, config, work_dir / f"step-{step}", metrics)
                if metrics["accuracy"] > best["accuracy"]:
                    best = metrics
                    save_checkpoint(model, tokenizer, config, checkpoint, metrics)
            if last:
                stop = True
                break

    record = {
        **run_record(config, train_groups, valid_groups, step, started),
        "best": best,
        "history": history,
        "baseline": bi_encoder_baseline(valid_groups, model_cache, config),
    }
    export(checkpoint, out_dir, config, record, valid_groups)
    return record


def save_checkpoint(model, tokenizer, config: TrainConfig, where: Path, metrics: dict) -> None:
    """A checkpoint (the best so far, or every one kept) that `export_checkpoint` can turn into a reader
    later: weights, tokenizer, the run's config and its validation figures."""
    if where.exists():
        shutil.rmtree(where)
    model.save(where)
    tokenizer.save_pretrained(str(where))
    (where / "train-config.json").write_text(json.dumps({"config": asdict(config), "metrics": metrics}, indent=1))


def export_checkpoint(checkpoint: Path, out_dir: Path, data_dir: Path | None, work_dir: Path, model_cache: Path):
    """Export a checkpoint kept by `keep_checkpoints` as a reader (int8 ONNX); with `data_dir`, the int8
    model is measured on the validation groups too. Returns the record written."""
    saved = json.loads((checkpoint / "train-config.json").read_text())
    config = TrainConfig(**saved["config"])
    record = {"config": saved["config"], "best": saved["metrics"], "checkpoint": str(checkpoint)}
    valid = training_and_validation(data_dir, work_dir, config, model_cache)[1] if data_dir else None
    export(checkpoint, out_dir, config, record, valid)
    return record


def group_task(group: Group) -> str:
    """The kind of group: "windows" (`build_window_groups`) or "sections"."""
    return "windows" if {"before-answer", "same-page-words"} & set(group.kinds) else "sections"


def validate_export(model_dir: Path, groups: list[Group], config: TrainConfig) -> dict:
    """The exported int8 reader on the validation groups (quantisation costs some of the checkpoint's
    accuracy: what ships is what is measured)."""
    from assistant.answering.reader.model import load_reader

    reader = load_reader(model_dir, threads=config.threads)
    return choice_metrics([reader.score(g.question, [g.positive, *g.negatives]) for g in groups])


def bi_encoder_baseline(groups: list[Group], model_cache: Path, config: TrainConfig) -> dict:
    """The bundled bi-encoder choosing within the same validation groups: the bar to beat."""
    from indexer.embedding import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2", "onnx", model_cache, threads=config.threads)
    vectors = [embedder.encode([g.question, g.positive, *g.negatives]) for g in groups]
    return choice_metrics([v[1:] @ v[0] for v in vectors])


def choice_metrics(scores: list[np.ndarray]) -> dict:
    """How well scores choose within groups (each array: the positive's score first, then its negatives'):
    the share of groups whose positive scores highest, and the AUC of positives against negatives."""
    pos = [float(s[0]) for s in scores]
    neg = [float(x) for s in scores for x in s[1:]]
    correct = sum(int(np.argmax(s) == 0) for s in scores)
    area = auc(pos, neg)  # ties count half, as in `moment eval`
    return {"accuracy": correct / max(1, len(scores)), "auc": float("nan") if area is None else area}


def _cut_question(tokenizer, question: str, limit: int) -> str:
    ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    return question if len(ids) <= limit else tokenizer.decode(ids[:limit])


def export(
    checkpoint: Path, out_dir: Path, config: TrainConfig, record: dict, validation: list[Group] | None = None
) -> None:
    """Write the checkpoint as ONNX (full precision, then int8) with its tokenizer and record; with
    `validation`, the int8 model is measured on those groups before it replaces `out_dir` (`shipped`)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    from lab.scorer import PairScorer

    model = PairScorer.load(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    tmp = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sample = tokenizer(["a question"], ["a passage"], return_tensors="pt")
    fp32 = tmp / "reader-fp32.onnx"
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # Per-channel scales: with one scale per tensor the int8 reader picked the answer in 67.2% of validation
    # groups against 71.5% at full precision; per channel, 69.3% (2026-12-06).
    quantize_dynamic(str(fp32), str(tmp / "reader.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
    meta = {
        "max_length": config.max_length,
        "question_tokens": config.question_tokens,
        "layers": config.layers,
        "own_heading": config.own_headings > 0,
        "quantization": "int8, dynamic, per channel",
        "training": record,
    }
    (tmp / "reader.json").write_text(json.dumps(meta, indent=1))
    if validation:  # loading it needs the file above; the record then gains what the int8 model scored
        record["shipped"] = validate_export(tmp, validation, config)
        (tmp / "reader.json").write_text(json.dumps(meta, indent=1))
    # The full-precision export stays with the checkpoint (for comparison); only int8 ships.
    shutil.move(str(fp32), str(checkpoint / "reader-fp32.onnx"))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
