"""Find the best documents for a question: dense and keyword search, fused per document.

1. Candidates: the top chunks by cosine (FAISS) and by BM25, unioned.
2. Each candidate gets both scores (the cosine is computed exactly from the stored vectors, the BM25
   score from the keyword index), so a chunk found by one method is judged by both.
3. Documents: a document's dense and keyword scores are those of its best chunk for each, and its
   coverage is the IDF-weighted share of the question's words found anywhere in it. Documents are
   ranked by a weighted sum: cosine + keyword_weight * BM25 / (the question's best BM25) +
   coverage_weight * coverage, the weights chosen on the eval set's dev split (`moment eval
   --calibrate`). One result per document.
4. Confidence: a logistic model over a few features of the top result (its cosine, its keyword
   score, its coverage, how much of the question the content's vocabulary knows, whether both
   methods agree; with the reader, its logit, and not the keyword score and coverage: see
   `calibrating.READER_FEATURES`),
   fitted on questions with and without an answer (`moment eval --calibrate`, stored in
   `calibration.json`). "Answered" means confidence >= the calibrated threshold.
5. Look-ups (`assistant.answering.lookup`): when the question names a code or size of the form a table on the first
   page is keyed by, the row named is the passage and the question is answered; a key the page does not
   have declines it (the page is still offered as possibly related).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.answering.lead import apply_lead
from assistant.answering.lookup import Lookup, lookup, question_keys
from assistant.answering.reader.reading import PassageReader, sigmoid
from indexer.documents import Chunk
from indexer.embedding import Embedder
from indexer.store import ChunkFilter, IndexedDocument, IndexStore, IndexVersion
from indexer.text import STOP_WORDS

if TYPE_CHECKING:
    from assistant.access.audiences import Viewer

# The calibrations shipped in the package; a data folder's own (`moment eval --calibrate`) wins.
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
# The calibration used when the reader is on (its weight in the page order, its confidence feature).
READER_CALIBRATION_FILE = Path(__file__).with_name("calibration-reader.json")


def calibration_file(home: Path | None = None, *, reader: bool = False) -> Path:
    """The calibration in force: the data folder's (`<home>/calibration.json`, or `calibration-reader.json`
    with the reader on) when it has one, else the one shipped in the package."""
    packaged = READER_CALIBRATION_FILE if reader else CALIBRATION_FILE
    own = Path(home) / packaged.name if home is not None else None
    return own if own is not None and own.exists() else packaged


class CalibrationError(Exception):
    """A calibration file is missing or unreadable; the message names it and says how to make it."""


class IndexMismatchError(Exception):
    """The index was built with another model than the one configured; the message says what to do."""


@dataclass(frozen=True)
class RetrievalParams:
    """How retrieval fuses and decides; the defaults are the values chosen on the eval set."""

    candidates: int = 50
    keyword_weight: float = 0.1  # times BM25 / the best BM25 for the question
    coverage_weight: float = 0.15  # times the document's coverage of the question's words
    # Logistic confidence: sigmoid(bias + sum(weights[f] * feature[f])).
    weights: dict[str, float] = field(
        default_factory=lambda: {"cosine": 12.0, "keyword": 1.0, "known_terms": 2.0, "agreement": 0.5}
    )
    bias: float = -8.0
    threshold: float = 0.5
    related_threshold: float = 0.2  # below this, not even "possibly related"
    reader_weight: float = 0.0  # times the reader's probability for a page's best passage (reader on)
    reader_prior_weight: float = 0.0  # a passage's score: the reader's logit + this times its retrieval prior

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> RetrievalParams:
        """The calibrated parameters. A missing or corrupt file is an error, never a silent fall back to
        the defaults: those are not calibrated, and answers and confidences would quietly change."""
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise CalibrationError(
                f"The calibration file {path} is missing: reinstall Moment, or make one in the data folder with "
                "`moment eval content/eval/questions.jsonl --split dev --calibrate` (with MOMENT_READER=off for "
                "retrieval alone's)."
            ) from None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise CalibrationError(f"The calibration file {path} is unreadable ({exc}).") from None

    @classmethod
    def calibrated(cls, home: Path | None = None, *, reader: bool = False) -> RetrievalParams:
        """The parameters in force for a data folder (`calibration_file`)."""
        return cls.load(calibration_file(home, reader=reader))

    @classmethod
    def from_dict(cls, data: dict) -> RetrievalParams:
        """Parameters from a calibration (keys that are not parameters, such as its provenance, ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class DocumentHit:
    """One document's best match for a question."""

    doc: IndexedDocument
    chunk_id: int
    score: float  # fused
    cosine: float
    keyword: float  # BM25 of the document's best keyword chunk
    coverage: float  # IDF-weighted share of the question's words found in the document
    dense_rank: int | None
    keyword_rank: int | None
    chunk: Chunk | None = None
    passage: str | None = None  # the passage the reader chose (reader on); else composed from `chunk`
    reader_logit: float | None = None
    windows: list | None = None  # the page's windows as the reader scored them (`reading.Window`), when read


@dataclass
class SearchResult:
    """Ranked documents, with the confidence that the first one answers the question."""

    hits: list[DocumentHit]
    confidence: float
    features: dict[str, float]
    version: str
    query_vector: np.ndarray | None = None
    query_terms: list[int] = field(default_factory=list)
    # Where the time went, ms: audience (the asker's groups and what they may not see), embed, dense, keyword,
    # fuse (coverage, order, passages), read (the reader).
    timings: dict[str, float] = field(default_factory=dict)
    # The first page read as a look-up table (`assistant.answering.lookup`), when the question names a key of its form.
    lookup: Lookup | None = None
    # Whom the search was filtered for (None: the index has no restricted documents, or nobody asked).
    viewer: Viewer | None = None
    hidden_documents: int = 0  # restricted documents left out for the viewer


class Retriever:
    """Searches the serving index version and picks up newly published versions by itself."""

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        params: RetrievalParams | None = None,
        reload_interval: float = 1.0,
        reader: PassageReader | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.reader = reader
        self.params = params or RetrievalParams.load(READER_CALIBRATION_FILE if reader else CALIBRATION_FILE)
        self.reload_interval = reload_interval
        self._version: IndexVersion | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._hidden: dict[tuple, tuple[tuple[int, ...], ChunkFilter | None]] = {}
        self._people: dict[str, frozenset[str]] = {}  # per version: the people audiences name one by one

    def version(self) -> IndexVersion:
        """The serving version; re-reads CURRENT at most once per `reload_interval` seconds."""
        now = time.monotonic()
        if self._version is not None and now - self._checked < self.reload_interval:
            return self._version
        with self._lock:
            current = self.store.current()
            if self._version is None or (current is not None and current != self._version.version):
                version = self.store.open()
                if version.spec != self.embedder.spec:
                    raise IndexMismatchError(
                        f"The index in {self.store.root} was built with {version.spec.describe()}, but Moment is "
                        f"configured for {self.embedder.spec.describe()}. Rebuild it with `moment index --full`, or "
                        "set MOMENT_EMBEDDING_MODEL / MOMENT_EMBEDDING_BACKEND to match."
                    )
                self._version = version
            self._checked = now
            return self._version

    def search(
        self,
        query: str,
        k: int = 10,
        types: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        viewer: Viewer | Callable[[], Viewer] | None = None,
        *,
        query_vector: np.ndarray | None = None,
        read: bool = True,
    ) -> SearchResult:
        """Rank documents for `query`; `types` and `tags` restrict which documents may be returned.

        `viewer` (or a function giving it, called only when the index has restricted documents): whoever
        will see the answer; documents with an audience they are not in are left out before ranking, on
        both the dense and the keyword side, so they take no place among the candidates. None: no audience
        filtering (evaluation and benchmarks over the whole index). `query_vector`: the question already
        embedded (`SearchResult.query_vector`); `read` False: rank without the reader."""
        version = self.version()
        p = self.params
        clock = _Clock()
        chunk_filter = None
        hidden: tuple[int, ...] = ()
        if viewer is not None and version.restricted:
            viewer = viewer() if callable(viewer) else viewer
            hidden, chunk_filter = self._hidden_for(version, viewer)
        elif viewer is not None:
            viewer = None  # nothing restricted: nobody's groups were needed
        clock.lap("audience")
        qvec = self.embedder.encode([query]) if query_vector is None else query_vector.reshape(1, -1)
        clock.lap("embed")
        n = version.size
        allowed = _allowed_docs(version, types, tags)
        pool = min(n, p.candidates * (4 if allowed is not None else 1))
        dense_ids: np.ndarray = np.zeros(0, dtype=np.int64)
        if pool:
            if chunk_filter is None:
                _, found = version.dense.search(qvec, pool)
            else:
                _, found = version.dense.search(qvec, pool, params=chunk_filter.search_params)
            dense_ids = found[0][found[0] >= 0].astype(np.int64)
        clock.lap("dense")
        terms = version.keywords.query_terms(query)
        keyword_scores = version.keywords.term_scores(terms)
        if chunk_filter is not None and len(chunk_filter.hidden_ids):
            keyword_scores = keyword_scores.copy()
            keyword_scores[chunk_filter.hidden_ids] = 0.0
        keyword_ids = _top(keyword_scores, pool)
        clock.lap("keyword")
        ids = np.unique(np.concatenate([dense_ids, keyword_ids]))
        if chunk_filter is not None:
            ids = chunk_filter.keep(ids)  # the selector already did this; a hidden chunk must never slip through
        if allowed is not None and len(ids):
            ids = ids[np.isin(np.asarray(version.chunk_doc)[ids], allowed)]
        if not len(ids):
            return SearchResult(
                [], 0.0, {}, version.version, qvec[0], terms, clock.laps, viewer=viewer, hidden_documents=len(hidden)
            )
        cosines = np.asarray(version.embeddings[ids]) @ qvec[0]
        bm25 = keyword_scores[ids]
        docs = np.asarray(version.chunk_doc)[ids]

        # Per document: its best chunk by each method.
        best_dense: dict[int, tuple[float, int]] = {}
        best_keyword: dict[int, tuple[float, int]] = {}
        for cid, doc, cos, kw in zip(ids.tolist(), docs.tolist(), cosines.tolist(), bm25.tolist(), strict=True):
            if doc not in best_dense or cos > best_dense[doc][0]:
                best_dense[doc] = (cos, cid)
            if kw > 0 and (doc not in best_keyword or kw > best_keyword[doc][0]):
                best_keyword[doc] = (kw, cid)
        dense_order = sorted(best_dense, key=lambda d: -best_dense[d][0])
        keyword_order = sorted(best_keyword, key=lambda d: -best_keyword[d][0])
        dense_rank = {d: r for r, d in enumerate(dense_order)}
        keyword_rank = {d: r for r, d in enumerate(keyword_order)}
        top_keyword = max((s for s, _ in best_keyword.values()), default=0.0)
        words = [w for w in version.keywords.words(query) if w not in STOP_WORDS]
        candidates = [version.documents[d] for d in dense_order]
        shares = version.keywords.coverage_by_document(
            words, np.array([d.chunk_start for d in candidates]), np.array([d.chunk_count for d in candidates])
        )
        coverage = dict(zip(dense_order, shares.tolist(), strict=True))
        hits = []
        for doc in best_dense:
            keyword = best_keyword.get(doc, (0.0, -1))[0]
            score = (
                best_dense[doc][0]
                + p.keyword_weight * (keyword / top_keyword if top_keyword else 0.0)
                + p.coverage_weight * coverage[doc]
            )
            # The passage to show: the keyword chunk when both methods found the document near the top
            # and the keyword chunk is nearly as close in meaning; else the closest chunk in meaning.
            chunk_id = best_dense[doc][1]
            if doc in best_keyword and best_keyword[doc][1] != chunk_id:
                kw_chunk = best_keyword[doc][1]
                kw_cos = float(cosines[np.searchsorted(ids, kw_chunk)])
                if kw_cos >= best_dense[doc][0] - 0.05:
                    chunk_id = kw_chunk
            hits.append(
                DocumentHit(
                    doc=version.documents[doc],
                    chunk_id=chunk_id,
                    score=score,
                    cosine=best_dense[doc][0],
                    keyword=keyword,
                    coverage=float(coverage[doc]),
                    dense_rank=dense_rank[doc],
                    keyword_rank=keyword_rank.get(doc),
                )
            )
        hits.sort(key=lambda h: (-h.score, -h.cosine))
        hits = hits[:k]
        chunks = version.chunks([h.chunk_id for h in hits])
        for hit in hits:
            hit.chunk = chunks[hit.chunk_id].chunk
        clock.lap("fuse")
        if self.reader is not None and read:
            self._read(query, hits, version, qvec[0], terms)
            if hits:
                apply_lead(hits[0], version)  # a safety procedure's lead section, when the passage is uncertain
            clock.lap("read")
        features = confidence_features(words, hits, version.keywords)
        confidence = self._confidence(features)
        look = self._lookup(query, hits[0], version) if hits else None
        if look is not None:
            features["lookup"] = 1.0 if look.found else -1.0
            confidence = look.confidence(confidence, p.threshold, p.related_threshold)
        return SearchResult(
            hits,
            confidence,
            features,
            version.version,
            qvec[0],
            terms,
            clock.laps,
            lookup=look,
            viewer=viewer,
            hidden_documents=len(hidden),
        )

    def _hidden_for(self, version: IndexVersion, viewer: Viewer) -> tuple[tuple[int, ...], ChunkFilter | None]:
        """The restricted documents `viewer` may not see and the filter that keeps their chunks out, remembered
        per index version and set of groups (people in the same groups share them; an index may restrict
        thousands of documents, and the look-up costs one hash of the groups, not a pass over them)."""
        # People named one by one (synced sources' sharing) see more than their groups: they get their own entry.
        named = self._people.get(version.version)
        if named is None:
            named = frozenset(n for a in version.restricted.values() for n in a if n[:1] in "UW" and n.isupper())
            self._people = {version.version: named}
        key = (version.version, viewer.known, viewer.groups, viewer.user_id if viewer.user_id in named else None)
        found = self._hidden.get(key)
        if found is None:
            hidden = tuple(n for n, audience in version.restricted.items() if not viewer.may_see(audience))
            found = (hidden, version.chunk_filter(hidden))
            if len(self._hidden) >= 1024:
                self._hidden.clear()
            self._hidden[key] = found
        return found

    def _read(self, query: str, hits: list[DocumentHit], version: IndexVersion, qvec, terms) -> None:
        """Let the reader choose the passages of the top pages and weigh in on their order."""
        keywords = version.keywords
        self.reader.read(
            query,
            hits,
            version,
            qvec,
            terms,
            keywords.passage_terms,
            reader_weight=self.params.reader_weight,
            prior_weight=self.params.reader_prior_weight,
        )

    @staticmethod
    def _lookup(query: str, hit: DocumentHit, version: IndexVersion) -> Lookup | None:
        """The first page read as a look-up table (`assistant.answering.lookup`): a row the question names becomes its
        passage. Costs nothing for a question that names no code or size (most)."""
        if not question_keys(query):
            return None
        ids = list(range(hit.doc.chunk_start, hit.doc.chunk_start + hit.doc.chunk_count))
        stored = version.chunks(ids)
        chunks = [stored[i].chunk for i in ids]
        look = lookup(query, chunks)
        if look is not None and look.found:
            hit.chunk_id = ids[chunks.index(look.chunk)]
            hit.chunk = look.chunk
            hit.passage = look.passage
        return look

    def _confidence(self, features: dict[str, float]) -> float:
        return confidence_of(features, self.params.weights, self.params.bias)

    def rescore(self, query: str, hits: list[DocumentHit]) -> tuple[dict[str, float], float]:
        """The confidence features and confidence of `hits` as they now stand (after a passage or page was set
        aside, `assistant.answering.demotions`), computed as `search` computes them."""
        keywords = self.version().keywords
        words = [w for w in keywords.words(query) if w not in STOP_WORDS]
        features = confidence_features(words, hits, keywords)
        return features, self._confidence(features)


class _Clock:
    """Milliseconds between laps."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = (now - self._last) * 1000
        self._last = now


def confidence_of(features: dict[str, float], weights: dict[str, float], bias: float) -> float:
    """The calibrated logistic model's confidence: sigmoid(bias + the weighted features; a feature without a
    weight counts for nothing)."""
    return sigmoid(bias + sum(weight * features.get(name, 0.0) for name, weight in weights.items()))


def reader_feature(logit: float) -> float:
    """The reader's logit for the first passage as a confidence feature: clipped to ±10 and scaled to [-1, 1]
    like the others."""
    return max(-10.0, min(10.0, logit)) / 10.0


def confidence_features(words: list[str], hits: list[DocumentHit], keywords) -> dict[str, float]:
    """What the confidence is computed from (`words`: the question's content words); all in [0, 1] or close."""
    if not hits:
        return {"cosine": 0.0, "keyword": 0.0, "known_terms": 0.0, "agreement": 0.0, "margin": 0.0, "coverage": 0.0}
    top = hits[0]
    known = keywords.known_share(words)
    second = hits[1].cosine if len(hits) > 1 else 0.0
    # The reader's logit, not its probability: the confidence is a logistic model, and log-odds add up where
    # probabilities saturate (near-miss AUC on the held-out development set without every 4th gold page
    # 0.723 -> 0.746, demo dev 0.807 -> 0.813, recalibrated on the same sets).
    read = {} if top.reader_logit is None else {"reader": reader_feature(top.reader_logit)}
    return {
        **read,
        "cosine": top.cosine,
        # BM25 grows with the number of matched terms: squash it per query term into [0, 1).
        "keyword": 1.0 - math.exp(-top.keyword / max(1.0, len(words))),
        "known_terms": min(1.0, known),
        "agreement": 1.0 if top.dense_rank == 0 and top.keyword_rank == 0 else 0.0,
        "margin": max(0.0, top.cosine - second),
        # The share (IDF-weighted) of the question's words found in the best document: low when the
        # question's key word appears nowhere in it.
        "coverage": top.coverage,
    }


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    positive = int((scores > 0).sum())
    k = min(k, positive)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top.astype(np.int64)


def _allowed_docs(version: IndexVersion, types: Sequence[str] | None, tags: Sequence[str] | None) -> np.ndarray | None:
    if not types and not tags:
        return None
    wanted_types = {t.lower() for t in types or ()}
    wanted_tags = {t.lower() for t in tags or ()}
    return np.array(
        [
            d.number
            for d in version.documents
            if (not wanted_types or d.meta.type in wanted_types) and (not wanted_tags or wanted_tags & set(d.meta.tags))
        ],
        dtype=np.int32,
    )
