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


# Short phrases that mean the same as the keyword alone. Deliberately anchored: a product question that merely
# contains "sair" or "parar" is not an opt-out.
_POLITE = r"(por favor |pfv |pf )?(eu )?"
_OPT_OUT_PATTERNS = [
    re.compile(
        rf"^{_POLITE}(quero |pode |gostaria de |desejo )?(me )?"
        r"(sair|parar|cancelar|descadastrar|descadastra|descadastre|remover|tirar|tira|tire)( me)?"
        r"( d(a|essa|esta) lista| de receber( mensagens| as mensagens| mais)?| as mensagens| o cadastro| meu numero"
        r"| minha inscricao| a inscricao| inscricao)?( por favor)?$"),
    re.compile(rf"^{_POLITE}(nao quero|nao desejo) (mais )?receber( mais)?( mensagens| essas mensagens| nada)?( por favor)?$"),
    re.compile(rf"^{_POLITE}(pare|parem|para) de (me )?(mandar|enviar)( mensagens| mensagem| isso)?( por favor)?$"),
    re.compile(rf"^{_POLITE}nao (me )?(mande|mandem|envie|enviem) mais( mensagens| nada| mensagem)?( por favor)?$"),
    re.compile(rf"^{_POLITE}(me )?(tira|tire|remova|remove) (da|dessa|desta) lista( por favor)?$"),
    re.compile(rf"^{_POLITE}cancelar (a )?inscricao( por favor)?$"),
]


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
    if any(pattern.match(normalized) for pattern in _OPT_OUT_PATTERNS):
        return "opt_out"
    return None
