"""Keyword search over chunks: BM25 (bm25s) with English stemming and stop words.

The tokenizer's vocabulary is saved with each index version so a query is tokenized exactly as the
chunks were.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from cachetools import LRUCache

from indexer.spelling import is_english_word, other_spellings
from indexer.text import KEYWORD_STOP_WORDS

_TOKENIZER_DIR = "tokenizer"
_INDEX_DIR = "bm25"


def _quiet() -> None:
    # bm25s sets its own logger to DEBUG on import, which floods any application log.
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _tokenizer():
    import bm25s

    _quiet()
    import Stemmer

    return bm25s.tokenization.Tokenizer(lower=True, stopwords=KEYWORD_STOP_WORDS, stemmer=Stemmer.Stemmer("english"))


class KeywordIndex:
    """A BM25 index over chunk texts, in chunk-id order."""

    def __init__(self, retriever, tokenizer, size: int) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self._stopwords = frozenset(tokenizer.stopwords or ())
        self._vocabulary: list[str] | None = None
        # misspelt stem -> the content's stem (or None); the least recently used goes first when full
        self._nearest_cache: LRUCache[str, int | None] = LRUCache(maxsize=10_000)
        self._nearest_lock = threading.Lock()  # questions are answered on several threads
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

    def query_terms(self, query: str, *, fuzzy: bool = True) -> list[int]:
        """Vocabulary ids of the query's terms that occur in the content (see `resolve`); unknown terms
        dropped."""
        return [sid for sid in self.resolve(self.words(query), fuzzy=fuzzy) if sid is not None]

    def passage_terms(self, texts: Sequence[str]) -> list[list[int]]:
        """Vocabulary ids of each text's terms, for content (taken as written: no fuzzy matching); a word
        is stemmed once per call however often it occurs (pages repeat their words)."""
        memo: dict[str, int | None] = {}
        out = []
        for text in texts:
            ids = []
            for word in self.words(text):
                if word not in memo:
                    memo[word] = self.resolve([word], fuzzy=False)[0]
                if (sid := memo[word]) is not None:
                    ids.append(sid)
            out.append(ids)
        return out

    def words(self, text: str) -> list[str]:
        """The text's words as the index's tokenizer splits them, without its stop words (not stemmed)."""
        stop = self._stopwords
        return [w for w in self._tokenizer.splitter(text.lower()) if w not in stop]

    def resolve(self, words: Sequence[str], *, fuzzy: bool = True) -> list[int | None]:
        """Each word's vocabulary id (of its stem), or None when the content never uses it.

        People type fast in Slack: unless `fuzzy` is off, a word the content does not know, of five
        letters or more, counts as the content's word one edit away ("pasword", "accross"; two edits
        from eight letters on), the most common one when several are. Shorter words are taken as
        written: too many are one edit from each other. So is an English word ("bereavement" is not
        "break"), unless the content uses it in its other spelling ("tire" for "tyre"): see `spelling`.
        """
        stems, stemmer = self._tokenizer.stem_to_sid, self._tokenizer.stemmer
        stem_of = stemmer or (lambda word: word)
        out: list[int | None] = []
        for word in words:
            sid = stems.get(stem_of(word))
            if sid is None and fuzzy:
                if is_english_word(word):
                    sid = next((stems[s] for s in map(stem_of, other_spellings(word)) if s in stems), None)
                elif len(word) >= 5:
                    sid = self._nearest(stem_of(word), 1 if len(word) < 8 else 2)
            out.append(sid)
        return out

    def _nearest(self, stem: str, max_edits: int) -> int | None:
        with self._nearest_lock:
            if stem in self._nearest_cache:
                return self._nearest_cache[stem]
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        if self._vocabulary is None:
            self._vocabulary = list(self._tokenizer.stem_to_sid)
        found = process.extract(stem, self._vocabulary, scorer=Levenshtein.distance, score_cutoff=max_edits, limit=8)
        stems, frequency = self._tokenizer.stem_to_sid, self.document_frequency
        sid = stems[min(found, key=lambda f: (f[1], -frequency(stems[f[0]])))[0]] if found else None
        with self._nearest_lock:
            self._nearest_cache[stem] = sid
        return sid

    def document_frequency(self, sid: int) -> int:
        """How many chunks contain the term."""
        indptr = self._retriever.scores["indptr"]
        return int(indptr[sid + 1] - indptr[sid])

    def idf(self, sid: int) -> float:
        """The term's inverse document frequency over chunks (BM25's), as `coverage_by_document` weighs it."""
        n = max(1, int(self._retriever.scores["num_docs"]))
        df = self.document_frequency(sid)
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def coverage_by_document(self, words: Sequence[str], starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """How much of the question each document contains (document i's chunks are `starts[i]` ..
        `starts[i] + counts[i] - 1`): the IDF-weighted share of `words` found in any of its chunks. A
        word the content never uses weighs the most, so "parental leave" against a holiday page scores
        low even though "leave" matches."""
        starts = np.asarray(starts, dtype=np.int64)
        ends = starts + np.asarray(counts, dtype=np.int64)
        result = np.zeros(len(starts), dtype=np.float64)
        if not words or not len(starts):
            return result
        matrix = self._retriever.scores
        indptr, indices, n = matrix["indptr"], matrix["indices"], max(1, int(matrix["num_docs"]))
        unknown_idf = float(np.log(1 + (n + 0.5) / 0.5))
        total = 0.0
        for sid in self.resolve(words):
            if sid is None:
                total += unknown_idf
                continue
            postings = indices[indptr[sid] : indptr[sid + 1]]  # sorted chunk ids
            idf = self.idf(sid)
            total += idf
            # The first chunk at or after each document's start: inside the document, or not there.
            first = np.searchsorted(postings, starts)
            inside = first < len(postings)
            inside[inside] = postings[first[inside]] < ends[inside]
            result[inside] += idf
        return result / total if total else result

    def known_share(self, words: Sequence[str]) -> float:
        """The share of `words` the content uses (misspellings counted as the word meant)."""
        if not words:
            return 0.0
        return sum(sid is not None for sid in self.resolve(words)) / len(words)

    def scores(self, query: str, *, fuzzy: bool = True) -> np.ndarray:
        """BM25 score of every chunk for the query (zeros when no term is known)."""
        return self.term_scores(self.query_terms(query, fuzzy=fuzzy))

    def term_scores(self, terms: list[int]) -> np.ndarray:
        """BM25 score of every chunk for the query terms `query_terms` found."""
        if not terms or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores_from_ids(terms), dtype=np.float32)

    def search(self, query: str, k: int, *, fuzzy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` chunk ids and their scores, best first; only chunks with a positive score."""
        scores = self.scores(query, fuzzy=fuzzy)
        if not scores.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, int((scores > 0).sum()))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]
