"""Entities in a shopper's chat message: which of the listed items it points to, how many, the size, the colour,
an amount of money, a date and an order number. Deterministic, no database, a few dozen microseconds a message.

``extract("quero 2 do 1 tamanho G azul")`` -> ``Entities(refs=(ItemRef(index=1),), quantity=2, size="G",
color="azul", rest="azul")`` (the other fields empty).

How a message is read (each rule has tests in tests/test_understanding_entities.py):

1. The text is lowered and unaccented like ``core.text.normalize`` ("º"/"ª" become "o"/"a" first: "1º" is "1o",
   "nº" is "no"; "está" becomes "ta", so it is never the demonstrative "esta"; a letter typed three times or
   more counts once, as in ``catalog.search.parse_query``). Then, on that text with its punctuation:

   * an order number: "pedido 1234", "meu pedido é o 4432", "pedido #A-1001", "#1234", "nº 5521": three digits or
     more, or any code after "#" holding a digit. Reported upper case without the "#" ("A-1001"). "pedido 12"
     is no order number, but its number is not read as a size or an item either.
   * money: "R$ 59,90", "100 reais", "uns 200 conto", "2 mil", "150,00" (a comma and two decimals), and a bare
     number of 50 or more after "até", "no máximo", "menos de", "abaixo de", "uns", "por volta de"... (below 50
     it may be a size: "do 38 até 42"). ``money_max`` when "até", "no máximo", "máximo", "max", "menos de",
     "abaixo de" comes right before the amount. The first amount counts.
   * a date "12/11" or "12/11/2025"; a pair that is no date ("37/38", "38-39") is a size.

2. The rest is read word by word, left to right:

   * **item references** (``refs``, in order; "o 1 e o 3" gives two):
       - an article or "do/da" (or "pelo/pela") + a number 1-10: "o 2", "a 3", "do 1". Plural articles ("os 2",
         "as duas") are no reference (they mean "both"/"the two", which an ItemRef cannot say). "do"/"da" start a
         reference only after a non-content word (start, punctuation, a chat word, a number): "2 da azul",
         "gostei da preta", but not "camiseta da nike".
       - a noun that numbers items + a number 1-99: "item 1", "opção 4", "op 2", "foto 3", "modelo 2",
         "produto 3", "n 3". ("numero 3", "nº 3", "no 3", "na 3" are sizes: see below; "n 42" is a size too.)
       - a bare digit 1-10 that ends the message, or comes before "e"/"ou", punctuation, "por favor", a size
         ("quero 2", "1 e 3", "2, 3", "o 1 e 3", "2 tamanho M", "2 M"): a reference. Followed by a product or
         colour word it is a quantity ("quero 2 camisetas", "3 pretas"). A number *word* alone ("quero duas") is
         a quantity, never a reference: people pick a numbered option with its digit.
       - ordinals 1-10 in both genders, with or without an article ("a primeira", "o segundo", "terceira",
         "decimo"), and "1o", "1a", "1º", "2ª", "10o". Without an article an ordinal must stand alone (end,
         punctuation, "e", "por favor", a size, "da lista"...) or name the item ("segunda opção"): "primeiro queria
         saber o frete" is no reference. Never before a word of time or order ("a primeira vez", "minha primeira
         compra"); "um segundo" and "segundo o site" are no ordinals.
       - "segunda", "quarta", "quinta", "sexta" are weekdays unless an article or "da" comes right before and no
         word of time before that ("quero a segunda", "e a quarta", "duas da primeira"); "chega segunda?",
         "segunda-feira", "a segunda feira", "na segunda", "até a sexta", "essa sexta" are dates.
       - "último"/"última" (``last``), with the same rules ("a última vez" and "último pedido" are no references).
       - "do meio" ("a do meio", "o do meio"): ``attributes=(MIDDLE,)``, with MIDDLE = "do meio" (a value no
         message yields as an attribute); :func:`resolve` gives the middle item (the two middle ones when their
         number is even).
       - "o mais barato", "a mais em conta", "o de menor preço" -> ``cheapest``; "o mais caro" -> ``priciest``.
         The superlative words are flags only: they are not repeated in ``attributes`` (which :func:`resolve`
         matches against item descriptions), so "a azul mais barata" is ``attributes=("azul",), cheapest=True``.
       - an article (or "do/da" as above) + up to four words saying which item: "a azul", "o de couro" ->
         ("couro",), "a camiseta" -> ("camiseta",), "a sem manga" -> ("sem", "manga"), "a camiseta da nike" ->
         ("camiseta", "nike"). The words are normalised as typed (no stemming: resolve() compares stems);
         "de/do/da/com" between them are left out; they stop at a chat word (``catalog.search.STOPWORDS``), a
         service or verb word ("cartão", "vem", "fica"...), a number, a size, "e"/"ou" or punctuation. An article
         followed by none of these ("o frete", "a entrega", "o que") is no reference.
       - demonstratives (whole words only: never in "essencial", "estampa"): "esse/essa/esses/essas/este/isto/
         aquele/aquela/desse/dessa/deste/desta/disso/nesse/nessa/daquele...", "esse mesmo", "essa aqui", "o
         mesmo", "esta" only where it cannot be the verb ("quero esta", "esta aqui", at the end), "isso" except
         as an answer ("isso", "isso mesmo", "é isso", "por isso"), "ele/ela" only as an object ("quero ele",
         "manda ela", "pode ser ela", "fico com ele"), "dele/dela" after "gostei/amei..." or a quantity ("2 dela").
         Before a word of time ("essa semana", "esse mês", "essa sexta") they are no reference. Words after one
         become its attributes: "essa azul" -> demonstrative, ("azul",).
   * **quantity** (the first one said): a number + "unidades/un/peças/pares/par/itens" ("3 unidades", "um par");
     a number 1-10 (digit or word, "um/uma" included) + "do/da/desse/dessa/dela..." ("2 do 1", "duas da primeira",
     "um do 2", "2 dessa"); "mais um/uma/2" ("mais um" -> 1); "2x" (not "em 3x", "3x sem juros"); a number 1-10
     + a product or colour word ("quero 2 camisetas"). "um/uma" before a noun is an article: no quantity.
   * **size** (the first one said): after "tamanho/tam/tm/numero/num/numeração/nº/no/na/nr/calço/uso/visto/
     veste/size" any number up to two digits ("no 42", "numero 40", "na 3") or letter size ("tam G", "no M");
     after "tamanho/tam/tm" also "único"/"u"/"un" -> "Único" (as the demo catalog writes it); a letter size on
     its own (PP P M G GG XG XGG EG EGG G1-G5, upper case as typed: "o GG", "a preta P", "M"), "p" not when it
     means "para" ("p minha filha", same test as parse_query); a number 11-60 with no cue ("tem 42?", "o 42"),
     unless a unit ("15 anos", "20 cm") or a price word ("custa 30") goes with it; "37 38"/"37 ou 38"/"37/38" ->
     "37/38". Numbers 1-10 are sizes only after a cue.
   * **colour**: ``catalog.index.find_colours`` over the words, the first one, as ``parse_query`` reports it.
   * **date** (the first one said), relative to ``today``: "hoje/hj", "amanhã", "depois de amanhã", "ontem",
     "anteontem", weekdays ("sexta", "sábado", "2a feira"), "dia 12", "12 de novembro", "12/11", "12/11/2025".
     A weekday or a day alone ("dia 12") is the next one on or after today ("próxima sexta", "sexta que vem":
     strictly after); a day and month without a year the nearest one (a tie goes to the future). When the
     message speaks of the past ("comprei", "paguei", "pedi", "chegou", "recebi", "fiz", "foi", "passada"...)
     each is the last one on or before today ("sexta passada": strictly before).
   * ``rest``: the normalised words minus those read as structure: the words of references (articles,
     numbers, ordinals, "último", demonstratives, item nouns, superlatives, "do meio"), of quantities, sizes
     (with their cue), money, dates and order numbers; then minus the chat words of
     ``catalog.search.STOPWORDS``. Attribute words, colours and product words stay: "quero o 1 tamanho G azul"
     -> "azul", "quero a camiseta preta" -> "camiseta preta", "tem esse em vermelho tam M?" -> "vermelho".

:func:`resolve` turns a reference into 1-based positions of a list shown to the shopper (see its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from unidecode import unidecode

from catalog.index import COLOUR_PHRASES, COLOUR_WORDS, LETTER_SIZES, find_colours, stem
from catalog.search import (
    PRICE_CUES,
    QUANTITY_AFTER,
    QUANTITY_CUES,
    STOPWORDS,
    similarity,
)
from core.text import normalize

T = TypeVar("T")

MAX_CHARS = 500  # a longer message is read up to here
MIDDLE = "do meio"  # the attribute of "a do meio": resolve() gives the middle item
ONE_SIZE = "Único"  # "tamanho único", as the catalog writes it (models/demo.py)


@dataclass(frozen=True)
class ItemRef:
    index: int | None = None  # 1-based position named: "o 2", "item 1", "a primeira", "2ª"
    last: bool = False  # "o último", "a ultima"
    demonstrative: bool = False  # "esse", "essa aqui", "quero ele": the caller resolves it against its focus
    attributes: tuple[str, ...] = ()  # words saying which item: "a azul" -> ("azul",); "a do meio" -> (MIDDLE,)
    cheapest: bool = False  # "o mais barato"
    priciest: bool = False  # "o mais caro"


@dataclass(frozen=True)
class Entities:
    refs: tuple[ItemRef, ...] = ()  # item references, in the message's order
    quantity: int | None = None  # "2 do 1" -> 2, "3 unidades", "mais um" -> 1; None when not said
    size: str | None = None  # "42", "37/38", "M", "GG", "Único"
    color: str | None = None  # canonical, as catalog.search.parse_query reports it: "preto", "azul marinho"
    money: Decimal | None = None  # "R$ 59,90" -> Decimal("59.90")
    money_max: bool = False  # "até", "no máximo", "menos de" before the amount
    date: date | None = None  # "amanhã", "sexta", "dia 12", "12/11", relative to the given today
    order_number: str | None = None  # "pedido #A-1001" -> "A-1001"
    rest: str = ""  # the normalised words left to describe a variant or a search (module docstring)


# --- vocabularies ---------------------------------------------------------------------------------------------

_NUMBER_WORDS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5, "seis": 6, "sete": 7,
                 "oito": 8, "nove": 9, "dez": 10}
_ORDINALS = {f"{base}{ending}": value
             for value, base in enumerate(("primeir", "segund", "terceir", "quart", "quint", "sext", "setim",
                                           "oitav", "non", "decim"), 1)
             for ending in "oa"}
_ORDINALS.update({"primero": 1, "primera": 1, "pimeiro": 1, "pimeira": 1, "terseiro": 3, "terseira": 3})
_ORDINAL_ABBREVIATION = re.compile(r"^(10|[1-9])[oa]$")  # "1o", "2a", "10o" ("1º", "2ª" once read)
_LAST = {"ultimo", "ultima", "utimo", "utima", "ultmo", "ultma"}
_WEEKDAYS = {"segunda": 0, "terca": 1, "quarta": 2, "quinta": 3, "sexta": 4, "sabado": 5, "domingo": 6}
_WEEKDAY_ABBREVIATION = re.compile(r"^([2-6])a$")  # "2a feira" .. "6a feira"
_AMBIGUOUS = {"segunda", "quarta", "quinta", "sexta"}  # weekdays that are also ordinals
_FEIRA = {"feira", "fera", "feria"}
_MONTHS = {name: number for number, names in enumerate(
    ("janeiro jan", "fevereiro fev", "marco mar", "abril abr", "maio mai", "junho jun", "julho jul",
     "agosto ago", "setembro set", "outubro out", "novembro nov", "dezembro dez"), 1) for name in names.split()}
_TODAY = {"hoje", "hj", "oje", "hje"}
_TOMORROW = {"amanha", "amanhan", "amnh", "amanh", "amanah"}
_YESTERDAY = {"ontem", "onte"}
# Words that put a weekday in the past, or the whole message ("comprei dia 12").
_PAST = {"passado", "passada", "comprei", "paguei", "pedi", "fiz", "recebi", "chegou", "foi", "veio", "enviaram",
         "enviou", "mandaram", "mandou", "postaram", "postou", "fechei", "efetuei", "realizei", "comprou", "pagou",
         "entregaram", "entregou", "pediu", "comprado", "pago"}
_NEXT = {"proxima", "proximo"}
# Before an ambiguous weekday-ordinal's article: the weekday ("até a sexta", "a partir da segunda").
_DATE_PREPOSITIONS = {"ate", "para", "pra", "de", "desde", "partir", "antes", "depois", "chega", "chegar", "chegam",
                      "chegaria", "entrega", "entregar", "entregam", "entregue", "envia", "enviam", "recebo",
                      "receber", "proxima", "nessa", "essa", "esta", "nesta", "dia"}
# After an ordinal, "último" or a demonstrative: the word speaks of time or of an order, not of a listed item.
_TIME_WORDS = {"vez", "vezes", "semana", "semanas", "mes", "meses", "ano", "anos", "fim", "final", "hora", "horas",
               "momento", "minuto", "minutos", "dia", "dias", "noite", "tarde", "manha", "tempo", "caso", "horario",
               "pedido", "pedidos", "compra", "compras", "mensagem", "msg", "unidade", "unidades", "chance",
               "parcela", "parcelas", "data", "feira", "fera", *_WEEKDAYS, *_FEIRA}
_ARTICLES = {"o", "a"}
_PLURAL_ARTICLES = {"os", "as"}
_CONTRACTIONS = {"do", "da", "pelo", "pela", "ao"}
_ITEM_NOUNS = {"item", "opcao", "opcoes", "opc", "op", "opt", "opicao", "produto", "foto", "modelo", "n"}
_CONNECTORS = {"de", "do", "da", "dos", "das", "com"}
_DEMONSTRATIVES = {"esse", "essa", "esses", "essas", "este", "estes", "estas", "isto", "aquele", "aquela",
                   "aqueles", "aquelas", "aquilo", "desse", "dessa", "desses", "dessas", "deste", "desta", "destes",
                   "destas", "disso", "disto", "daquele", "daquela", "daquilo", "nesse", "nessa", "neste", "nesta",
                   "naquele", "naquela", "esta", "ese", "essi", "dese", "desa"}
_DEMONSTRATIVE_TAILS = {"aqui", "ai", "ae", "ali", "la", "mesmo", "mesma", "msm"}
_OBJECT_VERBS = {"quero", "queria", "kero", "qro", "qria", "keria", "qr", "levo", "levar", "leva", "levaria",
                 "compro", "comprar", "compraria", "pego", "pegar", "manda", "mandar", "separa", "separar", "separe",
                 "reserva", "reservar", "reserve", "ser", "prefiro", "escolho", "escolhi", "amei", "adorei", "gostei",
                 "vejo", "ver", "mostra", "mostrar", "envia", "enviar", "fecha", "fechar"}
_LIKE_VERBS = {"gostei", "gosto", "amei", "adorei", "curti", "gostamos", "gostou", "amou"}
_STAY_WITH = {"fico", "fica", "vou", "ficar", "ficaria", "ficamos"}
# Words after which a bare digit is an item and not a quantity: "quero 2 por favor", "1 e 3".
_REF_FOLLOWERS = {"e", "ou", "por", "favor", "pf", "pfv", "pfvr", "pls", "entao", "ai", "ae", "mesmo", "msm",
                  "obrigado", "obrigada", "obg", "vlw", "valeu", "ok", "blz", "pode", "tambem", "tb", "tbm", "so",
                  "da", "do", "lista", "ne", "sim", "isso"}
_UNITS = QUANTITY_AFTER | {"unidade", "unid", "peca", "pecinhas", "pecas", "parzinho", "item", "kits"}
_OF = {"do", "da", "dos", "das", "de", "desse", "dessa", "desses", "dessas", "deste", "desta", "disso", "daquele",
       "daquela", "dele", "dela"}
# Sizes
_SIZE_CUES = {"tamanho", "tamanhos", "tamano", "tamanhu", "tam", "tm", "numero", "num", "numeracao", "no", "na",
              "nr", "calco", "uso", "visto", "veste", "size"}
_STRONG_SIZE_CUES = {"tamanho", "tamanhos", "tamano", "tamanhu", "tam", "tm"}  # "tamanho único", "tam u"
_ONE_SIZE_WORDS = {"unico", "unica", "u", "un", "uni"}
_NOT_SIZE_UNITS = {"anos", "ano", "meses", "mes", "dias", "dia", "horas", "hora", "h", "min", "minutos", "cm", "mm",
                   "kg", "g", "gramas", "l", "litros", "ml", "gb", "porcento", "x", "vezes", "semanas", "km", "m2",
                   "metros", "reais", "real"}
# Words that end a reference's attributes (besides STOPWORDS): service words and common verbs.
_NOT_ATTRIBUTES = {"vista", "partir", "cartao", "credito", "debito", "dinheiro", "troco", "codigo", "cupom", "desconto",
                   "nota", "fiscal", "vem", "veio", "fica", "ficou", "serve", "serviu", "sai", "saiu", "chega", "cabe",
                   "combina", "eh", "era", "estao", "vai", "vale", "acabou", "esgotou", "volta", "voltou",
                   "custando", "sera", "tenho", "deu", "da", "ficaria", "parece", "demora", "chegar", "cor", "cores",
                   "tamanho", "tamanhos", "quantos", "quantas", "primeira", "segunda", "ultima", "ultimo", "mesma",
                   "mesmo", "resto", "total", "todos", "todas", "tudo", "nada", "nenhum", "nenhuma", "cima", "baixo",
                   "kkk", "kk", "rs", "haha", *_SIZE_CUES, *_WEEKDAYS, *_TODAY, *_TOMORROW, *_YESTERDAY}
_BOUNDARIES = {",", ";", "!", "?", "|"}
_SIZE_PRICE_CUES = PRICE_CUES - {"ate"}
_CHEAP = {"barato", "barata", "baratos", "baratas", "baratinho", "baratinha", "economico", "economica", "acessivel"}
_PRICEY = {"caro", "cara", "caros", "caras", "carinho", "carinha"}

# --- regular expressions, on the lowered unaccented text with its punctuation ---------------------------------

_ESTA_VERB = re.compile(r"(?<!\w)est[áÁ](?!\w)")
_LETTER_RUNS = re.compile(r"([a-z])\1{2,}")
_TOKENS = re.compile(r"[a-z0-9]+|[,;!?|]")
_CODE = r"((?:[a-z]{1,4}-?)?\d[\d-]*[a-z0-9]*)"
_ORDER = re.compile(r"(?<![a-z0-9])(?:pedidos?|encomendas?)(?:\s*(?:de|do|e|eh|o|meu|numero|num|nr|n|no|:|\.|-)"
                    r"(?![a-z0-9]))*\s*(#)?\s*" + _CODE + r"(?![a-z0-9])")
_HASH_CODE = re.compile(r"#\s*([a-z0-9]*\d[a-z0-9]*(?:-[a-z0-9]+)*)(?![a-z0-9])")
_NUMBER_ORDER = re.compile(r"(?<![a-z0-9])(?:n|no|nr|numero|num)\s*[.:]?\s*(\d{3,})(?![\d,.])")
_AMOUNT = r"(\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+[.,]\d{1,2}(?!\d)|\d+)"
_MONEY = [
    re.compile(r"(?:r\s*\$|(?<![a-z0-9])rs\.?)\s*" + _AMOUNT + r"(\s*mil(?![a-z]))?"),
    re.compile(r"(?<![\d.,])" + _AMOUNT + r"\s*(mil\s*)?(?:reais|real|conto|contos|pila|pilas|mangos?|pratas|"
               r"r\s*\$|rs(?![a-z]))(?![a-z])"),
    re.compile(r"(?<![\d.,/])" + _AMOUNT + r"\s*(mil)(?![a-z])"),
    re.compile(r"(?<![\d.,/])(\d{1,3}(?:\.\d{3})*,\d{2}|\d+\.\d{2})(?![\d.,])"),
    re.compile(r"(?<![a-z])(?:ate|no maximo|maximo|max|menos de|abaixo de|por volta de|uns|umas|faixa de|"
               r"em torno de|por)\s+(?:uns\s+|umas\s+|de\s+)?(\d{2,5})(?![\d/,.]|\s*(?:anos|dias|meses|horas|min|"
               r"unidades|pecas|pares|cm|kg))"),
]
_MONEY_MAX = re.compile(r"(?<![a-z])(?:ate|maximo|max|menos de|abaixo de|nao passe de|teto de)"
                        r"(?:\s+(?:uns|umas|de|r\s*\$|rs))*\s*$")
_BARE_MONEY_MIN = 50  # a bare number after "até", "uns": money from here, a size below ("do 38 até 42")
_SLASH_DATE = re.compile(r"(?<![\d/.,])(\d{1,2})\s*/\s*(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])")
_SIZE_PAIR = re.compile(r"(?<![\d/.,])(\d{1,2})\s*-\s*(\d{1,2})(?![\d/.,])")
_NX = re.compile(r"^(\d{1,2})x$")
_WORDS = re.compile(r"[a-z]+")
_SPACES = re.compile(r"\s+")
_SIZE_CUE_BEFORE = re.compile(r"(?<![a-z])(?:tamanho|tamanhos|tam|tm|numero|num|n|no|nr)\s*[.:]?\s*$")


# --- extraction -------------------------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    text = _ESTA_VERB.sub(" ta ", (text or "")[:MAX_CHARS])
    text = text.replace("º", "o ").replace("ª", "a ").replace("°", "o ")
    raw = _LETTER_RUNS.sub(r"\1", unidecode(text).lower())
    return _SPACES.sub(" ", raw.replace("\n", " , "))


def _decimal(value: str, thousands: bool) -> Decimal | None:
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+", value):
        value = value.replace(".", "")
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the patterns only give digits
        return None
    return amount * 1000 if thousands else amount


def _number(token: str) -> int | None:
    if token.isdigit() and len(token) <= 3:
        return int(token)
    return _NUMBER_WORDS.get(token)


def _ordinal(token: str) -> int | None:
    if token in _ORDINALS:
        return _ORDINALS[token]
    match = _ORDINAL_ABBREVIATION.match(token)
    return int(match.group(1)) if match else None


def _could_follow_a_size(word: str) -> bool:
    """After "camiseta p": a colour, another size, "e"/"ou", a number (as catalog.search reads "p")."""
    return (word in COLOUR_WORDS or word in LETTER_SIZES or word.isdigit() or word in {"e", "ou", "a", "ate"}
            or word in _BOUNDARIES or any(phrase[0] == word for phrase in COLOUR_PHRASES))


def _month_day(today: date, day: int, month: int | None, past: bool) -> date | None:
    """Day ``day`` (of ``month``, or of the nearest month) on or after today, or on or before it when ``past``."""
    step = -1 if past else 1
    if month is not None:
        for year in (today.year, today.year + step):
            try:
                found = date(year, month, day)
            except ValueError:
                return None
            if (found <= today) if past else (found >= today):
                return found
        return None
    year, month = today.year, today.month
    for _ in range(13):
        try:
            found = date(year, month, day)
        except ValueError:
            found = None
        if found and ((found <= today) if past else (found >= today)):
            return found
        month += step
        if month == 0:
            year, month = year - 1, 12
        elif month == 13:
            year, month = year + 1, 1
    return None


def _day_and_month(today: date, day: int, month: int, past: bool) -> date | None:
    """A day and month without a year: the nearest such date (a tie goes to the future), or the last one on or
    before today when the message speaks of the past."""
    if past:
        return _month_day(today, day, month, past=True)
    dates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            dates.append(date(year, month, day))
        except ValueError:
            pass
    return min(dates, key=lambda d: (abs((d - today).days), d < today)) if dates else None


def _weekday(today: date, weekday: int, mode: str) -> date:
    """mode: "future" (on or after today), "next" (after), "past" (on or before), "before" (before)."""
    if mode in ("future", "next"):
        ahead = (weekday - today.weekday()) % 7
        if ahead == 0 and mode == "next":
            ahead = 7
        return today + timedelta(days=ahead)
    back = (today.weekday() - weekday) % 7
    if back == 0 and mode == "before":
        back = 7
    return today - timedelta(days=back)


class _Reader:
    """One message, read left to right: each rule looks at the token at ``i`` and returns the index after what it
    took, or None."""

    def __init__(self, tokens: list[str], today: date, past: bool) -> None:
        self.tokens = tokens
        self.n = len(tokens)
        self.used = [False] * self.n  # read as structure: left out of ``rest``
        self.today = today
        self.past = past
        self.refs: list[ItemRef] = []
        self.quantity: int | None = None
        self.size: str | None = None
        self.date: date | None = None

    def tok(self, k: int) -> str:
        return self.tokens[k] if 0 <= k < self.n else ""

    def ends(self, k: int) -> bool:
        """Whether position ``k`` ends a phrase: past the end, or punctuation."""
        return k >= self.n or self.tokens[k] in _BOUNDARIES

    def take(self, *positions: int) -> None:
        for k in positions:
            self.used[k] = True

    def content(self, word: str) -> bool:
        return bool(word) and word not in _BOUNDARIES and word not in STOPWORDS and not word.isdigit()

    def run(self) -> None:
        i = 0
        while i < self.n:
            if self.used[i] or self.tokens[i] in _BOUNDARIES:
                i += 1
                continue
            after = (self.date_at(i) or self.quantity_at(i) or self.size_cue_at(i) or self.ref_at(i)
                     or self.number_at(i) or self.letter_size_at(i))
            i = after if after else i + 1

    # --- dates

    def set_date(self, found: date | None) -> None:
        if self.date is None and found is not None:
            self.date = found

    def date_at(self, i: int) -> int | None:
        t, nxt = self.tokens[i], self.tok(i + 1)
        if t in _TODAY:
            self.set_date(self.today)
            self.take(i)
            return i + 1
        if t in _TOMORROW:
            self.set_date(self.today + timedelta(days=1))
            self.take(i)
            return i + 1
        if t == "depois" and nxt == "de" and self.tok(i + 2) in _TOMORROW:
            self.set_date(self.today + timedelta(days=2))
            self.take(i, i + 1, i + 2)
            return i + 3
        if t in _YESTERDAY or t == "anteontem":
            self.set_date(self.today - timedelta(days=1 if t in _YESTERDAY else 2))
            self.take(i)
            return i + 1
        weekday = _WEEKDAYS.get(t)
        if weekday is None:
            match = _WEEKDAY_ABBREVIATION.match(t)
            if match and nxt in _FEIRA:
                weekday = int(match.group(1)) - 2
        if weekday is not None:
            if t in _AMBIGUOUS and nxt in _ITEM_NOUNS:
                return None  # "segunda opção": an ordinal
            end = i + 2 if nxt in _FEIRA else i + 1
            mode = "past" if self.past else "future"
            if self.tok(i - 1) in _NEXT:
                mode = "next"
                self.take(i - 1)
            elif self.tok(end) == "que" and self.tok(end + 1) == "vem":
                mode = "next"
                end += 2
            elif self.tok(end) in {"passada", "passado"}:
                mode = "before"
                end += 1
            self.set_date(_weekday(self.today, weekday, mode))
            self.take(*range(i, end))
            return end
        day_at = i + 1 if t == "dia" else i
        day = _number(self.tok(day_at)) if self.tok(day_at).isdigit() else None
        if day is not None and 1 <= day <= 31:
            month = _MONTHS.get(self.tok(day_at + 2)) if self.tok(day_at + 1) == "de" else None
            if month is not None:
                self.set_date(_day_and_month(self.today, day, month, self.past))
                self.take(*range(i, day_at + 3))
                return day_at + 3
            if t == "dia":
                self.set_date(_month_day(self.today, day, None, self.past))
                self.take(i, day_at)
                return day_at + 1
        return None

    # --- quantities

    def set_quantity(self, value: int) -> None:
        if self.quantity is None and value > 0:
            self.quantity = value

    def quantity_at(self, i: int) -> int | None:
        t, nxt = self.tokens[i], self.tok(i + 1)
        if t == "mais" and _number(nxt) is not None:
            self.set_quantity(_number(nxt))
            self.take(i, i + 1)
            return i + 2
        match = _NX.match(t)
        if match:
            if self.tok(i - 1) in {"em", "ate", "de", "por"} or nxt in {"sem", "de", "no", "juros", "cartao"}:
                return None  # "em 3x", "3x sem juros": instalments
            self.set_quantity(int(match.group(1)))
            self.take(i)
            return i + 1
        value = _number(t)
        if value is None:
            return None
        if nxt in _UNITS and not (nxt == "item" and _number(self.tok(i + 2)) is not None):
            self.set_quantity(value)
            self.take(i, i + 1)
            return i + 2
        if nxt in _OF and 1 <= value <= 10 and not (t in ("um", "uma") and nxt == "de"):
            if t.isdigit() and self.tok(i - 1) in _ARTICLES | _CONTRACTIONS | _ITEM_NOUNS:
                return None  # "o 2 de couro": a reference
            self.set_quantity(value)
            self.take(i)
            return i + 1
        return None

    # --- sizes

    def set_size(self, value: str) -> None:
        if self.size is None:
            self.size = value

    def size_number(self, i: int) -> int:
        """The size at ``i`` (a number), with a following "ou 38" / "38" one above it: the index after it."""
        t = self.tokens[i]
        nxt, then = self.tok(i + 1), self.tok(i + 2)
        if nxt.isdigit() and len(nxt) <= 2 and int(nxt) == int(t) + 1:
            self.set_size(f"{t}/{nxt}")
            self.take(i, i + 1)
            return i + 2
        if nxt == "ou" and then.isdigit() and len(then) <= 2 and int(then) == int(t) + 1:
            self.set_size(f"{t}/{then}")
            self.take(i, i + 1, i + 2)
            return i + 3
        self.set_size(t)
        self.take(i)
        return i + 1

    def size_cue_at(self, i: int) -> int | None:
        t, nxt = self.tokens[i], self.tok(i + 1)
        if t not in _SIZE_CUES:
            return None
        if nxt.isdigit() and len(nxt) <= 2:
            self.take(i)
            return self.size_number(i + 1)
        if nxt in LETTER_SIZES and not (nxt == "p" and not self.ends(i + 2)
                                        and not _could_follow_a_size(self.tok(i + 2))):
            self.set_size(nxt.upper())
            self.take(i, i + 1)
            return i + 2
        if t in _STRONG_SIZE_CUES and nxt in _ONE_SIZE_WORDS:
            self.set_size(ONE_SIZE)
            self.take(i, i + 1)
            return i + 2
        if t in {"tamanho", "tamanhos", "tam", "numero", "numeracao"}:
            self.take(i)  # the cue alone ("qual tamanho da azul?"): structure, not a word to search
            return i + 1
        return None

    def letter_size_at(self, i: int) -> int | None:
        t, nxt = self.tokens[i], self.tok(i + 1)
        if t not in LETTER_SIZES or self.tok(i - 1).isdigit():
            return None  # "500 g": grams
        if t == "p" and not self.ends(i + 1) and not _could_follow_a_size(nxt):
            return None  # "p minha filha": para
        self.set_size(t.upper())
        self.take(i)
        return i + 1

    # --- numbers with no cue

    def number_at(self, i: int) -> int | None:
        t, nxt = self.tokens[i], self.tok(i + 1)
        value = _number(t)
        if value is None or t in ("um", "uma") or self.tok(i - 1) in QUANTITY_CUES or nxt in _NOT_SIZE_UNITS:
            return None  # "kit 3 meias": part of the product
        if 1 <= value <= 10:
            if not t.isdigit():
                if self.ends(i + 1) or nxt in _REF_FOLLOWERS or self.content(nxt):
                    self.set_quantity(value)  # "quero duas", "duas pretas"
                    self.take(i)
                    return i + 1
                return None
            if self.ends(i + 1) or nxt in _REF_FOLLOWERS or nxt in _SIZE_CUES or nxt in LETTER_SIZES:
                self.refs.append(ItemRef(index=value))
                self.take(i)
                return i + 1
            if self.content(nxt):
                self.set_quantity(value)  # "quero 2 camisetas"
                self.take(i)
                return i + 1
            return None
        if t.isdigit() and 11 <= value <= 60:
            if self.tok(i - 1) in _SIZE_PRICE_CUES or nxt in _SIZE_PRICE_CUES:
                return None  # "custa 30": a price ("do 38 até 42" is a size: money after "até" is 50 or more)
            return self.size_number(i)
        return None

    # --- item references

    def ref_at(self, i: int) -> int | None:
        t = self.tokens[i]
        if t in _ITEM_NOUNS:
            return self.item_noun_at(i)
        if t in _ARTICLES or (t in _CONTRACTIONS and self.can_start(i)):
            return self.article_at(i)
        if t in _DEMONSTRATIVES or t == "isso":
            return self.demonstrative_at(i)
        if t in ("ele", "ela") and (self.tok(i - 1) in _OBJECT_VERBS or (
                self.tok(i - 1) == "com" and self.tok(i - 2) in _STAY_WITH)):
            self.refs.append(ItemRef(demonstrative=True))
            self.take(i)
            return i + 1
        if t in ("dele", "dela") and (self.tok(i - 1) in _LIKE_VERBS or (
                i > 0 and self.used[i - 1] and self.tok(i - 1).isdigit())):
            self.refs.append(ItemRef(demonstrative=True))
            self.take(i)
            return i + 1
        if (_ordinal(t) is not None or t in _LAST) and self.bare_ordinal_ok(i):
            return self.ordinal_at(i, i)
        return None

    def can_start(self, i: int) -> bool:
        """"do"/"da" start a reference after a word that is no content ("gostei da azul", "2 da azul"), not
        after one ("camiseta da nike": the brand is part of what is asked)."""
        if i == 0:
            return True
        prev = self.tokens[i - 1]
        return self.used[i - 1] or prev in _BOUNDARIES or prev in STOPWORDS or prev.isdigit()

    def bare_ordinal_ok(self, i: int) -> bool:
        """An ordinal with no article: alone, or naming the item; "primeiro queria saber" is "first"."""
        t, nxt = self.tokens[i], self.tok(i + 1)
        if t in _AMBIGUOUS:
            return nxt in _ITEM_NOUNS  # otherwise a weekday (date_at)
        if t.startswith("segund") and (self.tok(i - 1) in {"um", "uns", "1", "alguns", "poucos"}
                                       or nxt in {"o", "a", "os", "as", "ele", "ela", "voce", "vc"}):
            return False  # "só um segundo", "segundo o site"
        return (self.ends(i + 1) or nxt in _REF_FOLLOWERS or nxt in _ITEM_NOUNS or nxt in _SIZE_CUES
                or nxt in LETTER_SIZES)

    def ordinal_at(self, start: int, k: int) -> int | None:
        """The ordinal or "último" at ``k`` (an article, if any, at ``start``)."""
        t, nxt = self.tokens[k], self.tok(k + 1)
        if nxt in _TIME_WORDS:
            return None  # "a primeira vez", "último pedido"
        ref = ItemRef(last=True) if t in _LAST else ItemRef(index=_ordinal(t))
        self.refs.append(ref)
        self.take(*range(start, k + 1))
        end = k + 1
        if nxt in _ITEM_NOUNS and _number(self.tok(k + 2)) is None:
            self.take(end)  # "a segunda opção", "o primeiro item"
            end += 1
        return end

    def item_noun_at(self, i: int, start: int | None = None) -> int | None:
        k = i + 1
        if self.tok(k) == "numero":
            k += 1  # "opção número 2"
        value = _number(self.tok(k))
        if value is None or self.tok(k) in ("um", "uma") and self.tokens[i] == "n":
            return None
        if self.tokens[i] == "n" and value > 10:
            self.take(i)
            return self.size_number(k)  # "n 42"
        if not 1 <= value <= 99:
            return None
        self.refs.append(ItemRef(index=value))
        self.take(*range(i if start is None else start, k + 1))
        return k + 1

    def article_at(self, i: int) -> int | None:
        t = self.tokens[i]
        k = i + 1
        nxt = self.tok(k)
        if nxt in _ITEM_NOUNS and nxt != "n":
            return self.item_noun_at(k, start=i)
        value = _number(nxt)
        if value is not None and nxt.isdigit():
            if 1 <= value <= 10 and self.tok(k + 1) not in _UNITS and self.tok(k + 1) not in _NOT_SIZE_UNITS:
                self.refs.append(ItemRef(index=value))
                self.take(i, k)
                return k + 1
            return None  # "o 42": a size (number_at)
        if value is not None and nxt not in ("um", "uma") and t in _ARTICLES:
            self.refs.append(ItemRef(index=value))  # "quero o dois"
            self.take(i, k)
            return k + 1
        if nxt in _AMBIGUOUS and (self.tok(k + 1) in _FEIRA or self.tok(i - 1) in _DATE_PREPOSITIONS
                                  or t == "ao"):
            return None  # "até a sexta", "a segunda feira": a weekday
        if _ordinal(nxt) is not None or nxt in _LAST:
            return self.ordinal_at(i, k)
        if nxt in ("mesmo", "mesma") and t in _ARTICLES:
            self.refs.append(ItemRef(demonstrative=True))  # "quero o mesmo"
            self.take(i, k)
            return k + 1
        return self.attributes_at(i, k, ItemRef())

    def demonstrative_at(self, i: int) -> int | None:
        t, nxt, prev = self.tokens[i], self.tok(i + 1), self.tok(i - 1)
        if nxt in _TIME_WORDS or nxt in _NEXT:
            return None  # "essa semana", "essa sexta"
        if t in ("esta", "estas") and not (self.ends(i + 1) or nxt in _DEMONSTRATIVE_TAILS or prev in _OBJECT_VERBS):
            return None  # "esta disponivel?": the verb, typed without its accent
        if t in ("isso", "isto"):
            if nxt in _DEMONSTRATIVE_TAILS or prev in {"por", "e", "eh", "so", "nem", "tudo", "sobre", "como"}:
                return None  # "isso mesmo", "é isso", "por isso"
            if all(w in _BOUNDARIES or w == t for w in self.tokens):
                return None  # "isso!": an answer
        self.take(i)
        k = i + 1
        while self.tok(k) in _DEMONSTRATIVE_TAILS:
            self.take(k)  # "esse mesmo", "essa aqui"
            k += 1
        return self.attributes_at(i, k, ItemRef(demonstrative=True))

    def attributes_at(self, i: int, k: int, ref: ItemRef) -> int | None:
        """Words from ``k`` saying which item (``i`` is the article or demonstrative): up to four, with the
        superlatives and "do meio". The reference is kept when it says anything (or is a demonstrative)."""
        words: list[str] = []
        structure: list[int] = []
        cheapest = priciest = middle = False
        while k < self.n and len(words) < 4:
            t, nxt = self.tokens[k], self.tok(k + 1)
            if t in _CONNECTORS and nxt and (nxt == "meio" or self.attribute_word(nxt)
                                             or nxt in ("mais", "menor", "maior")):
                structure.append(k)
                k += 1
                continue
            if t == "mais" and nxt in _CHEAP | _PRICEY:
                cheapest, priciest = cheapest or nxt in _CHEAP, priciest or nxt in _PRICEY
                structure += [k, k + 1]
                k += 2
                continue
            if t == "mais" and nxt == "em" and self.tok(k + 2) == "conta":
                cheapest = True
                structure += [k, k + 1, k + 2]
                k += 3
                continue
            if t in ("menor", "maior") and nxt in ("preco", "valor"):
                cheapest, priciest = cheapest or t == "menor", priciest or t == "maior"
                structure += [k, k + 1]
                k += 2
                continue
            if t == "meio" and self.tok(k - 1) in ("do", "da"):
                middle = True
                structure.append(k)
                k += 1
                continue
            if not self.attribute_word(t) or t in _CONNECTORS:
                break
            words.append(t)
            k += 1
        attributes = tuple(words) + ((MIDDLE,) if middle else ())
        if not (attributes or cheapest or priciest or ref.demonstrative):
            return None
        self.refs.append(ItemRef(index=ref.index, last=ref.last, demonstrative=ref.demonstrative,
                                 attributes=attributes, cheapest=cheapest, priciest=priciest))
        self.take(i, *structure)
        return k

    def attribute_word(self, word: str) -> bool:
        return (len(word) >= 2 and word.isalpha() and word not in STOPWORDS and word not in _NOT_ATTRIBUTES
                and word not in LETTER_SIZES and word not in _DEMONSTRATIVES and word not in _ORDINALS
                and word not in _LAST and word not in _BOUNDARIES and word not in _NUMBER_WORDS
                and word not in _ITEM_NOUNS and word not in _PLURAL_ARTICLES)


def extract(text: str, *, today: date | None = None) -> Entities:
    """The entities of one chat message (module docstring). ``today`` anchors relative dates (default: the
    machine's date)."""
    today = today or date.today()
    raw = _prepare(text)
    order_number: str | None = None
    money: Decimal | None = None
    money_max = False
    found_date: date | None = None
    size: str | None = None

    def cut(match: re.Match) -> None:
        nonlocal raw
        raw = raw[:match.start()] + " | " + raw[match.end():]

    # Order numbers: "pedido 12" is none, but its number is no size either; "pedido de 2 camisetas" is left alone.
    match = _ORDER.search(raw)
    if match:
        code = match.group(2).strip("-")
        if match.group(1) or sum(c.isdigit() for c in code) >= 3:
            order_number = code.upper()
            cut(match)
        elif not re.search(r"(?<![a-z])de(?![a-z])", match.group(0)):
            cut(match)
    for pattern in (_HASH_CODE, _NUMBER_ORDER):
        match = pattern.search(raw)
        if match:
            order_number = order_number or match.group(1).strip("-").upper()
            cut(match)
    # Money: an amount with its currency first ("uns 200 conto"), a bare one after "até"/"uns" otherwise.
    found = [(m.start(), position, m) for position, m in enumerate(p.search(raw) for p in _MONEY[:4]) if m]
    if found:
        _, position, match = min(found, key=lambda f: f[0])
        money = _decimal(match.group(1), position < 3 and bool(match.group(2)))
        cue = _MONEY_MAX.search(raw[:match.start()])
        money_max = bool(cue)
        raw = raw[:cue.start() if cue else match.start()] + " | " + raw[match.end():]
    else:
        match = _MONEY[4].search(raw)
        if match and int(match.group(1)) >= _BARE_MONEY_MIN:
            money = Decimal(match.group(1))
            money_max = bool(_MONEY_MAX.search(raw[:match.start(1)]))
            cut(match)
    past = bool(_PAST.intersection(_WORDS.findall(raw)))
    # "12/11" is a date; "37/38", and "1/2" after a size cue, a size.
    for _ in range(4):  # the first few: a message has one or two
        match = _SLASH_DATE.search(raw)
        if not match:
            break
        day, month, year = int(match.group(1)), int(match.group(2)), match.group(3)
        after_cue = _SIZE_CUE_BEFORE.search(raw[:match.start()])
        if 1 <= day <= 31 and 1 <= month <= 12 and not after_cue:
            if year:
                try:
                    found_date = found_date or date(int(year) + (2000 if len(year) == 2 else 0), month, day)
                except ValueError:
                    pass
            else:
                found_date = found_date or _day_and_month(today, day, month, past)
        elif not year:
            size = size or f"{match.group(1)}/{match.group(2)}"
        cut(match)
    match = _SIZE_PAIR.search(raw)
    if match and int(match.group(2)) == int(match.group(1)) + 1:
        size = size or f"{match.group(1)}/{match.group(2)}"
        cut(match)

    tokens = _TOKENS.findall(raw)
    reader = _Reader(tokens, today, past)
    reader.size, reader.date = size, found_date
    reader.run()
    colours = find_colours([t for t in tokens if t not in _BOUNDARIES])
    rest = " ".join(t for t, used in zip(tokens, reader.used)
                    if not used and t not in _BOUNDARIES and t not in STOPWORDS)
    return Entities(refs=tuple(reader.refs), quantity=reader.quantity, size=reader.size,
                    color=colours[0][2] if colours else None, money=money, money_max=money_max, date=reader.date,
                    order_number=order_number, rest=rest)


# --- resolution -------------------------------------------------------------------------------------------------


def _word_matches(word: str, words: list[str], stems: set[str]) -> bool:
    """Whether an attribute word names one of a description's words: the same word, the same stem ("pretas" and
    "preto"), the same colour ("black" and "preto"; colours are never matched loosely: "preta" is not "prata"),
    or, for words of five letters or more, a typo or a sound-alike spelling ("camizeta", "tenys", "jaketa")."""
    if word in words or stem(word) in stems:
        return True
    colour = COLOUR_WORDS.get(word)
    if colour is not None:
        return any(COLOUR_WORDS.get(w) == colour for w in words)
    if len(word) < 5:
        return False
    return any(len(w) >= 4 and w not in COLOUR_WORDS and abs(len(w) - len(word)) <= 2
               and similarity(word, w) >= 0.85 for w in words)


def resolve(ref: ItemRef, items: Sequence[T], describe: Callable[[T], str],
            price: Callable[[T], Decimal] | None = None) -> list[int]:
    """The 1-based positions in ``items`` that ``ref`` points to, in order.

    * ``index``: ``[index]`` when in range, else ``[]`` (an index wins over anything else the reference says);
    * ``last``: ``[len(items)]``;
    * ``demonstrative``: ``[]``: "esse" points to what the conversation is about, which only the caller knows
      (with attributes, it may call resolve again on ``replace(ref, demonstrative=False)``);
    * ``attributes``: every item whose ``describe(item)`` (normalised) has all the words (:func:`_word_matches`);
      ``MIDDLE`` among them: the middle one of those (the two middle ones when their number is even);
    * ``cheapest`` / ``priciest``: of those (all items when no attribute), the ones at the lowest / highest
      ``price`` (several on a tie; ``[]`` without ``price``; an item whose price is None is left out).

    A reference that says nothing resolvable gives ``[]``.
    """
    count = len(items)
    if ref.index is not None:
        return [ref.index] if 1 <= ref.index <= count else []
    if ref.last:
        return [count] if count else []
    if ref.demonstrative:
        return []
    words = [w for w in ref.attributes if w != MIDDLE]
    middle = MIDDLE in ref.attributes
    if not (words or middle or ref.cheapest or ref.priciest):
        return []
    positions = list(range(1, count + 1))
    if words:
        kept = []
        for position in positions:
            described = normalize(describe(items[position - 1])).split()
            stems = {stem(w) for w in described}
            if all(_word_matches(w, described, stems) for w in words):
                kept.append(position)
        positions = kept
    if middle and positions:
        half, odd = divmod(len(positions), 2)
        positions = positions[half:half + 1] if odd else positions[half - 1:half + 1]
    if ref.cheapest or ref.priciest:
        if price is None:
            return []
        prices = {p: price(items[p - 1]) for p in positions}
        prices = {p: v for p, v in prices.items() if v is not None}
        if not prices:
            return []
        target = min(prices.values()) if ref.cheapest else max(prices.values())
        positions = [p for p, v in prices.items() if v == target]
    return positions
