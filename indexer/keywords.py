"""Keyword search over chunks: BM25 (bm25s) with English stemming and stop words.

The tokenizer's vocabulary is saved with each index version so a query is tokenized exactly as the
chunks were.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_TOKENIZER_DIR = "tokenizer"
_INDEX_DIR = "bm25"


def _quiet() -> None:
    # bm25s sets its own logger to DEBUG on import, which floods any application log.
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _tokenizer():
    import bm25s

    _quiet()
    import Stemmer

    return bm25s.tokenization.Tokenizer(lower=True, stopwords="en", stemmer=Stemmer.Stemmer("english"))


class KeywordIndex:
    """A BM25 index over chunk texts, in chunk-id order."""

    def __init__(self, retriever, tokenizer, size: int) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        """Index texts (chunk i is text i)."""
        import bm25s

        tokenizer = _tokenizer()
        ids = tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=False)
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(ids, show_progress=False)
        return cls(retriever, tokenizer, len(texts))

    def save(self, directory: Path) -> None:
        """Write the index and the tokenizer's vocabulary under `directory`."""
        self._retriever.save(str(directory / _INDEX_DIR), show_progress=False)
        self._tokenizer.save_vocab(str(directory / _TOKENIZER_DIR))
        self._tokenizer.save_stopwords(str(directory / _TOKENIZER_DIR))

    @classmethod
    def load(cls, directory: Path, size: int) -> KeywordIndex:
        """Load what `save` wrote; the score matrix is memory-mapped."""
        import bm25s

        retriever = bm25s.BM25.load(str(directory / _INDEX_DIR), mmap=True, show_progress=False)
        tokenizer = _tokenizer()
        tokenizer.load_vocab(str(directory / _TOKENIZER_DIR))
        tokenizer.load_stopwords(str(directory / _TOKENIZER_DIR))
        return cls(retriever, tokenizer, size)

    def query_terms(self, query: str) -> list[int]:
        """Vocabulary ids of the query's terms that occur in the content (unknown terms dropped)."""
        ids = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
        return [i for i in ids if i is not None]

    def coverage(self, words: Sequence[str], first_chunk: int, chunk_count: int) -> float:
        """How much of the question the chunks `first_chunk`..+`chunk_count` (one document) contain: the
        IDF-weighted share of `words` whose stem occurs there. A word the content never uses weighs the
        most, so "parental leave" against a holiday page scores low even though "leave" matches."""
        if not words:
            return 0.0
        matrix = self._retriever.scores
        indptr, indices, n = matrix["indptr"], matrix["indices"], max(1, int(matrix["num_docs"]))
        stemmer, stems = self._tokenizer.stemmer, self._tokenizer.stem_to_sid
        unknown_idf = float(np.log(1 + (n + 0.5) / 0.5))
        total = present = 0.0
        for word in words:
            sid = stems.get(stemmer(word) if stemmer else word)
            if sid is None:
                total += unknown_idf
                continue
            postings = indices[indptr[sid] : indptr[sid + 1]]
            df = len(postings)
            idf = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
            total += idf
            if np.any((postings >= first_chunk) & (postings < first_chunk + chunk_count)):
                present += idf
        return present / total if total else 0.0

    def known_share(self, words: Sequence[str]) -> float:
        """The share of `words` whose stem occurs anywhere in the content."""
        if not words:
            return 0.0
        stemmer, stems = self._tokenizer.stemmer, self._tokenizer.stem_to_sid
        return sum((stemmer(w) if stemmer else w) in stems for w in words) / len(words)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query (zeros when no term is known)."""
        terms = self.query_terms(query)
        if not terms or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores_from_ids(terms), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` chunk ids and their scores, best first; only chunks with a positive score."""
        scores = self.scores(query)
        if not scores.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, int((scores > 0).sum()))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]
