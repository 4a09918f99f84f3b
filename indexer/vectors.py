"""The dense index: FAISS inner product over normalised vectors (so scores are cosines).

Small indexes are exact (`Flat`); from `HNSW_THRESHOLD` vectors up, HNSW trades a sliver of recall for
a search time that barely grows with size (bench/answer_latency.py measures both).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
_FILE = "dense.faiss"


def build(vectors: np.ndarray, kind: str = "auto"):
    """A FAISS index over `vectors` (row i is chunk i). `kind`: auto, flat or hnsw."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    if kind == "auto":
        kind = "hnsw" if len(vectors) >= HNSW_THRESHOLD else "flat"
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}: use auto, flat or hnsw")
    if len(vectors):
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building: every core
        index.add(vectors)
    return index


def save(index, directory: Path) -> None:
    """Write the index into a version folder."""
    import faiss

    faiss.write_index(index, str(directory / _FILE))


def load(directory: Path):
    """Read the index, memory-mapped, and set its search-time parameters."""
    import faiss

    index = faiss.read_index(str(directory / _FILE), faiss.IO_FLAG_MMAP_IFC)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    # Searching one question at a time gains nothing from OpenMP threads, and they fight the embedding
    # model's threads for the cores (bench/answer_latency.py: p95 at 10k chunks 24.5 ms -> 5.8 ms).
    faiss.omp_set_num_threads(1)
    return index


def search_params(index, allowed: np.ndarray):
    """FAISS search parameters that return only chunks whose `allowed` flag is set (filtered during the
    search, not after it). The parameters keep the bitmap and selector they point at alive."""
    import faiss

    bitmap = np.packbits(allowed.astype(np.uint8), bitorder="little")
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
    if hasattr(index, "hnsw"):
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=HNSW_EF_SEARCH)
    else:
        params = faiss.SearchParameters(sel=selector)
    params.keep_alive = (bitmap, selector)  # SWIG does not own them: without this they would be freed
    return params


def kind_of(index) -> str:
    """'hnsw' or 'flat', for reports."""
    return "hnsw" if hasattr(index, "hnsw") else "flat"
