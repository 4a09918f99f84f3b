"""Words that say nothing about a topic, in one place: the stop words of questions and passages.

Two lists, for two jobs:
- `STOP_WORDS` (97 words): greetings, pronouns, question words and auxiliaries, with and without their
  apostrophes ("dont", "whats"). What is left of a question without them is what retrieval weighs (which
  of its words the content knows, how much of it a page covers) and what `content_words` returns.
- `KEYWORD_STOP_WORDS`: the BM25 index's own list (bm25s's English list, 33 words), fixed in every index
  version's tokenizer: changing it changes how stored indexes score, so it stays as built. All its words
  but "no", "not" and "such" are in `STOP_WORDS` too.
"""

from __future__ import annotations

import re

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "hi",
        "hey",
        "hello",
        "please",
        "thanks",
        "pls",
        "u",
        "im",
        "cant",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "wont",
        "arent",
        "wasnt",
        "havent",
        "hasnt",
        "ive",
        "theres",
        "thats",
        "whats",
        "wheres",
        "hows",
        "shes",
        "hes",
        "youre",
        "theyre",
        "he",
        "she",
        "him",
        "his",
        "her",
        "himself",
        "herself",
        "myself",
        "yourself",
        "us",
        "mine",
    ]
)

KEYWORD_STOP_WORDS = "en"  # bm25s's name for its English list

_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*[a-z0-9]")


def content_words(text: str) -> list[str]:
    """Lower-cased words of two letters or more, without stop words (the overlap rule's unit).

    >>> content_words("How do I reset my VPN token?")
    ['reset', 'vpn', 'token']
    """
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
