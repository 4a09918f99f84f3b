"""Fine-tune the embedding model (the bi-encoder) on the reader's training groups.

The bundled all-MiniLM-L6-v2 chooses a question's own section among its page's other sections for
0.547 of the validation groups; the reader (a cross-encoder) for 0.69. This trains the bi-encoder
itself on the same groups (`training_data.build_groups`), so that retrieval chooses the chunk that
answers more often before any reader runs: each step takes `batch` questions, each with its own
section and `hard_negatives` of its group's negatives (sibling sections, the page without the answer,
other pages' look-alikes), and a softmax over every passage in the batch (multiple-negatives ranking
loss: the other questions' passages are negatives too).

Deterministic given the seed and thread count; bounded by `minutes`. The model after the last step is
kept (the learning rate has decayed to zero by then), saved in half precision (the weights are
stored at 16 bits, loaded and exported at 32), with its record in `training.json`.

    moment model train-embedder --data ../shared/corpora/training --out /tmp/embedder
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lab.train import (
    TrainConfig,
    _bundled_model_dir,
    choice_metrics,
    run_record,
    seed_everything,
    take_step,
    training_and_validation,
    warmup_then_linear,
)

log = logging.getLogger(__name__)


@dataclass
class EmbedderConfig:
    batch: int = 32
    hard_negatives: int = 1
    epochs: float = 2.0
    minutes: float = 40.0
    lr: float = 2e-5
    warmup: float = 0.1
    scale: float = 20.0  # cosine * scale are the softmax's logits
    max_length: int = 128  # word pieces a passage is cut to in training (the index embeds up to 256)
    seed: int = 13
    threads: int = 2
    eval_every: int = 40
    # The reader's groups as this was first measured with (2026-12-06): every passage under its parents'
    # headings only. 0.5, as the shipped reader's groups (`--own-headings 0.5`): validation
    # 0.657 against 0.569, in use no better (docs/reader.md).
    own_headings: float = 0.0


def train_embedder(data_dir: Path, out_dir: Path, work_dir: Path, config: EmbedderConfig, model_cache: Path) -> dict:
    """Fine-tune, validate on the held-out sources' groups, save to `out_dir`; returns the record."""
    import torch
    from sentence_transformers import SentenceTransformer

    seed_everything(config.seed, config.threads)
    # The reader's section groups (the same cache file as `train-reader --own-headings` with the same share's).
    train_groups, valid_groups = training_and_validation(
        data_dir, work_dir, TrainConfig(threads=config.threads, own_headings=config.own_headings), model_cache
    )

    model = SentenceTransformer(str(_bundled_model_dir()), device="cpu")
    model.max_seq_length = config.max_length

    def embed(texts: list[str]):
        return torch.nn.functional.normalize(model(model.tokenize(texts))["sentence_embedding"], dim=-1)

    def evaluate() -> dict:
        model.eval()
        with torch.no_grad():
            scores = []
            for g in valid_groups:
                v = model.encode(
                    [g.question, g.positive, *g.negatives],
                    batch_size=16,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                scores.append(v[1:] @ v[0])
        model.train()
        return choice_metrics(scores)

    baseline = evaluate()
    log.info("the bundled model on the validation groups: %s", baseline)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    total_steps = max(1, int(math.ceil(len(train_groups) / config.batch) * config.epochs))
    scheduler = warmup_then_linear(optimiser, total_steps, config.warmup, floor=0.0)
    rng = random.Random(config.seed)
    deadline = time.time() + config.minutes * 60
    started = time.time()
    history: list[dict] = []
    order: list[int] = []
    step = 0
    model.train()
    while step < total_steps and time.time() < deadline:
        if not order:
            order = list(range(len(train_groups)))
            rng.shuffle(order)
        batch, order = [train_groups[i] for i in order[: config.batch]], order[config.batch :]
        negatives = [n for g in batch for n in rng.sample(g.negatives, min(config.hard_negatives, len(g.negatives)))]
        questions = embed([g.question for g in batch])
        passages = embed([g.positive for g in batch] + negatives)
        logits = questions @ passages.T * config.scale
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        take_step(loss, model, optimiser, scheduler)
        step += 1
        if step % 10 == 0:
            log.info("step %d/%d loss %.4f (%.0f s)", step, total_steps, float(loss), time.time() - started)
        if step % config.eval_every == 0 or step == total_steps:
            metrics = evaluate() | {"step": step, "seconds": round(time.time() - started)}
            history.append(metrics)
            log.info("validation at step %d: %s", step, metrics)
    if not history or history[-1]["step"] != step:
        history.append(evaluate() | {"step": step, "seconds": round(time.time() - started)})
    record = {
        **run_record(config, train_groups, valid_groups, step, started),
        "baseline": baseline,
        "final": history[-1],
        "history": history,
    }
    save(model, out_dir, record)
    return record


def save(model, out_dir: Path, record: dict) -> None:
    """Write the model in half precision with its record, replacing `out_dir` whole."""
    tmp = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.max_seq_length = 256  # what the index embeds with
    model.half()
    model.save(str(tmp), safe_serialization=True)
    model.float()
    (tmp / "README.md").unlink(missing_ok=True)  # the library's generated card, with nothing of this model
    (tmp / "training.json").write_text(json.dumps(record, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
