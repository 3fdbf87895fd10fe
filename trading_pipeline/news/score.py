"""Scoring with VADER (Hutto & Gilbert 2014): a lexicon and rules for English social text,
shipped inside the ``vaderSentiment`` wheel (nothing downloaded at run time).

VADER is English-only, so a text is first checked to be English (:func:`is_english`); other
texts are kept and counted but not scored. ``compound`` is in [-1, 1]; the usual thresholds
call ``>= 0.05`` positive and ``<= -0.05`` negative.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

POSITIVE = 0.05
NEGATIVE = -0.05

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP_WORDS = {
    "en": "the a an and or of to in on for is are was were be been has have had will with as at "
    "by from this that it its not but after over new up down price market says said",
    "fr": "le la les des du une est et en pour sur dans que qui pas",
    "es": "el los las del por para con una que y es se",
    "de": "der die das und ist mit auf für nicht ein eine den dem zu",
    "it": "il di che della per non sono gli",
    "pt": "o os da do em com uma não são",
}
_EN = frozenset(_STOP_WORDS["en"].split())
_OTHER = frozenset(w for lang, words in _STOP_WORDS.items() if lang != "en" for w in words.split())


def is_english(text: str) -> bool:
    """Whether ``text`` reads as English: mostly ASCII letters, and no more common words of
    French/Spanish/German/Italian/Portuguese than of English (a small stop-word vote)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    if sum(c.isascii() for c in letters) / len(letters) < 0.9:
        return False
    words = [w.lower() for w in _WORD.findall(text)]
    en = sum(w in _EN for w in words)
    other = sum(w in _OTHER for w in words)
    return not (other > en and other >= 2)


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def polarity(text: str) -> dict[str, float]:
    """VADER's ``compound``, ``pos``, ``neg``, ``neu`` for one text."""
    scores = _analyzer().polarity_scores(text)
    return {k: float(scores[k]) for k in ("compound", "pos", "neg", "neu")}
