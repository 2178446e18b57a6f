"""Opt-out and opt-in recognition. Checked on the webhook itself, so an opt-out takes effect at once.

This is a legal control, not the intent model: it is small, deterministic and auditable on purpose. A message
goes through four steps:

1. Normalise: lower case, no accents, punctuation and emoji to spaces (a few emoji become words first: 🛑 is
   "stopemoji", 👍 "yesemoji"), letter runs of 3+ collapsed to one ("siiiiair" -> "siair", "paraaaa" ->
   "para"), a few fixed phrases joined ("opt out" -> "optout", "de novo" -> "denovo"). Clause boundaries
   (, . ; ! ? newline) are kept so that a negation only reaches the words of its own clause.
2. Classify each token with explicit word lists (``_LEXICON``). A token that is in no list gets one more try
   with doubled letters collapsed ("sairr" -> "sair"), then a fuzzy match (Damerau-Levenshtein distance <= 1,
   tokens and targets of 4+ letters) against the stop verbs, the opt-in verbs and the messaging nouns --
   unless it is one of the real words that sit one edit from those (``_GUARD``: saia, saio, cair, pagar,
   parei, porem, renova, canela, listra, vista, votar ...), which are never "corrected" into a stop word.
3. Decide with the small ordered rules of ``_decide`` (each returns a reason, see ``explain``):
   * any shopping word (product, size, colour, number, order/cart/payment/delivery word, question word) ->
     not an opt-out; if the message nevertheless carries an explicit "stop messaging me" construction it is
     only *unsure* (the bot asks), never a silent opt-out and never silently ignored;
   * a negation construction: "não quero mais (receber)", "não me mande(m) mais", "nunca mais me envie"
     -> opt_out; a negated stop verb ("não quero sair") -> nothing; "não quero" / "não quero mais nada"
     -> unsure;
   * a stop verb with nothing else than filler words (por favor, obrigado, já, agora, ok ...), grammar
     particles, "me", want-words (quero, pode), messaging nouns (lista, mensagem, promoções) and annoyance
     words (chato, saco, merda) -> opt_out; with one unknown word -> unsure (with a messaging noun: opt_out);
     with more -> nothing. An explicit construction -- stop verb + "de" + send/receive verb ("parem de
     mandar"), stop verb + messaging noun ("sair da lista"), "já pedi pra sair" -- tolerates two unknown words;
   * a misspelt stop verb (fuzzy match) followed by particles but no messaging noun ("siar daqui") -> unsure;
   * an opt-in verb or construction ("voltar", "voltar a receber", "receber ... de novo") -> opt_in;
   * a vaguer signal ("chega", "me esquece", "spam", 🛑) with at most one unknown word -> unsure.
   If the whole message is not a clear opt-out, each clause (split on , . ; : ! ? newline) is read alone, and
   one clear clause makes the message clear ("quero sair, obrigado pela atenção") -- unless the message has
   shopping words, an opt-in word, a negated stop verb or "continuar" ("Sair? Não, quero continuar").
4. Anything else -> None.

Decisions that are deliberately *unsure* rather than clear (the bot then asks once "Você quer parar de receber
nossas mensagens? Responda SIM"):
* "para" and "sai" are also a preposition and "goes out/ships" ("para presente", "sai hoje?"): alone they are
  an opt-out, with a messaging noun too ("sai da lista"), "sai fora"/"sai daqui" are unsure, "para" with
  other words is nothing ("é para mim") except the fixed phrases "para com isso" / "para tudo" (unsure).
* "cancelar"/"remover" alone are opt-out keywords, but "quero cancelar" / "pode cancelar" (no object) may be
  about an order: unsure. With "me" or a messaging noun ("me remove", "cancelar inscrição") they are clear.
* "tira", "excluir", "desativar" need "me" or a messaging noun ("me tira", "tira meu número"); alone unsure.
* "não quero" (no object), "não quero mais nada (disso)", "não quero mais isso/esse": in a shopping chat they
  answer "quer mais alguma coisa?" as often as they refuse messages: unsure. "não quero mais" alone (and with
  a messaging noun, "não quero mais mensagens") is a clear opt-out.
* "chega", "já chega", "me esquece", "me deixa em paz", "não tenho interesse", "isso é spam", "vou denunciar",
  "sair do grupo", 🛑 alone: unsure. "chega de mensagem/spam/promoção" is clear.
* Opt-in is only ever clear: "voltar" alone, or with a messaging/receiving word; "quero voltar" and "voltar ao
  menu" are nothing. ``read_consent`` never reports an "unsure" opt-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from rapidfuzz.distance import DamerauLevenshtein

from core.text import normalize

# The advertised keywords (what templates tell shoppers to send); all of them are clear readings below.
OPT_OUT_WORDS = frozenset({"sair", "parar", "pare", "stop", "cancelar", "descadastrar", "descadastre", "unsubscribe"})
OPT_IN_WORDS = frozenset({"voltar", "assinar", "start"})

Consent = Literal["opt_out", "opt_in"]
Reading = Literal["opt_out", "opt_in", "unsure_opt_out"]

# The bot asked "do you want to stop receiving our messages?": the shopper's next message within this time answers
# it, and until they answer no automated message goes out to them.
QUESTION_OPEN_FOR = timedelta(days=7)


# ---------------------------------------------------------------------------------------------------------------
# Word lists. Every token of a message falls into exactly one class (or UNKNOWN).

STOP = "stop"            # clear stop verb: sair, parar, pare, stop, descadastrar, unsubscribe ...
ORDERY = "ordery"        # clear alone, but also an order/cart action: cancelar, remover (see module docstring)
PARA = "para"            # "para": stop imperative and the commonest preposition
SAI = "sai"              # "sai": stop imperative and "goes out / ships"
NEEDS_ME = "needs_me"    # a stop verb only with "me" or a messaging noun: tira, excluir, desativar
SIGNAL = "signal"        # a vague opt-out signal: chega, esquece, spam, 🛑 ... -> unsure at most
INTEREST = "interest"    # interesse, interessa: "não tenho interesse" -> unsure
FILLER = "filler"        # politeness, greetings, thanks, laughter, "já", "agora", "ok"
PARTICLE = "particle"    # articles, prepositions, pronouns, "mais", "isso" ...
ME = "me"                # me, mim, meu, minha (the object of a stop verb is the shopper)
WANT = "want"            # quero, gostaria, pode, podem ...
NEG = "neg"              # não, n, nunca, nem
SEND = "send"            # mandar, enviar, encher (o saco), ligar: "parem de mandar", "não me mande"
RECEIVE = "receive"      # receber, participar: "não quero receber", "voltar a receber"
MSG = "msg"              # what is being stopped: mensagem, lista, promoções, número, inscrição, spam
PROMO = "promo"          # cupom, descontos: a messaging noun with send/receive, a shopping word otherwise
SHOP = "shop"            # products, sizes, colours, order/cart/payment/delivery words, question words
OPTIN = "optin"          # assinar, reativar, start, unstop: opt-in alone or with a messaging word
VOLTAR = "voltar"        # opt-in alone or with a messaging/receiving word, never with only "quero"
ACTIVATE = "activate"    # ativar: opt-in only with a messaging noun
INCLUDE = "include"      # coloca, adiciona, inclui: opt-in with "lista" or "de novo" and me/lista
AGAIN = "again"          # "denovo" (de novo, novamente, outra vez, de volta)
REQUEST = "request"      # pedi, falei: "já pedi pra sair" is an opt-out repeated
ANNOY = "annoy"          # chato, saco, merda: allowed around a stop verb, but not a messaging noun
UNKNOWN = "unknown"


def _words(text: str) -> list[str]:
    return text.split()


_LEXICON: dict[str, str] = {}


def _add(cls: str, text: str) -> None:
    for word in _words(text):
        # First assignment wins, so the order of the _add calls below is the precedence.
        _LEXICON.setdefault(word, cls)


_add(REQUEST, "pedi pedir pedindo pedimos falei disse avisei")
_add(STOP, """sair parar pare parem paro stop stopall unsubscribe unsub optout quit descadastrar descadastra
    descadastre descadastrem descadastro descadastrado descadastrada descadastrarem desinscrever desinscreve
    desinscreva desinscrevam desinscricao removido removida removidos""")
_add(ORDERY, "cancelar cancela cancele cancelem cancelo cancel remover remove remova removam")
_add(PARA, "para")
_add(SAI, "sai")
_add(NEEDS_ME, """tira tire tirar tirem tiram exclui excluir exclua excluam excluem apaga apagar apague apaguem
    desativar desativa desative desativem desliga desligar desligue take tirarem""")
_add(SIGNAL, """chega basta esquece esqueca esquecam paz spam denunciar denuncia denunciando denunciei bloquear
    bloqueio bloquea bloqueia bloqueando aguento aguentar suporto cancelamento stopemoji saio engano
    numeroerrado naosou naoconheco""")
_add(INTEREST, "interesse interessa interessado interessada")
_add(NEG, "nao n nn nunca nem")
_add(WANT, "quero queria gostaria desejo pode podem poderia poderiam consegue conseguem favor")
_add(ME, "me mim meu minha meus minhas")
_add(SEND, """mandar manda mande mandem mandam mandando enviar envia envie enviem enviam enviando encher enchendo
    incomodar incomodando perturbar perturbando ligar ligando send sending texting spamming""")
_add(RECEIVE, "receber recebendo participar receive receiving getting")
_add(MSG, """mensagem mensagens msg msgs mensage sms zap zapzap whats whatsapp wpp lista listas list promocao
    promocoes promo promos propaganda propagandas marketing notificacao notificacoes novidades oferta ofertas
    inscricao cadastro numero contato contatos transmissao automaticas automatica automaticos
    promocionais messages message texts""")
_add(ANNOY, """saco chato chata chatos chatas merda porra caralho droga lixo porcaria bosta inferno insuportavel
    irritante""")
_add(PROMO, "cupom cupons desconto descontos")
_add(OPTIN, """assinar assina assino start unstop reativar reativa reative subscribe resubscribe inscrever
    inscreve inscreva reinscrever""")
_add(VOLTAR, "voltar")
_add(ACTIVATE, "ativar ativa ative")
_add(INCLUDE, """coloca coloque colocar adiciona adicione adicionar add incluir inclui inclua bota poe cadastra
    cadastrar cadastre""")
_add(AGAIN, "denovo")
_add(FILLER, """por porfavor porfa pfv pfvr pf pls plz plis please gentileza obrigado obrigada obrigadu brigado
    brigada brigadao obg obgd obgda obgdo valeu vlw valew thanks thank thx ja agora ta ok okay blz oi oii ola
    opa eai hello hi hey bom boa dia tarde noite sim tchau bye now urgente imediatamente serio gente moco moca
    amigo amiga senhor senhora sr sra k kk rs rsrs haha hahaha yesemoji noemoji ai pelamor""")
_add(PARTICLE, """a o as os de d da do das dos dessa desse desta deste dessas desses disso disto daqui dai ali
    la em na no nas nos nessa nesse nisso com pra pro pras pros pelo pela pelos pelas e que q isso isto mais nada
    todas todos toda todo essa esse essas esses esta este estas estes aquela aquele sua seu suas seus teu tua
    vcs vc voces voce eu ser sempre tenho of the from all my it this off to at out you ur your any more""")
_add(SHOP, """pedido pedidos compra compras comprar compro comprei comprou comprando carrinho sacola item itens
    produto produtos frete entrega entregar entregam entregue entregou troca trocar troco devolver devolucao
    devolvo tamanho tamanhos tam cor cores numeracao modelo modelos marca marcas colecao linha estoque loja lojas
    site link app aplicativo pagina tela menu inicio catalogo foto fotos video preco precos valor valores custa
    custo barato barata caro cara pix boleto cartao credito debito parcela parcelas parcelar parcelamento juros
    pagamento pagar pago paguei comprovante nota fiscal rastreio rastrear codigo etiqueta garantia defeito
    embrulho presente presentes kit retirar retirada retiro buscar endereco cep correio correios motoboy moto
    sedex qual quais quanto quanta quantos quantas quando onde como cade porque pq tem vende vendem
    vender vendendo hoje amanha ontem semana sabado domingo segunda terca quarta quinta sexta mes natal casa
    trabalho rua festa praia academia corrida caminhada casamento escola viagem balada usar uso vestir calcar
    calco serve servir duvida pergunta outro outra outros outras esperar espera rapido saia saias vestido
    vestidos camiseta camisetas camisa camisas blusa blusas calca calcas jaqueta casaco moletom tenis sapatilha
    sandalia bota botas chinelo bolsa mochila cinto bone meia meias biquini maio short shorts bermuda pijama
    cropped body macacao conjunto legging top regata sapato sapatos salto rasteirinha roupa roupas look tamanco
    mule scarpin jeans polo lingerie sutia calcinha cueca oculos relogio brinco colar pulseira anel acessorio
    peca pecas par pares saida preto preta pretos pretas branco branca azul vermelho vermelha rosa verde amarelo
    amarela bege nude cinza marrom roxo lilas laranja vinho caramelo canela dourado prata estampado estampada
    florida floral listrada listra lisa liso couro algodao pp p m g gg xg xgg eg egg plus infantil masculino
    masculina feminino feminina crianca menino menina bebe gestante adulto unissex midi longo longa curto curta
    mini nike adidas olympikus mizuno vans puma melissa havaianas fila asics sp rj bh email senha""")

# Real words one edit (Damerau-Levenshtein) from a fuzzy target below, which must therefore never be
# "corrected" into it. Derived from the Brazilian Portuguese and English word lists (Debian wbrazilian,
# wamerican) and reviewed by hand; words already in _LEXICON need not be repeated here.
_GUARD = frozenset(_words("""
    cair fair hair lair nair pair saar sadr said sail saira saire sais saiu stair stir
    atop shop slop step stol stomp stoop stow strop swop stops
    aparar arar paar papar parai param parara parari paras parau parear parir parr sarar varar pairar
    aparem arem barem darem harem pairem papem parea pared parei paremo pareo partem piarem porem sarem varem
    parou parte parto pera pane sara sala
    cancelai cancelam cancelara cancelas chancela canceled cancelei cancelou cancels cancelemo canceles cancer
    chancel cancelado cancelada
    recover remoer remoter removed removei removem removera removers removes removeu remava remoa remoca remoia
    remora remota remoto removal removas removi removia removo renova remavam remoam remocam remoiam removamo
    removiam renovam remoce remoe remote renove
    unsubscribed unsubscribes optou
    soltar volta voltai voltam voltara voltas votar voltei voltou
    assinai assinam assinara assinas assinatura reativas reavivar
    alista dista listai listam listao listar liste listo mista pista vista
    cadastros cadastrou enumero inumero numera numere numerou
"""))

# Fuzzy targets: a typo of one of these (4+ letters) takes its class.
_FUZZY_TARGETS = {word: _LEXICON[word] for word in _words("""
    sair parar parem stop stopall unsubscribe optout descadastrar descadastra descadastre descadastrem descadastro
    desinscrever cancelar cancela cancele cancelem remover remove remova removam
    voltar assinar reativar unstop
    lista mensagem mensagens inscricao cadastro promocao promocoes whatsapp numero propaganda notificacoes
""")}

_EMOJI = {"🛑": " stopemoji ", "⛔": " stopemoji ", "🚫": " stopemoji ", "👍": " yesemoji ", "👌": " yesemoji ",
          "✅": " yesemoji ", "✔": " yesemoji ", "🙏": " ", "👎": " noemoji ", "❌": " noemoji "}
_PHRASES = [(re.compile(rf"\b{a}\b"), b) for a, b in (
    (r"opt out", "optout"), (r"opt in", "optin"), (r"stop all", "stopall"), (r"e mail", "email"),
    (r"whats app", "whatsapp"), (r"zap zap", "zapzap"), (r"de novo", "denovo"), (r"outra vez", "denovo"),
    (r"novamente", "denovo"), (r"de volta", "denovo"), (r"por favor", "porfavor"), (r"un subscribe", "unsubscribe"),
    (r"pelo amor de deus", "pelamor"), (r"numero errado", "numeroerrado"), (r"nao sou", "naosou"),
    (r"nao conheco", "naoconheco"), (r"quantas vezes", "quantasvezes"),
)]
_CLAUSE_BREAK = re.compile(r"[,.;:!?\n\r]+")


@dataclass(frozen=True)
class Token:
    word: str
    cls: str
    clause: int
    fuzzy: bool = False


def _dedouble(word: str) -> str:
    return re.sub(r"([a-z])\1", r"\1", word)


def _classify(word: str) -> tuple[str, bool]:
    if any(ch.isdigit() for ch in word):
        return SHOP, False
    if word in _LEXICON:
        return _LEXICON[word], False
    if word in _GUARD:
        return UNKNOWN, False
    single = _dedouble(word)
    if single in _LEXICON and single != word:
        return _LEXICON[single], True
    for candidate in dict.fromkeys((word, single)):
        if len(candidate) < 4:
            continue
        for target, cls in _FUZZY_TARGETS.items():
            if abs(len(target) - len(candidate)) <= 1 and DamerauLevenshtein.distance(candidate, target) <= 1:
                return cls, True
    return UNKNOWN, False


def tokens(text: str) -> list[Token]:
    """The classified tokens of a message (exposed for tests and for the audit trail)."""
    raw = text or ""
    for emoji, word in _EMOJI.items():
        raw = raw.replace(emoji, word)
    result: list[Token] = []
    for clause, part in enumerate(_CLAUSE_BREAK.split(raw)):
        clean = normalize(part)
        clean = re.sub(r"([a-z])\1{2,}", r"\1", clean)  # elongations: siiiim, saaaair, paraaaa
        for pattern, joined in _PHRASES:
            clean = pattern.sub(joined, clean)
        for word in clean.split():
            cls, fuzzy = _classify(word)
            result.append(Token(word, cls, clause, fuzzy))
    return result


# ---------------------------------------------------------------------------------------------------------------
# Decision rules.

# The words an opt-out sentence is made of, besides its stop verb.
_CONTEXT = {FILLER, PARTICLE, ME, WANT, MSG, SEND, RECEIVE, INTEREST, REQUEST, ANNOY}
_STOPS = {STOP, ORDERY, PARA, SAI, NEEDS_ME}
_DEMONSTRATIVE = frozenset(_words("isso isto disso disto esse essa este esta nada aquele aquela"))

# Fixed phrases that are unsure (compared with and without filler words: "já deu", "sai fora pfv").
_UNSURE_PHRASES = frozenset({"para com isso", "para tudo", "para ja com isso", "me deixa", "ja deu", "sai fora",
                             "sai daqui", "sai pra la"})


def _messaging(toks: list[Token]) -> bool:
    """An explicit reference to being messaged: a messaging noun or a send/receive verb (coupons count here)."""
    classes = {t.cls for t in toks}
    return bool(classes & {MSG, SEND, RECEIVE}) or (PROMO in classes and bool(classes & {SEND, RECEIVE})) \
        or any(t.word == "spam" for t in toks)


# Messaging nouns explicit enough to make "stop" about messages even next to shopping words.
_EXPLICIT_MSG = frozenset(_words("""mensagem mensagens msg msgs mensage sms zap zapzap whats whatsapp wpp lista list
    inscricao propaganda propagandas marketing notificacao notificacoes spam messages message texts"""))


def _explicit_stop(toks: list[Token]) -> bool:
    """An unmistakable "stop messaging me", for messages that also carry shopping words: a stop verb or a
    negation followed in its clause by (de) (me) + a send/receive verb, or a stop verb followed by an explicit
    messaging noun ("sair da lista"), or a negated send/receive verb together with such a noun."""
    for i, tok in enumerate(toks):
        after = [t for t in toks[i + 1:] if t.clause == tok.clause and t.cls not in (FILLER, ME)]
        if tok.cls == REQUEST:  # "já pedi pra sair", "pedi para me tirarem"; not "pedi pra cancelar o pedido"
            if not any(t.cls == SHOP for t in toks) and len(after) >= 2 \
                    and after[0].word in ("pra", "para", "pro") and after[1].cls in _STOPS:
                return True
            continue
        if tok.cls not in _STOPS | {NEG, SIGNAL}:
            continue
        if tok.cls == SIGNAL:  # "chega de mensagem", "como saio da lista"
            if len(after) >= 2 and after[0].cls == PARTICLE and after[1].word in _EXPLICIT_MSG:
                return True
            continue
        if tok.cls == NEG:
            after = [t for t in after if t.cls not in (WANT,) and t.word != "mais"]
            if after and after[0].cls in (SEND, RECEIVE) and any(t.word in _EXPLICIT_MSG for t in after):
                return True
            continue
        if len(after) >= 2 and after[0].word in ("de", "d") and after[1].cls in (SEND, RECEIVE):
            return True
        if tok.cls == PARA:  # "voltar para a lista de produtos": the preposition
            continue
        if len(after) >= 2 and after[0].cls == PARTICLE and after[1].word in _EXPLICIT_MSG:
            return True
        if after and after[0].word in _EXPLICIT_MSG:
            return True
    return False


_KEEP_RECEIVING = frozenset(_words("continuar continua continue continuo continuem"))


def _decide(toks: list[Token]) -> tuple[str | None, str]:
    """The whole message; then, if that is not a clear opt-out, each clause on its own: "quero sair, obrigado
    pela atenção" and "Recebi a mensagem mas não tenho interesse, não me mandem mais nada" are clear. Not when
    a clause has shopping words or says to keep sending ("Sair? Não, quero continuar")."""
    verdict = _decide_message(toks)
    clauses = sorted({t.clause for t in toks})
    if verdict[0] == "opt_out" or len(clauses) < 2 or any(t.cls in (SHOP, OPTIN, VOLTAR) for t in toks) \
            or any(t.word in _KEEP_RECEIVING for t in toks) or _negated_stop(toks):
        return verdict
    for clause in clauses:
        part = [t for t in toks if t.clause == clause]
        reading, why = _decide_message(part)
        if reading == "opt_out" and any(t.cls != FILLER for t in part):
            return "opt_out", f"clause: {why}"
    return verdict


def _decide_message(toks: list[Token]) -> tuple[str | None, str]:
    if not toks:
        return None, "empty"
    classes = [t.cls for t in toks]
    content = [t for t in toks if t.cls != FILLER]
    phrase = " ".join(t.word for t in content)
    if phrase in _UNSURE_PHRASES or " ".join(t.word for t in toks) in _UNSURE_PHRASES:
        return "unsure_opt_out", "fixed unsure phrase"
    has_stop = any(c in _STOPS for c in classes)
    has_neg = NEG in classes

    # Shopping words: never an opt-out; an explicit "stop messaging me" next to them is only unsure.
    if SHOP in classes or (PROMO in classes and not set(classes) & {SEND, RECEIVE}):
        explicit = _explicit_stop(toks) and not _negated_stop(toks)
        return ("unsure_opt_out", "stop construction with shopping words") if explicit else (None, "shopping")

    if has_neg:
        verdict = _negation(toks)
        if verdict is not None:
            return verdict
    # "voltar para a lista": "para" is the preposition of an opt-in verb.
    if has_stop and not (set(classes) & {OPTIN, VOLTAR} and all(c not in _STOPS or c == PARA for c in classes)):
        return _stop(toks)
    verdict = _opt_in(toks)
    if verdict is not None:
        return verdict
    if SIGNAL in classes or INTEREST in classes:
        if classes.count(UNKNOWN) <= 1:
            if "chega" in phrase.split() and _messaging(toks) and classes.count(UNKNOWN) == 0:
                return "opt_out", "chega de + messaging noun"
            return "unsure_opt_out", "vague signal"
    return None, "nothing"


def _negated_stop(toks: list[Token]) -> bool:
    """'não quero sair', 'não pare': a negation followed, in its clause, by a stop verb within two content words."""
    for i, tok in enumerate(toks):
        if tok.cls != NEG:
            continue
        following = [t for t in toks[i + 1:] if t.clause == tok.clause and t.cls not in (FILLER, ME, PARTICLE)]
        if any(t.cls in _STOPS for t in following[:2]):
            return True
    return False


def _negation(toks: list[Token]) -> tuple[str | None, str] | None:
    """Negation constructions. None when no construction applies (the other rules then decide)."""
    first = next(i for i, t in enumerate(toks) if t.cls == NEG)
    scope = [t for t in toks[first + 1:] if t.clause == toks[first].clause]
    outside = [t for t in toks if t.clause != toks[first].clause]
    unknown = sum(t.cls == UNKNOWN for t in toks)
    if _negated_stop(toks):
        if _messaging(toks):
            return "unsure_opt_out", "negated stop verb about messages"
        return None, "negated stop verb"
    scope_classes = {t.cls for t in scope}
    others_ok = all(t.cls in _CONTEXT | {NEG, PROMO} for t in toks)
    if scope_classes & {SEND, RECEIVE}:
        # "não me mande mais", "não quero (mais) receber", "nunca mais me envie"
        if others_ok:
            return "opt_out", "negated send/receive"
        return ("unsure_opt_out", "negated send/receive with unknown words") if unknown <= 2 else None
    if WANT in scope_classes and not any(t.cls == INTEREST for t in scope):
        rest = [t for t in scope if t.cls not in (WANT, FILLER, ME) and t.word != "mais"]
        if any(t.cls not in (FILLER, PARTICLE, MSG, NEG, ME, WANT) for t in outside):
            return None
        has_mais = any(t.word == "mais" for t in scope)
        if not rest:
            return ("opt_out", "nao quero mais") if has_mais else ("unsure_opt_out", "nao quero (no object)")
        if all(t.cls in (MSG, PARTICLE) for t in rest):
            if any(t.cls == MSG for t in rest):
                return "opt_out", "nao quero (mais) + messaging noun"
            return "unsure_opt_out", "nao quero (mais) + nada/isso/esse"
        return ("unsure_opt_out", "nao quero + unknown word") if unknown <= 1 else (None, "nao quero + sentence")
    if scope_classes & {INTEREST, WANT}:
        return ("unsure_opt_out", "nao tenho interesse") if unknown <= 1 else None
    return None


def _stop(toks: list[Token]) -> tuple[str | None, str]:
    classes = {t.cls for t in toks}
    unknown = sum(t.cls == UNKNOWN for t in toks)
    signal = SIGNAL in classes
    messaging = _messaging(toks)
    has_me = ME in classes
    strong = STOP in classes
    ordery = ORDERY in classes
    needs_me = NEEDS_ME in classes and (has_me or messaging)
    only_stop_and_filler = all(t.cls in _STOPS | {FILLER, SIGNAL} for t in toks)
    if _explicit_stop(toks):  # "para de mandar essa merda", "já pedi pra sair várias vezes"
        if unknown <= 2:
            return "opt_out", "explicit stop construction"
        return "unsure_opt_out", "explicit stop construction in a longer sentence"

    if not (strong or ordery or needs_me):
        # Only the weak words: "para", "sai", or "tira"/"excluir" without an object.
        if only_stop_and_filler and (PARA in classes or SAI in classes) and NEEDS_ME not in classes:
            return "opt_out", "para/sai alone"
        if unknown == 0 and messaging and (PARA in classes or SAI in classes):
            return "opt_out", "para/sai + messaging"
        if SAI in classes and unknown <= 1:
            return "unsure_opt_out", "sai + particle/unknown word"
        if NEEDS_ME in classes and unknown == 0 and PARA not in classes and SAI not in classes:
            return "unsure_opt_out", "tira/excluir without object"
        return None, "weak stop word in a sentence"
    typo_only = all(t.fuzzy for t in toks if t.cls in _STOPS)
    if unknown == 0 and typo_only and not messaging and any(t.cls == PARTICLE for t in toks):
        return "unsure_opt_out", "misspelt stop verb in a sentence"
    if unknown == 0:
        if strong or needs_me:
            return "opt_out", "stop verb + context"
        if ordery and not (has_me or messaging) and (WANT in classes or any(t.word in _DEMONSTRATIVE for t in toks)):
            return "unsure_opt_out", "quero cancelar / cancela isso (no object: the order?)"
        return "opt_out", "cancelar/remover + context"
    if unknown == 1:
        if messaging and not signal:
            return "opt_out", "stop verb + messaging + one unknown word"
        return "unsure_opt_out", "stop verb + one unknown word"
    if unknown == 2 and messaging:
        return "unsure_opt_out", "stop verb + messaging + two unknown words"
    return None, "stop word in a sentence"


def _opt_in(toks: list[Token]) -> tuple[str | None, str] | None:
    classes = [t.cls for t in toks]
    present = set(classes)
    unknown = classes.count(UNKNOWN)
    allowed = all(c in {FILLER, PARTICLE, ME, WANT, MSG, SEND, RECEIVE, AGAIN, PARA, OPTIN, VOLTAR, ACTIVATE, INCLUDE,
                        PROMO, UNKNOWN} for c in classes)
    if not allowed or unknown > 3:
        return None
    messaging = bool(present & {MSG, SEND, RECEIVE})
    if OPTIN in present or VOLTAR in present:
        if all(c in (FILLER, OPTIN, VOLTAR) for c in classes):
            return "opt_in", "opt-in keyword"
        if OPTIN in present and unknown == 0:
            return "opt_in", "opt-in keyword + context"
        if messaging and unknown <= 3:
            return "opt_in", "voltar + messaging"
        return None, "voltar in a sentence"
    if ACTIVATE in present and MSG in present and unknown == 0:
        return "opt_in", "ativar mensagens"
    if AGAIN in present and (RECEIVE in present or (MSG in present and unknown == 0)):
        return "opt_in", "receive/messages again"
    if INCLUDE in present and AGAIN in present and (ME in present or MSG in present) and unknown == 0:
        return "opt_in", "include me again"
    if INCLUDE in present and ME in present and any(t.word in ("lista", "list") for t in toks) and unknown == 0:
        return "opt_in", "put me on the list"
    return None


def explain(text: str) -> tuple[Reading | None, str]:
    """The reading and the rule that produced it (for logs, tests and audits)."""
    return _decide(tokens((text or "")[:500]))  # type: ignore[return-value]


def read_consent(text: str) -> Reading | None:
    """'opt_out' and 'opt_in' are clear; 'unsure_opt_out' means ask once; None means not about consent."""
    return explain(text)[0]


def consent_change(text: str) -> Consent | None:
    """'SAIR', 'Parar.', 'quero sair da lista' -> opt_out; 'VOLTAR', 'assinar' -> opt_in; otherwise None.

    Clear cases only: the webhook applies them at once. "não quero sair sem o tênis" is a product question.
    """
    reading = read_consent(text)
    return reading if reading in ("opt_out", "opt_in") else None  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------------
# Answers to "Você quer parar de receber nossas mensagens? Responda SIM".

_YES = frozenset(_words("""sim s ss si isso mesmo exato exatamente quero pode confirmo confirma confirmar confirmado
    yes y yep yeah yea claro ok okay blz beleza certo certeza positivo aham uhum favor porfavor pfv pf yesemoji
    quero pode podem ser please sure"""))
_NO = frozenset(_words("""nao n nn no nope not nunca negativo nem noemoji continuar continua continue continuo fica
    ficar errado engano"""))


def is_affirmative(text: str) -> bool:
    """A yes to the opt-out question. "ok" counts: the question asks to stop, and a wrongly applied opt-out is
    undone with VOLTAR, while a missed one keeps messaging someone who wanted out. A clear opt-out is a yes."""
    if read_consent(text) == "opt_out":
        return True
    toks = tokens((text or "")[:200])
    words = [t.word for t in toks]
    if not words or any(w in _NO for w in words):
        return False
    return any(w in _YES for w in words) and all(
        w in _YES or t.cls in {FILLER, PARTICLE, ME, WANT, MSG, SEND, RECEIVE} | _STOPS for w, t in zip(words, toks))


def is_negative(text: str) -> bool:
    """A no to the opt-out question: "não", "não quero sair", "continuar", "quero continuar recebendo", 👎."""
    if read_consent(text) == "opt_out":
        return False
    toks = tokens((text or "")[:200])
    if not toks or not any(t.word in _NO for t in toks):
        return False
    return all(t.word in _NO or t.cls in {FILLER, PARTICLE, ME, WANT, MSG, RECEIVE, SEND} | _STOPS
               for t in toks) and not any(t.word in _YES - {"quero", "pode", "podem", "favor", "porfavor", "pfv",
                                                             "pf", "please"} for t in toks)


def question_open(asked_at, now) -> bool:
    """Is the "do you want to stop receiving our messages?" question asked at ``asked_at`` still unanswered?"""
    return asked_at is not None and now - asked_at < QUESTION_OPEN_FOR
