"""Is a word an English word, and how is it spelt on the other side of the Atlantic.

Keyword search corrects a word the content never uses to the content's nearest word, since people type
fast in Slack ("pasword"). That must not happen to a real word: after stemming, "bereavement" is two
edits from "break", "calories" from "carries" and "maternity" from "water", and taking them so made
questions the content cannot answer look answerable (and searched for the wrong word). So only a word
that is not English is corrected (pyspellchecker's English word list, about 160,000 words); an English
word stays itself, or becomes the content's word in the other spelling ("tire" for the content's "tyre",
"organization" for "organisation": breame's British and American pairs), since the word list is
American and the content may be British.
"""

from __future__ import annotations

from functools import cache


@cache
def _words() -> dict[str, int]:
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1).word_frequency.dictionary


def is_english_word(word: str) -> bool:
    """Whether `word` (lower case) is in the English word list."""
    return word in _words()


def other_spellings(word: str) -> list[str]:
    """The word's British spelling if it is American, its American one if it is British (else none)."""
    from breame.spelling import get_american_spelling, get_british_spelling

    return [other for other in (get_british_spelling(word), get_american_spelling(word)) if other != word]
