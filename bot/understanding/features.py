"""The classifier's view of a message: normalised the same way for training and for a shopper's text.

Lower case, no accents, punctuation to spaces (``core.text.normalize``); letter runs collapsed ("siiim",
"obrigadaaa", "kkkkk"); then the words that vary without changing what is asked become placeholders, so that
what the model learns from "tem em azul?" holds for "tem em vinho?" and "quero o 2" for "quero o 5":

* a colour (``catalog.index.find_colours``, compound ones included) -> ``qcor``
* a number: 1-10 -> ``qnum`` (an item, a quantity), 11-99 -> ``qdois`` (a size, an age), 100+ -> ``qtres``
  (an order number, a price)
* an amount of money ("R$ 59,90") -> ``qdinheiro``
* a letter size standing alone after a size cue or at the end ("tamanho M", "a preta G") -> ``qtam``

Laughter ("kkkk", "hahaha", "rsrs") becomes ``qrisos``. A few chat spellings are written out ("vc" stays: the
character n-grams learn it; only the ones that collide with other words are changed).
"""

from __future__ import annotations

import re

from catalog.index import find_colours
from core.text import normalize

_MONEY = re.compile(r"r\$\s*\d+(?:[.,]\d{1,3})*(?:,\d{2})?|\d+(?:[.,]\d{2})?\s*(?:reais|conto|contos|pila)\b")
_LAUGH = re.compile(r"^(?:k{2,}|(?:ha){2,}h?|(?:he){2,}h?|(?:rs){2,}|(?:hu){2,}|(?:ks){2,})$")
_RUN = re.compile(r"([a-z])\1{2,}")
_DOUBLE = re.compile(r"([a-qt-z])\1")  # "oii", "vlww", "simm"; rr and ss are Portuguese
_SIZE_CUES = {"tamanho", "tam", "tm", "numero", "n", "no", "na", "o", "a", "em"}
_LETTER_SIZES = {"pp", "p", "m", "g", "gg", "xg", "xgg", "eg"}


def _word(token: str) -> str:
    if _LAUGH.match(token):
        return "qrisos"
    token = _RUN.sub(r"\1", token)
    if not token.isdigit():
        token = _DOUBLE.sub(r"\1", token)
    if token.isdigit():
        value = int(token)
        return "qnum" if 1 <= value <= 10 else "qdois" if value < 100 else "qtres"
    return token


def prepare(text: str) -> str:
    """'Tem essa AZUL no tamanho M?? kkkk' -> 'tem essa qcor no tamanho qtam qrisos'."""
    lowered = (text or "")[:500].lower()
    lowered = _MONEY.sub(" qdinheiro ", lowered)
    tokens = [_word(t) for t in normalize(lowered).split()]
    for start, end, _colour in reversed(find_colours(tokens)):
        tokens[start:end] = ["qcor"]
    for i, token in enumerate(tokens):
        if token in _LETTER_SIZES and len(tokens) > 1 and (
                (i > 0 and tokens[i - 1] in _SIZE_CUES) or i == len(tokens) - 1 or tokens[i - 1] == "qcor"):
            tokens[i] = "qtam"
    return " ".join(tokens)
