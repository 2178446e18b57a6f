"""Opt-out and opt-in keywords. Checked on the webhook itself, so an opt-out takes effect at once."""

from __future__ import annotations

import re
from typing import Literal

from unidecode import unidecode

OPT_OUT_WORDS = frozenset({"sair", "parar", "pare", "stop", "cancelar", "descadastrar", "descadastre", "unsubscribe"})
OPT_IN_WORDS = frozenset({"voltar", "assinar", "start"})

Consent = Literal["opt_out", "opt_in"]


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation to spaces, single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", unidecode(text or "").lower())).strip()


# Short phrases that mean the same as the keyword alone.
_OPT_OUT_PHRASE = re.compile(
    r"^(quero |pode |por favor )?(me )?(sair|parar|cancelar|descadastrar|descadastra|remover|tirar)"
    r"( me)?( da lista| de receber( mensagens| as mensagens)?| as mensagens| o cadastro| meu numero)?( por favor)?$"
)
_OPT_OUT_SENTENCE = re.compile(r"^(nao quero|nao desejo) (mais )?receber( mensagens| essas mensagens)?$")


def consent_change(text: str) -> Consent | None:
    """'SAIR', 'Parar.', 'quero sair da lista' -> opt_out; 'VOLTAR', 'assinar' -> opt_in; otherwise None.

    Deliberately narrow: "não quero sair sem o tênis" is a question about a product, not an opt-out.
    """
    normalized = normalize(text)
    words = normalized.split()
    if len(words) == 1:
        if words[0] in OPT_OUT_WORDS:
            return "opt_out"
        if words[0] in OPT_IN_WORDS:
            return "opt_in"
        return None
    if _OPT_OUT_PHRASE.match(normalized) or _OPT_OUT_SENTENCE.match(normalized):
        return "opt_out"
    return None
