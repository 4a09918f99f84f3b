"""Grouping questions by meaning, and naming the groups: the pure part of content gaps (no database).

`clusters` groups embedded questions with scikit-learn's `AgglomerativeClustering` (average linkage, a cosine
distance threshold); `nearest` finds each question's closest gap centroid; `label_clusters` names each group
by its top terms by class-based TF-IDF (scikit-learn's `CountVectorizer` and `TfidfTransformer`, Moment's stop
words from `indexer.text`). The thresholds were tuned on tests/gap_questions.py: paraphrases of one topic
were at least 0.43 apart on average (cosine), different topics at most 0.42.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import numpy as np

from indexer.text import content_words

# A new question joins the nearest gap whose centroid is at least this close (cosine); questions that join no
# gap are clustered together, merging groups while their average cosine distance stays under the threshold.
JOIN_SIMILARITY = 0.55
CLUSTER_DISTANCE = 0.55
# A term labels a gap when at least this share of its questions use it; else its most central question does.
LABEL_TERM_SHARE = 0.5
LABEL_TERMS = 3
LABEL_CHARS = 120


def nearest(vectors: np.ndarray, centroids: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's nearest centroid (float32 bytes; its index, -1 when there is none) and its cosine."""
    if not centroids:
        return np.full(len(vectors), -1), np.zeros(len(vectors), dtype=np.float32)
    centroids = np.stack([np.frombuffer(c, dtype=np.float32) for c in centroids])
    similarity = vectors @ centroids.T
    nearest = similarity.argmax(axis=1)
    return nearest, similarity[np.arange(len(vectors)), nearest]


def clusters(vectors: np.ndarray) -> list[list[int]]:
    """Groups of rows that mean the same: agglomerative clustering, average linkage, cosine distance, merging
    while the average distance between two groups stays within `CLUSTER_DISTANCE`. The same partition as
    scikit-learn's `AgglomerativeClustering(metric="cosine", linkage="average", distance_threshold=...)`,
    which hands SciPy's `linkage` distances it computes one pair at a time in a single thread (18 of its 28 s
    on 10,000 questions, bench/gaps.py); here they come from matrix products of the normalised vectors."""
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(cosine_distances(vectors), method="average")
    labels = fcluster(tree, t=CLUSTER_DISTANCE, criterion="distance")
    groups: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        groups[int(label)].append(row)
    return sorted(groups.values(), key=lambda rows: rows[0])


def cosine_distances(vectors: np.ndarray, block: int = 1024) -> np.ndarray:
    """The condensed matrix of cosine distances (SciPy's `pdist` order: row i's distances to rows i+1..n-1, for
    each i) of normalised vectors, a block of rows at a time (memory: the n(n-1)/2 distances, not n²)."""
    n = len(vectors)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    out = np.empty(n * (n - 1) // 2, dtype=np.float64)
    at = 0
    for start in range(0, n - 1, block):
        similarity = x[start : start + block] @ x[start:].T
        for row in range(similarity.shape[0]):
            rest = similarity[row, row + 1 :]
            out[at : at + len(rest)] = 1.0 - rest
            at += len(rest)
    np.clip(out, 0.0, 2.0, out=out)  # rounding may leave a hair below 0 for equal vectors
    return out


def centroid(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0) if len(vectors) else np.zeros(1, dtype=np.float32)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm else mean).astype(np.float32)


def label_clusters(clusters: list[list[str]]) -> list[str | None]:
    """Each cluster's top terms (words and two-word phrases) by class-based TF-IDF: how many of its questions
    use a term, weighed by how few of the other clusters do (scikit-learn's `TfidfTransformer` over the
    clusters' term counts, Moment's stop words left out). None for a cluster no term labels: one question,
    or no term shared by `LABEL_TERM_SHARE` of its questions.

    >>> label_clusters([["parental leave weeks", "how long is parental leave"], ["reset vpn token"]])
    ['parental leave', None]
    """
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    if not clusters:
        return []
    texts = [q for cluster in clusters for q in cluster]
    vectorizer = CountVectorizer(analyzer=_terms, binary=True)
    try:
        per_question = vectorizer.fit_transform(texts)  # questions x terms, 1 if the question uses it
    except ValueError:  # no term in any question
        return [None] * len(clusters)
    owner = np.repeat(np.arange(len(clusters)), [len(c) for c in clusters])
    membership = csr_matrix((np.ones(len(texts)), (owner, np.arange(len(texts)))), shape=(len(clusters), len(texts)))
    counts = (membership @ per_question).tocsr()  # clusters x terms: questions using each term
    weights = TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()
    names = vectorizer.get_feature_names_out()
    labels: list[str | None] = []
    for c, cluster in enumerate(clusters):
        if len(cluster) < 2:
            labels.append(None)
            continue
        row = weights.getrow(c)
        ranked = sorted(zip(row.indices, row.data, strict=True), key=lambda t: (-t[1], names[t[0]]))
        uses = {names[i]: counts[c, i] for i, _ in ranked if counts[c, i] >= max(2, LABEL_TERM_SHARE * len(cluster))}
        chosen: list[str] = []
        for term in uses:
            # A phrase as shared as its word reads better ("parental leave", not "leave · parental").
            phrases = [p for p in uses if " " in p and term in p.split() and uses[p] >= uses[term]]
            term = max(phrases, key=uses.__getitem__) if phrases else term
            overlap = [kept for kept in chosen if set(term.split()) & set(kept.split())]
            if not overlap:
                chosen.append(term)
            elif " " in term and all(" " not in kept for kept in overlap):  # the phrase takes its words' place
                chosen = [term if kept == overlap[0] else kept for kept in chosen if kept not in overlap[1:]]
            if len(chosen) == LABEL_TERMS:
                break
        labels.append(" · ".join(chosen) or None)
    return labels


def _terms(text: str) -> list[str]:
    """A question's words without Moment's stop words, and its two-word phrases (each once)."""
    words = content_words(text)
    return list(dict.fromkeys([*words, *(f"{a} {b}" for a, b in pairwise(words))]))


def shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rsplit(" ", 1)[0] + "…"
