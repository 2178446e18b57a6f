"""Catalog search for chat text, in the database: "tem tenis pretu 42?" -> the black running shoe in 42.

1. :func:`parse_query` (deterministic, no database): normalise (lower case, no accents, a letter typed three
   times once: "lindooo"), read the size ("42", "38/39", "37 38", "M", "tam G", "nº 40", "calço 38"; a "p"
   followed by a word that cannot follow a size is "para"), the colour (a fixed list of Portuguese colours in
   all their forms, compound ones like "azul marinho" and "cor de pele" included), a known brand ("nike"), and
   keep the other words minus stop words (chat filler, the people a gift is for, the shop's service words).
2. Each word becomes one or more index terms (:func:`catalog.index.stem`: plural and gender forms share one),
   tried in order until one is in the catalog: the word itself; its diminutive's base ("rasteirinha" ->
   rasteira); a synonym ("casaco" -> jaqueta); a mistyped colour ("pretu" -> preto); a catalog word it begins;
   two catalog words typed as one ("calcajeans"); the catalog words close to it (typos: "tenys", "camizeta",
   "moleton", "kalsa": the vocabulary's trigram index gives a few dozen candidates for the word and for its usual
   spelling, scored here by edit distance and by a Portuguese sound-alike key). A word with no match is left out.
3. The index returns the products holding every word (each as any of its terms) in the name, brand or
   category, then anywhere, then the first word (it names the product) and as many of the others as possible,
   then the products a later word names ("calça legging"), with the colour and size as filters: at most ``CANDIDATES`` rows, ranked by the database (bm25 / ts_rank).
   When nothing has the size, or the colour, the same again without them, for ``other_sizes`` / ``other_colors``.
4. Those rows are scored here (words matched, in which field, how exactly, how much of the name they cover),
   and only the best few are loaded with their variants: variants of the asked colour and size, available first.
   A product that has the size but sold out goes to ``out_of_size`` (with the sizes it still has); one that
   never had it is not "sold out" (it is in ``other_sizes`` only when nothing has the size).

Cost grows with the matches, not the catalog: a few indexed lookups and at most a few hundred rows read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload
from unidecode import unidecode

from catalog.index import (
    COLOUR_MODIFIERS,
    COLOUR_PHRASES,
    COLOUR_WORDS,
    LETTER_SIZES,
    colour_base,
    colour_token,
    colours_of,
    diminutive_base,
    find_colours,
    size_keys,
    size_token,
    stem,
)
from core.text import normalize
from models import Product, Variant

MAX_QUERY_WORDS = 8
MAX_QUERY_CHARS = 300
CANDIDATES = 200  # index rows scored in Python, at most, per query
LOAD_BATCH = 12  # products loaded with their variants at a time, best first
MAX_LOADED = 60  # products loaded at most per query
SIMILAR_WORDS = 40  # vocabulary candidates per mistyped word
PREFIXED_WORDS = 8  # vocabulary words a truncated word may begin
STOPWORDS = {
    "tem", "tens", "teria", "tenho", "voce", "voces", "vcs", "vc", "ce", "quero", "queria", "procuro", "procurando",
    "busco", "buscar", "buscando", "algum", "alguma", "alguns", "algumas", "um", "uma", "uns", "umas", "o", "a", "os",
    "as", "de", "do", "da", "dos", "das", "com", "c", "pra", "pro", "para", "por", "favor", "pf", "pfv", "pfvr", "me",
    "mostra", "mostrar", "mostre", "ver", "e", "ou", "no", "na", "nos", "nas", "em", "tamanho", "tamanhos", "tam", "n",
    "numero", "cor", "cores", "ai", "ae", "ola", "oi", "oie", "gostaria", "preciso", "precisava", "que", "q", "qual",
    "quais", "tipo", "modelo", "modelos", "opcoes", "opcao", "ter", "bom", "boa", "dia", "tarde", "noite", "tudo",
    "bem", "obrigado", "obrigada", "vlw", "valeu", "gente", "moca", "amiga", "amigo", "ainda", "hoje", "agora",
    "esse", "essa", "esses", "essas", "este", "esta", "isso", "aquele", "aquela", "meu", "minha", "seu", "sua",
    "mais", "muito", "muita", "so", "tb", "tbm", "tambem", "ta", "to", "tou", "estou", "atras", "comprar",
    "compra", "preco", "precos", "quanto", "custa", "valor", "disponivel", "disponiveis", "estoque", "vende",
    "vendem", "vendendo", "eai", "blz", "beleza", "alguem", "aqui", "ja", "sim", "nao", "outro",
    "outra", "outros", "outras", "coisa", "algo", "barato", "barata", "baratos", "baratas", "bonito", "bonita",
    "lindo", "linda", "legal", "pode", "poderia", "sera", "seria", "saber", "gostei", "olhar",
    "numeracao", "encontrar", "achar", "acho", "consigo", "loja", "site", "pfvor", "qro", "qria", "kero",
    "keria", "qr", "pq", "oq", "msm", "mto", "mt", "td", "tds", "hj", "agr", "ctz", "tdb", "oii",
    "oiee", "opa", "boas", "bdia", "bnoite", "btarde", "procurava", "interesse", "interessada",
    "interessado", "veria", "mandar", "manda", "foto", "fotos", "link", "se", "sobre", "mim", "separa",
    "separar", "separe", "envia", "enviar", "levar", "levo", "vi", "vimos", "viu", "achei", "desse", "dessa",
    "deste", "desta", "daquele", "daquela", "disso", "nesse", "nessa", "neste", "nesta", "temos",
    "queremos", "procurei", "ate", "estilo", "parecido", "parecida", "igual", "mesmo", "mesma", "porfavor", "urgente", "rapido", "precisando", "existe", "existem", "chegou", "chegaram", "novo",
    "nova", "novos", "novas", "marido", "esposa", "esposo", "namorado", "namorada",
    "filho", "filha", "filhos", "filhas", "mae", "pai", "irmao", "irma", "sobrinho", "sobrinha", "neto", "neta",
    "sogra", "namorido", "pedido", "pedidos", "entrega", "frete", "obrigado", "obrigada", "brigado", "brigada",
    # the shop's service, not its products: a search made of these finds nothing
    "prazo", "entregar", "entregam", "envio", "enviam", "pagamento", "pagar", "pix", "boleto", "parcela", "parcelas",
    "parcelar", "juros", "troca", "trocar", "devolucao", "devolver", "reembolso", "horario", "endereco", "cep",
    "rastreio", "rastreamento", "rastrear", "cancelar", "cancelamento", "atendente", "atendimento", "humano",
}
# Words that say "I am looking for a product": with them, an empty result is "not found", not "not understood".
SEARCH_CUES = {"tem", "tens", "teria", "quero", "queria", "procuro", "procurando", "busco", "vende", "vendem",
               "preciso", "gostaria"}

# Known brands a shopper may ask for, and what a shopper asking only for the brand most likely wants (used to
# pick alternatives when the store does not carry it). A brand of the store's own catalog is matched as a word.
KNOWN_BRANDS = {
    "nike": "tenis", "adidas": "tenis", "puma": "tenis", "mizuno": "tenis", "olympikus": "tenis", "vans": "tenis",
    "fila": "tenis", "asics": "tenis", "reebok": "tenis", "converse": "tenis", "all star": "tenis",
    "new balance": "tenis", "under armour": "tenis", "topper": "tenis", "penalty": "tenis", "umbro": "tenis",
    "kappa": "tenis", "diadora": "tenis", "havaianas": "chinelo", "ipanema": "chinelo", "rider": "chinelo",
    "grendene": "chinelo", "melissa": "sandalia", "arezzo": "sandalia", "schutz": "sandalia", "vizzano": "sandalia",
    "moleca": "sandalia", "beira rio": "sandalia", "piccadilly": "sandalia", "usaflex": "sandalia",
    "dakota": "sandalia", "farm": "vestido", "animale": "vestido", "reserva": "camisa", "hering": "camiseta",
    "lacoste": "polo", "tommy": "camisa", "tommy hilfiger": "camisa", "calvin klein": "cueca", "osklen": "camiseta",
    "colcci": "calca jeans", "levis": "calca jeans", "ellus": "calca jeans", "forum": "calca jeans",
    "oakley": "oculos", "ray ban": "oculos", "rayban": "oculos", "chilli beans": "oculos", "lupo": "meia",
    "trifil": "meia", "democrata": "sapato", "ferracini": "sapato", "pegada": "sapato", "cavalera": "camiseta",
    "zara": "", "shein": "", "renner": "", "riachuelo": "", "cea": "", "marisa": "", "track field": "legging",
    "havaiana": "chinelo", "apple": "", "apple watch": "smartwatch", "samsung": "", "crocs": "sandalia",
}
# Words around a request that name no product ("um presente pro meu marido, carteira de couro"): left out, but a
# message with nothing else ("presente para namorada") asks for no product in particular.
GIFT_WORDS = {"presente", "presentes", "presentear", "lembrancinha", "lembranca", "mimo"}
# Words that qualify a product without naming it: with an unknown brand, "adidas feminino" is a women's tênis.
QUALIFIERS = {"feminino", "feminina", "masculino", "masculina", "infantil", "unissex", "adulto", "menina", "menino",
              "kids", "juvenil", "original", "originais"}
_BRAND_PHRASES = {tuple(name.split()): name for name in KNOWN_BRANDS if " " in name}
# When a word is not in the catalog at all: what else a shop may call it.
SYNONYMS = {
    "casaco": ["jaqueta", "moletom"], "agasalho": ["moletom", "jaqueta"], "blusao": ["moletom"],
    "sneaker": ["tenis"], "tenis": ["sneaker"], "slide": ["chinelo"], "chinelo": ["slide", "rasteira"],
    "bermuda": ["short"], "short": ["bermuda"], "shorts": ["bermuda"], "coturno": ["bota"], "bota": ["coturno"],
    "papete": ["sandalia"], "cap": ["bone"], "leg": ["legging"], "legue": ["legging"],
    "mochila": ["bolsa"], "sapatenis": ["tenis"],
    "rasteirinha": ["rasteira"], "regata": ["camiseta"], "cropped": ["top"], "tenisinho": ["tenis"],
    "pisante": ["tenis"], "havaiana": ["chinelo"], "bata": ["blusa"], "sueter": ["tricot", "moletom"],
    "shortinho": ["short"], "tamanco": ["sandalia"], "scarpin": ["sapato"],
    "soutien": ["sutia"], "sutien": ["sutia"], "sutian": ["sutia"],
    "sobretudo": ["casaco", "trench", "jaqueta"], "japona": ["jaqueta"],
    "frio": ["trico", "tricot", "la", "moletom", "sueter"], "botina": ["bota"], "galocha": ["bota"],
    "macaquinho": ["macacao"], "tamanca": ["tamanco", "sandalia"], "pochete": ["bolsa"], "bolsinha": ["bolsa"],
    "calcola": ["calcinha"], "tshirt": ["camiseta"],
}
# How much a match in each field counts, and how much each way of matching a word is worth.
FIELD_WEIGHT = {"name": 1.0, "brand": 0.9, "category": 0.7, "extra": 0.35}
EXACT, DIMINUTIVE, SYNONYM, TYPO, PREFIX = 1.0, 0.95, 0.85, 0.85, 0.8
QUANTITY_CUES = {"kit", "com", "c", "pack", "pacote", "conjunto", "jogo"}
QUANTITY_AFTER = {"pecas", "pares", "par", "unidades", "un", "itens", "und"}
PRICE_CUES = {"r", "rs", "reais", "real", "ate", "menos", "custa", "conto", "contos", "pila", "mil"}
# "tamanho 42", "tam42", "nº 40" ("no 40" once unaccented), "calço 38", "uso M", "tam. G": a number may follow the cue
# at once, a letter size only after a space or a dot ("tamp", "nom" are not sizes).
_SIZE_CUE = re.compile(
    r"(?<![a-z0-9])(?:tamanho|tam|tm|numero|num|numeracao|no|n|nr|calco|uso|visto|size)"
    r"(?:\s*[.:]?\s*(\d{1,3}(?:\s*(?:/|-|ou|a|e)\s*\d{1,3})?)"
    r"|(?:\s+|\s*[.:]\s*)(pp|xp|p|m|gg|g[1-5]|g|xgg|xg|egg|eg|exg|xxg|unico))(?![a-z0-9])")
_SIZE_RANGE = re.compile(r"(?<![\d/])(\d{1,3})\s*[/-]\s*(\d{1,3})(?![\d/])")
_COLOUR_STEMS = {stem(w) for w in COLOUR_WORDS} | {stem(w) for w in COLOUR_MODIFIERS}


def looks_like_search(text: str) -> bool:
    return bool(set(normalize(text[:MAX_QUERY_CHARS]).split()[:4]) & SEARCH_CUES)


@dataclass
class Query:
    words: list[str]  # normalised content words, in order (no stop words, colour, size or known brand)
    size: str | None = None  # as typed, normalised: "42", "37/38", "M"
    color: str | None = None  # canonical: "preto", "azul marinho"
    brand: str | None = None  # a known brand ("nike"): whether the store carries it is the search's business
    gift: bool = False  # the message speaks of a gift (GIFT_WORDS, left out of ``words``)


@dataclass
class Hit:
    product: Product
    # The product's active variants matching the asked colour and size (all active ones when none asked),
    # available first.
    variants: list[Variant]
    # The active variants of the asked colour (all active ones when none asked): what available_sizes reads.
    pool: list[Variant] = field(default_factory=list, repr=False, compare=False)

    @property
    def available_sizes(self) -> list[str]:
        """Sizes with an available variant (of the asked colour, if any), in the shop's order."""
        return list(dict.fromkeys(v.size for v in (self.pool or self.variants) if v.available and v.size))


@dataclass
class SearchResult:
    hits: list[Hit] = field(default_factory=list)  # best first, at most `limit`
    size: str | None = None  # the size asked for, as written in the catalog when it matched one, else as typed
    color: str | None = None  # the colour asked for, normalised ("preto")
    out_of_size: list[Hit] = field(default_factory=list)  # has the asked size, but every such variant sold out
    unknown_brand: str | None = None  # a brand the store does not carry; hits are the closest alternatives
    # Only when no product has the asked size (in the asked colour): products matching the rest, which never had
    # it, with their sizes ("não temos o 37; temos 38 a 43"). Never "em falta".
    other_sizes: list[Hit] = field(default_factory=list)
    # Only when no product matches in the asked colour: the same products in the colours they have.
    other_colors: list[Hit] = field(default_factory=list)

    @property
    def products(self) -> list[Product]:
        return [h.product for h in self.hits]

    @property
    def shown(self) -> list[Hit]:
        """What the shopper is shown, in order: the matches, then those whose asked size sold out; when nothing
        comes in the asked size (or colour), the products that match the rest, in the sizes (colours) they have."""
        return [*self.hits, *self.out_of_size] or self.other_sizes or self.other_colors


# --- query understanding --------------------------------------------------------------------------------


def _display_size(value: str) -> str:
    value = re.sub(r"\s*(?:/|-|ou|a|e)\s*", "/", value.strip()) if re.match(r"^\d", value) else value
    return value.upper() if not value[0].isdigit() else value


def _could_follow_a_size(word: str) -> bool:
    """After "camiseta p": a colour, another size, "e"/"ou" ("p ou m"), a number; not "meu", "notebook"."""
    return (word in COLOUR_WORDS or word in LETTER_SIZES or word.isdigit() or word in {"e", "ou", "a", "ate"}
            or any(phrase[0] == word for phrase in COLOUR_PHRASES))


def parse_query(text: str) -> Query:
    """'Tem camisetas pretas tam G?' -> Query(words=['camisetas'], size='G', color='preto')."""
    raw = unidecode((text or "")[:MAX_QUERY_CHARS].replace("º", "o").replace("°", "o")).lower()
    raw = re.sub(r"([a-z])\1{2,}", r"\1", raw)  # "obrigadaaa", "oiii", "lindooo": no Portuguese word triples a letter
    raw = re.sub(r"(?<![a-z])t[- ]shirt", "tshirt", raw)
    raw = re.sub(r"(?<![a-z])([pcs])/", lambda m: {"p": " para ", "c": " com ", "s": " sem "}[m.group(1)], raw)
    size = None
    match = _SIZE_CUE.search(raw) or _SIZE_RANGE.search(raw)
    if match:
        size = _display_size(match.group(1) or match.group(2) if match.re is _SIZE_CUE
                             else f"{match.group(1)}/{match.group(2)}")
        raw = raw[:match.start()] + " " + raw[match.end():]
    tokens = normalize(raw).split()
    colour = None
    taken: set[int] = set()
    for start, end, found in find_colours(tokens):
        colour = colour or found  # the first colour; other colours are left out
        taken.update(range(start, end))
    brand = None
    for i in range(len(tokens) - 1):
        name = _BRAND_PHRASES.get((tokens[i], tokens[i + 1]))
        if name and not taken & {i, i + 1}:
            brand = name
            taken.update({i, i + 1})
            break
    words, gift = [], False
    for i, token in enumerate(tokens):
        if i in taken:
            continue
        before, after = tokens[i - 1] if i else "", tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.isdigit() and len(token) <= 3:
            if before in QUANTITY_CUES:
                words.append(token)  # "kit 3 meias": part of the product
            elif after in QUANTITY_AFTER:
                taken.add(i + 1)  # "3 pares de meia": how many, not which
            elif before in PRICE_CUES or after in PRICE_CUES:
                pass  # "até 200 reais": a price, not a size
            elif size is None:
                size = token
            elif size.isdigit() and int(token) == int(size) + 1:
                size = f"{size}/{token}"  # "chinelo 37 38"
            continue
        if token in LETTER_SIZES and len(tokens) > 1:
            if token == "p" and after and not _could_follow_a_size(after):
                continue  # "mochila p notebook", "p meu filho": "p" is "para"
            size = size or token.upper()
            continue
        if token in GIFT_WORDS:
            gift = True
            continue
        if token in STOPWORDS or (len(token) < 2 and not token.isdigit()):
            continue
        if token in KNOWN_BRANDS and brand is None:
            brand = token
            continue
        words.append(token)
    return Query(words=words[:MAX_QUERY_WORDS], size=size, color=colour, brand=brand, gift=gift)


# --- the index, per backend ------------------------------------------------------------------------------


def _quoted(term: str) -> str:
    return '"' + term + '"'  # terms are [a-z0-9]+ (normalised), so quoting is all FTS5 needs


def _trigrams(word: str) -> list[str]:
    padded = f"_{word}_"
    return list(dict.fromkeys(padded[i:i + 3] for i in range(len(padded) - 2)))


class _Index:
    """The few lookups the search needs, on SQLite (FTS5) or PostgreSQL (tsvector, pg_trgm)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self._trgm_threshold_set = False

    def _match(self, groups: list[list[str]], strong: bool, every: bool, colour: str | None,
               sizes: list[str] | None) -> str:
        """The index query: every word (``every``), or the first word and any of the others; then the colour
        and the size. Each word is any of its terms."""
        if self.sqlite:
            columns = "{name brand category}" if strong else "{name brand category extra}"
            parts = [f"{columns} : ({' OR '.join(_quoted(t) for t in alternatives)})" for alternatives in groups]
            if not every and len(parts) > 1:
                parts = [parts[0], "(" + " OR ".join(parts[1:]) + ")"]
            if colour:
                parts.append(f"{{colors}} : {_quoted(colour)}")
            if sizes:
                parts.append(f"{{sizes}} : ({' OR '.join(_quoted(s) for s in sizes)})")
            return " AND ".join(parts)
        weight = ":AB" if strong else ""
        parts = ["(" + " | ".join(f"'{t}'{weight}" for t in alternatives) + ")" for alternatives in groups]
        if not every and len(parts) > 1:
            parts = [parts[0], "(" + " | ".join(parts[1:]) + ")"]
        if colour:
            parts.append(f"'{colour}'")
        if sizes:
            parts.append("(" + " | ".join(f"'{s}'" for s in sizes) + ")")
        return " & ".join(parts)

    def candidates(self, groups, *, strong: bool, every: bool, colour: str | None, sizes: list[str] | None,
                   limit: int = CANDIDATES) -> list[dict]:
        query = self._match(groups, strong, every, colour, sizes)
        if self.sqlite:
            # The join skips rows of products deleted without the ORM (FTS5 has no foreign keys).
            sql = ("SELECT d.rowid AS id, d.name, d.brand, d.category, d.extra FROM search_docs d "
                   "JOIN products p ON p.id = d.rowid WHERE search_docs MATCH :q "
                   "ORDER BY bm25(search_docs, 10.0, 6.0, 4.0, 0.0, 0.0, 1.0) LIMIT :n")
        else:
            sql = ("SELECT d.product_id AS id, d.name, d.brand, d.category, d.extra "
                   "FROM search_documents d, to_tsquery('simple', :q) query WHERE d.document @@ query "
                   "ORDER BY ts_rank(d.document, query) DESC, d.product_id LIMIT :n")
        return [dict(row) for row in self.session.execute(text(sql), {"q": query, "n": limit}).mappings()]

    def has_term(self, term: str, column: str | None = None) -> bool:
        if self.sqlite:
            query = f"{{{column}}} : {_quoted(term)}" if column else _quoted(term)
            sql = "SELECT 1 FROM search_docs WHERE search_docs MATCH :q LIMIT 1"
        elif column:  # the document's weights: A name, B brand and category
            query = f"'{term}':{'A' if column == 'name' else 'B'}"
            sql = "SELECT 1 FROM search_documents WHERE document @@ to_tsquery('simple', :q) LIMIT 1"
        else:  # the vocabulary's btree: over the documents, LIMIT 1 for a rare term is planned as a full scan
            query = term
            sql = "SELECT 1 FROM search_terms WHERE stem = :q LIMIT 1"
        return self.session.execute(text(sql), {"q": query}).first() is not None

    def words_starting(self, word: str) -> list[tuple[str, str]]:
        """Catalog words that ``word`` begins ("smart" -> smartwatch), a few at most."""
        if self.sqlite:
            rows = self.session.execute(text("SELECT term, stem FROM search_terms WHERE term GLOB :p AND correctable "
                                             "LIMIT :n"),
                                        {"p": f"_{word}*", "n": PREFIXED_WORDS})
            return [(term.strip("_"), term_stem) for term, term_stem in rows]
        rows = self.session.execute(text("SELECT term, stem FROM search_terms WHERE term LIKE :p AND correctable "
                                         "ORDER BY length(term), term LIMIT :n"),
                                    {"p": f"{word}%", "n": PREFIXED_WORDS})
        return [(term, term_stem) for term, term_stem in rows]

    def similar_words(self, word: str) -> list[tuple[str, str]]:
        """Catalog words sharing trigrams with ``word``: (word, its term), a few dozen at most."""
        if self.sqlite:
            query = " OR ".join(_quoted(t) for t in _trigrams(word))
            rows = self.session.execute(text("SELECT term, stem FROM search_terms WHERE search_terms MATCH :q "
                                             "AND correctable ORDER BY rank LIMIT :n"),
                                        {"q": query, "n": SIMILAR_WORDS})
            return [(term.strip("_"), term_stem) for term, term_stem in rows]
        if not self._trgm_threshold_set:  # for this transaction only (SET LOCAL); low, as SQLite's any-trigram
            # match: "jakeda" shares 0.15 of its trigrams with "jaqueta", and similarity() decides
            self.session.execute(text("SELECT set_config('pg_trgm.similarity_threshold', '0.1', true)"))
            self._trgm_threshold_set = True
        rows = self.session.execute(text("SELECT term, stem FROM search_terms WHERE term % :w AND correctable "
                                         "ORDER BY similarity(term, :w) DESC, term LIMIT :n"),
                                    {"w": word, "n": SIMILAR_WORDS})
        return [(term, term_stem) for term, term_stem in rows]


# --- typo tolerance ---------------------------------------------------------------------------------------

_SOUNDS = [("ch", "x"), ("sh", "x"), ("ph", "f"), ("lh", "li"), ("qu", "k"), ("gu", "g"), ("ss", "s"), ("sc", "s"),
           ("ce", "se"), ("ci", "si"), ("c", "k"), ("z", "s"), ("y", "i"), ("w", "v"), ("h", "")]


def _sound(word: str) -> str:
    """A rough Portuguese sound-alike key: 'xinelo' and 'chinelo', 'camizeta' and 'camiseta', 'moleton' and
    'moletom' get the same one."""
    key = word
    for spelled, sound in _SOUNDS:
        key = key.replace(spelled, sound)
    key = re.sub(r"(.)\1+", r"\1", key)
    return key[:-1] + "n" if key.endswith("m") else key


def similarity(typed: str, word: str) -> float:
    """0 (unrelated) to 1 (the same): edit distance with transpositions, on the letters and on the sounds."""
    if typed == word:
        return 1.0
    allowed = 1 if len(typed) <= 5 else 2 if len(typed) <= 9 else 3
    typed_sound, word_sound = _sound(typed), _sound(word)
    letters = OSA.distance(typed, word)
    distance = min(float(letters), OSA.distance(typed_sound, word_sound) + 0.25)
    if distance > allowed + 0.25:  # one edit more than allowed only when the rest sounds alike
        return 0.0
    if letters > allowed and typed_sound[:2] != word_sound[:2]:
        return 0.0  # alike by sound only: it must begin alike ("kalsa" is calça, "prazo" is not passo)
    if distance > 1.25 and typed[:2] != word[:2] and typed_sound[:2] != word_sound[:2]:
        return 0.0  # two slips and a different start: another word ("chuteira" is not "carteira")
    score = 1.0 - distance / max(len(typed), len(word))
    return score - (0.05 if typed[0] != word[0] else 0.0)


def _colour_typo(word: str) -> str | None:
    if len(word) < 5:
        return None
    best = min(((OSA.distance(word, form), colour) for form, colour in COLOUR_WORDS.items()
                if form[0] == word[0] and abs(len(form) - len(word)) <= 1), default=None)
    return best[1] if best and best[0] <= 1 else None


@dataclass
class _Word:
    typed: str
    alternatives: list[tuple[str, float]]  # (term, quality), best first


_RESPELL = [("k", "c"), ("x", "ch"), ("z", "s"), ("y", "i"), ("w", "v")]


def _respellings(word: str) -> list[str]:
    """The word, and as it would be spelled without the letters chat writing swaps in ("kalsa" -> calsa): a
    typo candidate must share trigrams with what was typed, and "kalsa" shares none with "calca"."""
    spellings = [word]
    for typed, usual in _RESPELL:
        if typed in word:
            spellings.append(word.replace(typed, usual))
    return list(dict.fromkeys(spellings))[:3]


def _split_joined(index: _Index, word: str) -> list[_Word] | None:
    """Two catalog words typed without the space: "calcajeans", "trenchcoat"."""
    if len(word) < 7:
        return None
    for cut in range(3, len(word) - 2):
        left, right = stem(word[:cut]), stem(word[cut:])
        if index.has_term(left) and index.has_term(right):
            return [_Word(word[:cut], [(left, TYPO)]), _Word(word[cut:], [(right, TYPO)])]
    return None


def _resolve(index: _Index, word: str, colour_wanted: bool) -> _Word | list[_Word] | str | None:
    """A query word -> its index terms (a _Word; two for two words typed as one), a colour (str) when it is a
    mistyped one, or None."""
    term = stem(word)
    if index.has_term(term):
        return _Word(word, [(term, EXACT)])
    base = diminutive_base(word)
    for candidate in (base, base + "s") if base else ():  # "rasteirinha" -> rasteira, "tenizinho" -> tenis
        if index.has_term(stem(candidate)):
            return _Word(word, [(stem(candidate), DIMINUTIVE)])
    synonyms = [stem(s) for s in SYNONYMS.get(word, []) if stem(s) != term]
    found = [(s, SYNONYM) for s in dict.fromkeys(synonyms) if index.has_term(s)]
    if found:
        return _Word(word, found)
    if colour_wanted:
        colour = _colour_typo(word)
        if colour:
            return colour
    if len(word) < 4 or not word.isalpha():
        return None
    prefixed = list(dict.fromkeys(s for w, s in index.words_starting(word) if len(w) > len(word)))
    if prefixed:
        return _Word(word, [(t, PREFIX) for t in prefixed])
    joined = _split_joined(index, word)
    if joined:
        return joined
    scored = {}
    for spelling in _respellings(word):
        for candidate, candidate_stem in index.similar_words(spelling):
            score = similarity(word, candidate)
            if score >= 0.6 and score > scored.get(candidate_stem, 0.0):
                scored[candidate_stem] = score
    if not scored:
        return None
    best = max(scored.values())
    close = sorted(((s, t) for t, s in scored.items() if s >= best - 0.05), reverse=True)
    return _Word(word, [(t, TYPO * s) for s, t in close])


# --- ranking --------------------------------------------------------------------------------------------


@dataclass
class _Scored:
    id: int
    coverage: int
    score: float
    fit: float
    order: int


def _score(row: dict, words: list[_Word], order: int) -> _Scored:
    fields = {name: set((row[name] or "").split()) for name in FIELD_WEIGHT}
    coverage, score, matched_name = 0, 0.0, set()
    for position, word in enumerate(words):
        best = 0.0
        for term, quality in word.alternatives:
            for name, weight in FIELD_WEIGHT.items():
                if term in fields[name]:
                    best = max(best, weight * quality)
                    if name == "name":
                        matched_name.add(term)
        if best:
            coverage += 1
            score += best * (1.0 - 0.08 * position)  # the first words usually name the product
    name_terms = {t for t in (row["name"] or "").split() if t not in _COLOUR_STEMS and not t.isdigit()}
    fit = len(matched_name & name_terms) / len(name_terms) if name_terms else 0.0
    return _Scored(row["id"], coverage, round(score, 3), round(fit, 3), order)


def _rank(rows: list[dict], words: list[_Word], keep_best_coverage: bool) -> list[_Scored]:
    scored = [_score(row, words, order) for order, row in enumerate(rows)]
    if keep_best_coverage and scored:
        # A product matching fewer of the words than the best one is noise ("tênis preto" != "camiseta preta").
        top = max(s.coverage for s in scored)
        scored = [s for s in scored if s.coverage == top]
    # Ties go to the shop's order (product id), not to the database's rank: both backends answer alike.
    return sorted(scored, key=lambda s: (-s.coverage, -s.score, -s.fit, s.id))


# --- variants: colour, size, stock -------------------------------------------------------------------------


def _has_colour(variant: Variant, colour: str, product_colours: list[str]) -> bool:
    colours = colours_of(variant.color) or product_colours
    return any(colour in (c, colour_base(c)) for c in colours)


def _available_first(variants: list[Variant]) -> list[Variant]:
    return sorted(variants, key=lambda v: not v.available)


@dataclass
class _Sorting:
    hits: list[tuple[int, Hit]] = field(default_factory=list)
    out_of_size: list[Hit] = field(default_factory=list)
    other_sizes: list[Hit] = field(default_factory=list)
    other_colors: list[Hit] = field(default_factory=list)


def _classify(product: Product, query: Query, wanted_sizes: frozenset[str], coverage: int, into: _Sorting) -> None:
    active = [v for v in product.variants if v.active]
    if not active:
        return
    pool = active
    if query.color:
        name_colours = [c for _, _, c in find_colours(normalize(product.name).split())]
        pool = [v for v in active if _has_colour(v, query.color, name_colours)]
        if not pool:
            into.other_colors.append(Hit(product, _available_first(active), active))
            return
    if not wanted_sizes:
        into.hits.append((coverage, Hit(product, _available_first(pool), pool)))
        return
    sized = [v for v in pool if size_keys(v.size) & wanted_sizes]
    if not sized:
        into.other_sizes.append(Hit(product, _available_first(pool), pool))
    elif any(v.available for v in sized):
        into.hits.append((coverage, Hit(product, _available_first(sized), pool)))
    else:
        into.out_of_size.append(Hit(product, sized, pool))


# --- search ---------------------------------------------------------------------------------------------


def _words_and_colour(index: _Index, query: Query) -> tuple[list[_Word], str | None, bool]:
    """The query's words as index terms, the colour (a mistyped colour word becomes it), and whether the first
    word that names something (three letters or more) was understood: when it was not ("geladeira branca",
    "bolsa X" in a shop without bags), the other words alone would only find something else."""
    words, colour, head_known = [], query.color, True
    head_seen = False
    for typed in query.words:
        resolved = _resolve(index, typed, colour_wanted=colour is None)
        is_head = not head_seen and len(typed) >= 3 and typed.isalpha()
        head_seen = head_seen or is_head
        if isinstance(resolved, str):
            colour = resolved
        elif isinstance(resolved, list):
            words.extend(resolved)
        elif resolved is not None:
            words.append(resolved)
        elif is_head:
            head_known = False
    return words, colour, head_known


def search(session: Session, text: str, limit: int = 5) -> SearchResult:
    """What the shopper's message asks for, best first (see the module's docstring). Reads only; pending ORM
    changes are flushed (and indexed) by the first query, so a product written in this transaction is found."""
    query = parse_query(text)
    index = _Index(session)
    result = SearchResult(size=query.size, color=query.color)
    if query.brand:
        brand_terms = [stem(w) for w in query.brand.split()]
        if all(index.has_term(t, "brand") for t in brand_terms) or (
                query.words and all(index.has_term(t, "name") for t in brand_terms)):
            # The store's brand; or a word of its product names ("Camisa Estampada Havaiana") asked for with others
            query.words = [*query.words, *query.brand.split()]
        else:
            result.unknown_brand = query.brand
    words, colour, head_known = _words_and_colour(index, query)
    only_qualifiers = all(w.typed in QUALIFIERS for w in words)
    if result.unknown_brand and (only_qualifiers or not head_known) and KNOWN_BRANDS[result.unknown_brand]:
        # Only the brand was understood ("tem adidas?", "vans old skool", "adidas feminino"): what a shopper asking
        # for it wants, as the words qualified it.
        query.words = [*KNOWN_BRANDS[result.unknown_brand].split(),
                       *(w.typed for w in words if only_qualifiers)]
        words, colour, head_known = _words_and_colour(index, query)
    result.color = colour
    if not head_known or (not words and (query.words or not colour or query.gift)):
        return result  # nothing understood, or only words around an unknown product ("geladeira branca")
    query.color = colour
    wanted_sizes = size_keys(query.size) if query.size else frozenset()
    groups = [[t for t, _ in w.alternatives] for w in words]
    colour_filter = colour_token(colour) if colour else None
    size_filter = sorted(size_token(k) for k in wanted_sizes) or None
    found = _Sorting()
    # The asked colour and size first; then, when nothing has them, without the size, then without the colour:
    # those products land in other_sizes / other_colors, never among the hits.
    stages = [(colour_filter, size_filter)]
    if size_filter:
        stages.append((colour_filter, None))
    if colour_filter and groups:
        stages.append((None, None))
    for stage_colour, stage_sizes in stages:
        ranked = _candidates(index, groups, words, stage_colour, stage_sizes)
        _load_and_sort(session, ranked, query, wanted_sizes, limit, found)
        if found.hits or found.out_of_size or found.other_sizes or found.other_colors:
            break
    found.hits.sort(key=lambda pair: (-pair[0], not any(v.available for v in pair[1].variants)))
    result.hits = [hit for _, hit in found.hits[:limit]]
    result.out_of_size = found.out_of_size[:limit]
    result.other_sizes = found.other_sizes[:limit] if not result.hits and not result.out_of_size else []
    result.other_colors = (found.other_colors[:limit]
                           if not (result.hits or result.out_of_size or result.other_sizes) else [])
    if wanted_sizes:
        for hit in result.hits or result.out_of_size:
            sizes = [v.size for v in hit.variants if v.size]
            if sizes:
                result.size = sizes[0]
                break
    return result


def _candidates(index: _Index, groups: list[list[str]], words: list[_Word], colour: str | None,
                sizes: list[str] | None) -> list[_Scored]:
    if not groups:  # a colour alone: "tem algo vinho?"
        rows = index.candidates([], strong=True, every=True, colour=colour, sizes=sizes)
        return [_Scored(row["id"], 0, 0.0, 0.0, order) for order, row in enumerate(rows)]
    for strong in (True, False):
        rows = index.candidates(groups, strong=strong, every=True, colour=colour, sizes=sizes)
        if rows:
            return _rank(rows, words, keep_best_coverage=False)
    if len(groups) == 1:
        return []
    # Not every word: the first one (in Portuguese it names the product: "carteira couro azul marinho") and as many
    # of the others as a product has; a product matching fewer of them than the best one is noise.
    rows = index.candidates(groups, strong=False, every=False, colour=colour, sizes=sizes) if len(groups) > 2 else []
    if not rows:
        rows = index.candidates(groups[:1], strong=False, every=True, colour=colour, sizes=sizes)
    if not rows:
        # Nothing the first word names: a product named by a later word ("calça legging vinho": a legging), never
        # one that merely shares a later word ("carteira couro": not a leather belt).
        later = {t for group in groups[1:] for t in group}
        rows = [row for row in index.candidates([sorted(later)], strong=True, every=True, colour=colour, sizes=sizes)
                if (row["name"] or "").split()[:1] and (row["name"] or "").split()[0] in later]
    return _rank(rows, words, keep_best_coverage=True)


def _load_and_sort(session: Session, ranked: list[_Scored], query: Query, wanted_sizes: frozenset[str],
                   limit: int, into: _Sorting) -> None:
    coverage = {s.id: s.coverage for s in ranked}
    ids = [s.id for s in ranked[:MAX_LOADED]]
    for start in range(0, len(ids), LOAD_BATCH):
        batch = ids[start:start + LOAD_BATCH]
        products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(batch), Product.active)
                                                     .options(selectinload(Product.variants)))}
        for product_id in batch:
            if product_id in products:  # a stale index row (a product deleted without the ORM) is skipped
                _classify(products[product_id], query, wanted_sizes, coverage[product_id], into)
        if len(into.hits) >= limit or (not into.hits and not into.out_of_size and
                                        max(len(into.other_sizes), len(into.other_colors)) >= limit):
            return


def categories(session: Session) -> list[str]:
    return sorted(session.scalars(select(Product.category).where(Product.active, Product.category.is_not(None))
                                  .distinct()))
