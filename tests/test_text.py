"""Text rules shared by the indexer and the assistant: front matter, stop words, content words."""

from __future__ import annotations

import pytest

from indexer.sources import ContentError, _split_front_matter
from indexer.text import KEYWORD_STOP_WORDS, STOP_WORDS, content_words


@pytest.mark.parametrize(
    ("text", "meta", "body"),
    [
        ("---\ntitle: A\n---\nBody\n", {"title": "A"}, "Body\n"),
        ("---\ntitle: A\n...\nBody", {"title": "A"}, "Body"),  # YAML's own end marker
        ("---  \ntitle: A\n---  \n\nBody\n---\nmore\n", {"title": "A"}, "\nBody\n---\nmore\n"),
        ("---\n---\nBody", {}, "Body"),
        ("---\ntitle: A\n---", {"title": "A"}, ""),
        ("----\nA rule, not front matter\n", {}, "----\nA rule, not front matter\n"),
        ("No front matter\n---\nx: 1\n---\n", {}, "No front matter\n---\nx: 1\n---\n"),
    ],
)
def test_front_matter_is_split_from_the_body(text, meta, body):
    assert _split_front_matter(text) == (meta, body)


def test_front_matter_errors_say_where_and_what_to_do():
    with pytest.raises(ContentError, match="starts with '---' but never ends: add a closing '---' line"):
        _split_front_matter("---\ntitle: A\nNo closing line.\n")
    with pytest.raises(ContentError, match=r"front matter \(between the --- lines\) is not valid YAML on line 4"):
        _split_front_matter("---\ntitle: A\ntags: [a, b\n---\nBody\n")
    with pytest.raises(ContentError, match="must be a list of `key: value` lines"):
        _split_front_matter("---\n- a\n- b\n---\nBody\n")


def test_one_list_of_stop_words_and_the_keyword_index_keeps_its_own():
    import bm25s.stopwords

    from indexer.keywords import _tokenizer

    assert content_words("Hi, how do I reset my VPN token? Thanks!") == ["reset", "vpn", "token"]
    # The BM25 index's list (fixed in every stored index) is bm25s's English one; all but three of its
    # words are stop words of questions too.
    keyword_list = set(bm25s.stopwords.STOPWORDS_EN)
    assert set(_tokenizer().stopwords) == keyword_list and KEYWORD_STOP_WORDS == "en"
    assert keyword_list - STOP_WORDS == {"no", "not", "such"}
