"""The reader at run time: a small cross-encoder on onnxruntime that scores (question, passage) pairs.

It reads question and passage together, so it can tell the section that answers from its siblings
on the same page, and from pages that are merely about the same thing. Its weights ship with the
package (`assistant/answering/reader/model/`, made by `moment model train-reader`); only onnxruntime and
tokenizers are needed to run it.

    >>> reader = load_reader()
    >>> reader.score("how do i reset my vpn token", ["VPN > Resync\\n1. Open NW-Key ...", "..."])
    array([ 3.1, -2.4], dtype=float32)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from indexer.inference import inference_slot, session_options, usable_cores

MODEL_DIR = Path(__file__).with_name("model")
MODEL_FILE = "reader.onnx"


class ReaderError(Exception):
    """The reader's files are missing or unreadable; the message names the file."""


class Reader:
    """Scores passages for a question; higher means more likely to answer it (a logit)."""

    def __init__(self, model_dir: Path = MODEL_DIR, threads: int | None = None) -> None:
        model_dir = Path(model_dir)
        config_file = model_dir / "reader.json"
        try:
            config = json.loads(config_file.read_text())
            self.max_length = int(config["max_length"])
            self.question_tokens = int(config["question_tokens"])
        except FileNotFoundError:
            raise ReaderError(f"The reader's settings file {config_file} is missing.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReaderError(f"The reader's settings file {config_file} is unreadable ({exc}).") from None
        self.record = config.get("training", {})
        # Trained with passages under their own heading too (`train-reader --own-headings`): read so in use.
        self.own_heading = bool(config.get("own_heading", False))
        self.path = model_dir / MODEL_FILE
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            # A read takes `threads` cores (the process's gate is sized for that) as `threads` pairs run at
            # once, one thread each: a pair is too small to share out well (8 windows: 33 / 42 ms median /
            # p95 this way against 43 / 56 ms with 2 threads per pair, one pair after the other).
            self.lanes = threads or min(4, usable_cores())
            options = session_options(self.lanes, spinning=False)
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for a bad file
            missing = [f for f in (self.path, model_dir / "tokenizer.json") if not f.is_file()]
            what = f"{missing[0]} is missing" if missing else f"{self.path} or its tokenizer is unreadable ({exc})"
            raise ReaderError(f"The reader cannot be loaded: {what}.") from None
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._pool_lock = threading.Lock()
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._cls = self.tokenizer.token_to_id("[CLS]")
        self._sep = self.tokenizer.token_to_id("[SEP]")
        self._inputs = {i.name for i in self.session.get_inputs()}

    def describe(self) -> str:
        # The shipped (int8) model's own validation figure when the record has it, else the checkpoint's.
        best = self.record.get("shipped") or self.record.get("best", {})
        layers = self.record.get("config", {}).get("layers", "?")
        return f"cross-encoder ({layers} layers, validation accuracy {best.get('accuracy', float('nan')):.2f})"

    def encode_pairs(self, question: str, passages: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids, mask and segment ids: [CLS] question [SEP] passage [SEP], the question cut to
        `question_tokens` word pieces and each passage trimmed to fit `max_length`."""
        q = self.tokenizer.encode(question, add_special_tokens=False).ids[: self.question_tokens]
        room = max(8, self.max_length - len(q) - 3)
        encoded = self.tokenizer.encode_batch(list(passages), add_special_tokens=False)
        rows = [[self._cls, *q, self._sep, *e.ids[:room], self._sep] for e in encoded]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        segments = np.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
            segments[i, len(q) + 2 : len(row)] = 1
        return ids, mask, segments

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One logit per passage (float32), each pair run on its own: the int8 model quantises its
        activations per run, so in a batch a passage's score moved with the other passages in it (by up to
        0.6 logits, enough to swap two windows); alone, a pair always scores the same, and without padding
        it costs no more. `lanes` pairs run at once, one thread each."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        ids, mask, segments = self.encode_pairs(question, passages)
        lengths = mask.sum(axis=1).tolist()
        out = np.empty(len(passages), dtype=np.float32)

        def run(i: int) -> None:
            n = lengths[i]
            feeds = {"input_ids": ids[i : i + 1, :n], "attention_mask": mask[i : i + 1, :n]}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = segments[i : i + 1, :n]
            out[i] = self.session.run(None, feeds)[0][0, 0]

        with inference_slot():
            if self.lanes > 1 and len(passages) > 1:
                list(self._pool().map(run, range(len(passages))))
            else:
                for i in range(len(passages)):
                    run(i)
        return out

    def _pool(self) -> ThreadPoolExecutor:
        # Made on first use in each process: threads do not survive a fork (gunicorn forks its workers after
        # loading the app), and a forked copy of a pool would wait for ever on threads that are not there.
        with self._pool_lock:
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.lanes, thread_name_prefix="moment-reader")
                self._executor_pid = os.getpid()
            return self._executor


class ReaderEnsemble:
    """Several readers read each pair; a passage's score is their mean logit (readers trained with other
    seeds or question styles err on different passages)."""

    def __init__(self, readers: list[Reader]) -> None:
        if len({r.own_heading for r in readers}) > 1:
            raise ReaderError("The readers of an ensemble must read windows alike (own_heading differs).")
        self.readers = readers
        self.own_heading = readers[0].own_heading
        self.record = readers[0].record

    def describe(self) -> str:
        return f"{len(self.readers)} readers, mean logit: " + "; ".join(r.describe() for r in self.readers)

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        return np.mean([r.score(question, passages) for r in self.readers], axis=0).astype(np.float32)


def load_reader(model_dir: Path | str | None = None, threads: int | None = None) -> Reader | ReaderEnsemble:
    """The shipped reader (or one from `model_dir`; several folders joined by `os.pathsep` make an
    ensemble); raises `ReaderError` with the file at fault."""
    dirs = [Path(d) for d in str(model_dir).split(os.pathsep) if d] if model_dir else [MODEL_DIR]
    if len(dirs) == 1:
        return Reader(dirs[0], threads=threads)
    return ReaderEnsemble([Reader(d, threads=threads) for d in dirs])
