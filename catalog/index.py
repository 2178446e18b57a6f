"""The catalog's search index, and the text analysis it shares with the search.

One *document* per sellable product (active, with at least one active variant), in fields:

=========  ==============================================================  ==================
field      what                                                            weight (search)
=========  ==============================================================  ==================
name       the product's name                                              strongest
brand      its brand                                                       strong
category   its category                                                    strong
colors     ``cor<colour>`` tokens of its active variants and of its name   filter only
sizes      ``tam<size>`` tokens of its active variants (sold out or not)   filter only
extra      description, attribute values, variants' colour and options     weak
=========  ==============================================================  ==================

Every field holds *terms*: the text normalised (lower case, no accents, ``core.text.normalize``) and stemmed
(:func:`stem`: Snowball Portuguese through PyStemmer, with a few exceptions), so "Pretas", "preto" and "PRETA"
are one term. Both backends receive the same terms from Python; the database only looks them up:

* SQLite (FTS5): ``search_docs`` (rowid = product id; ``unicode61 remove_diacritics 2``, columns as above)
  and ``search_terms``, the catalog's vocabulary (each surface word once, rowid = a hash of the word, with its
  term and whether a typo may be corrected to it) under the ``trigram`` tokenizer, to find the catalog words
  close to a mistyped one.
* PostgreSQL: ``search_documents`` (product id, the fields, and a generated weighted ``tsvector`` with a GIN
  index: A name, B brand and category, C colours and sizes, D the rest) and ``search_terms`` (the vocabulary:
  ``term`` with a ``gin_trgm_ops`` GIN index, ``pg_trgm``; ``stem`` with a btree, which answers "is this term in
  the catalog?": a ``LIMIT 1`` over the documents for a rare term is planned as a sequential scan).
  ``unaccent`` is not needed: accents never reach the database (one Python normalisation for documents and
  queries keeps both backends' answers alike).

Maintenance, always in the caller's transaction (a rollback takes the index back with the catalog):

* :func:`refresh` ``(session, product_ids)`` after writes that bypass the ORM's unit of work (Core ``insert`` /
  ``update``, raw SQL); idempotent.
* Every ORM flush that creates, changes or deletes a ``Product`` or ``Variant`` refreshes those products itself
  (an ``after_flush`` listener registered when this module is imported, which ``catalog.search`` does): the
  importer, the console, the demo seed and tests need not remember to.
* :func:`rebuild` ``(session)``: the whole index from the catalog (also drops words no product uses any more).

The vocabulary only grows between rebuilds: a word that no product uses any more can still be offered as the
correction of a typo, and then matches nothing, which the search tolerates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import Stemmer
from sqlalchemy import Connection, event, select, text
from sqlalchemy.orm import Session
from unidecode import unidecode

from core.text import normalize
from models import Product, Variant, migrate

# Tables of the index, outside the ORM metadata (FTS5 virtual tables and their shadow tables on SQLite; plain
# tables on PostgreSQL). Alembic's autogenerate comparison must skip them: see alembic_include_name.
INDEX_TABLES = ("search_docs", "search_terms", "search_documents")
FIELDS = ("name", "brand", "category", "colors", "sizes", "extra")
CHUNK = 500

# --- text analysis ------------------------------------------------------------------------------------------

_STEMMER = Stemmer.Stemmer("portuguese")

# Where Snowball's Portuguese stemmer merges words a shopper tells apart, or splits forms of one word.
STEM_EXCEPTIONS = {
    "calcado": "calcad", "calcados": "calcad",  # "calçados" (shoes) is not "calça" (trousers): both give "calc"
    "bolso": "bolso", "bolsos": "bolso",  # a pocket is not a bag ("bols")
    "azuis": "azul", "infantis": "infantil", "juvenis": "juvenil",  # -is plurals of -il / -ul words
    "tenis": "tenis", "tennis": "tenis",  # "ten" would also be the stem of "tenho", "tenha"
}
# Words that end like a diminutive and are not one.
NOT_DIMINUTIVES = {"calcinha", "calcinhas", "linho", "vinho", "marinho", "caminho", "carinho", "sozinho", "bolinha",
                   "bolinhas", "golfinho", "espinho", "pinho", "ninho", "moinho", "focinho", "vizinho", "polegarzinho"}
# Function words left out of documents (the search drops many more from queries: catalog.search.STOPWORDS).
DOCUMENT_STOPWORDS = {"de", "da", "do", "das", "dos", "e", "com", "sem", "para", "pra", "por", "em", "no", "na",
                      "nos", "nas", "a", "o", "as", "os", "um", "uma", "ao", "aos", "&"}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One normalised word -> its search term: 'pretas' -> 'pret', 'camisetas' -> 'camiset', 'moletons' ->
    'moletom'. Numbers and words of up to three letters stay as they are."""
    if word in STEM_EXCEPTIONS:
        return STEM_EXCEPTIONS[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ons"):  # moletons, batons: Snowball leaves the -ns plural of -m words alone
        word = word[:-3] + "om"
    elif word.endswith("ens") and len(word) > 5:  # bagagens, homens
        word = word[:-3] + "em"
    return _STEMMER.stemWord(word)


def diminutive_base(word: str) -> str | None:
    """'rasteirinha' -> 'rasteira', 'blusinha' -> 'blusa', 'bonezinho' -> 'bone'; None when not a diminutive."""
    if word in NOT_DIMINUTIVES:
        return None
    plural = word.endswith("s")
    core = word[:-1] if plural else word
    for suffix, ending in (("zinho", ""), ("zinha", ""), ("inho", "o"), ("inha", "a")):
        if core.endswith(suffix) and len(core) - len(suffix) >= 4:
            return core[: -len(suffix)] + ending
    return None


def terms(value: str | None) -> list[str]:
    """Free text -> its terms, in order, function words left out."""
    return [stem(w) for w in normalize(value or "").split() if w not in DOCUMENT_STOPWORDS]


# Colours: every form a shopper or a shop writes -> one canonical name. A compound colour ("azul marinho")
# also counts as its base colour ("azul"): asking for "azul" finds navy, asking for "azul marinho" only navy.
_COLOUR_FORMS = {
    "preto": "preto preta pretos pretas pretinho pretinha black pto pta",
    "branco": "branco branca brancos brancas branquinho branquinha white bco bca",
    "azul": "azul azuis blue",
    "vermelho": "vermelho vermelha vermelhos vermelhas red",
    "verde": "verde verdes green",
    "rosa": "rosa rosas rosinha rose",
    "pink": "pink",
    "cinza": "cinza cinzas cinzento cinzenta gray grey",
    "bege": "bege beges",
    "marrom": "marrom marrons marron brown",
    "amarelo": "amarelo amarela amarelos amarelas yellow",
    "roxo": "roxo roxa roxos roxas",
    "lilas": "lilas",
    "laranja": "laranja laranjas",
    "vinho": "vinho bordo bordeaux",
    "dourado": "dourado dourada dourados douradas ouro",
    "prata": "prata prateado prateada prateados prateadas",
    "nude": "nude",
    "caramelo": "caramelo",
    "creme": "creme",
    "off white": "offwhite",
    "mostarda": "mostarda",
    "coral": "coral",
    "terracota": "terracota",
    "caqui": "caqui khaki",
    "turquesa": "turquesa",
    "grafite": "grafite",
    "chumbo": "chumbo",
    "salmao": "salmao",
    "fucsia": "fucsia",
}
COLOUR_WORDS = {form: colour for colour, forms in _COLOUR_FORMS.items() for form in forms.split()}
# Forms of several words whose first word is not a colour.
COLOUR_PHRASES = {("off", "white"): "off white", ("azul", "marinho"): "azul marinho", ("cor", "de", "pele"): "nude"}
# A base colour followed by one of these is a compound colour: "azul claro", "verde oliva", "cinza mescla".
COLOUR_MODIFIERS = {
    "claro": "claro", "clara": "claro", "claros": "claro", "claras": "claro",
    "escuro": "escuro", "escura": "escuro", "escuros": "escuro", "escuras": "escuro",
    # Shades shops and shoppers name differently count as one: "azul bebê" is the shop's "azul claro", "verde
    # militar" its "verde oliva".
    "marinho": "marinho", "royal": "royal", "bebe": "claro", "celeste": "claro", "petroleo": "petroleo",
    "turquesa": "turquesa", "oliva": "oliva", "militar": "oliva", "musgo": "oliva", "agua": "agua",
    "limao": "limao", "bandeira": "bandeira", "mescla": "mescla", "mesclado": "mescla", "mesclada": "mescla",
    "neon": "neon", "queimado": "queimado", "queimada": "queimado", "chiclete": "chiclete", "pastel": "pastel",
}
# "marinho" alone is navy; "pink" and "grafite" belong to a family a shopper would ask for by its base.
COLOUR_ALONE = {"marinho": "azul marinho"}
COLOUR_FAMILY = {"pink": "rosa", "fucsia": "rosa", "grafite": "cinza", "chumbo": "cinza", "salmao": "rosa"}


def colour_base(colour: str) -> str:
    """'azul marinho' -> 'azul', 'pink' -> 'rosa', 'preto' -> 'preto'."""
    first = colour.split()[0] if colour != "off white" else colour
    return COLOUR_FAMILY.get(first, first)


def colour_token(colour: str) -> str:
    return "cor" + colour.replace(" ", "")


def colour_tokens(colour: str) -> set[str]:
    return {colour_token(colour), colour_token(colour_base(colour))}


def find_colours(words: list[str]) -> list[tuple[int, int, str]]:
    """The colours in a list of normalised words: (first index, end index, canonical colour)."""
    found = []
    i = 0
    while i < len(words):
        word, nxt = words[i], words[i + 1] if i + 1 < len(words) else None
        phrase = next((n for n in (3, 2) if tuple(words[i:i + n]) in COLOUR_PHRASES), 0)
        if phrase:
            found.append((i, i + phrase, COLOUR_PHRASES[tuple(words[i:i + phrase])]))
            i += phrase
            continue
        if word in COLOUR_WORDS:
            colour = COLOUR_WORDS[word]
            if nxt in COLOUR_MODIFIERS and colour != "off white":
                found.append((i, i + 2, f"{colour} {COLOUR_MODIFIERS[nxt]}"))
                i += 2
                continue
            found.append((i, i + 1, colour))
        elif word in COLOUR_ALONE:
            found.append((i, i + 1, COLOUR_ALONE[word]))
        i += 1
    return found


def colours_of(value: str | None) -> list[str]:
    """A variant's colour as the shop writes it -> canonical colours: 'Azul Marinho' -> ['azul marinho'],
    'Preto/Branco' -> ['preto', 'branco'], 'Estampado' -> ['estampado'] (a colour we do not know is kept
    normalised, so it still filters), None -> []."""
    words = normalize(value or "").split()
    if not words:
        return []
    found = [colour for _, _, colour in find_colours(words)]
    return found or [" ".join(words)]


# Sizes. Letter sizes as Brazilian shops write them, and their synonyms.
LETTER_SIZES = {"pp": "pp", "xp": "pp", "p": "p", "m": "m", "g": "g", "gg": "gg", "xg": "xg", "eg": "xg",
                "xgg": "xgg", "egg": "xgg", "exg": "xgg", "xxg": "xgg", "g1": "g1", "g2": "g2", "g3": "g3",
                "g4": "g4", "g5": "g5"}
ONE_SIZE = {"u", "un", "unico", "unica", "tu", "uni", "tamanho unico", "unissex"}
_RANGE = re.compile(r"^(\d{1,3})\s*(?:[/-]|\s|a|ao|ate)\s*(\d{1,3})$")


@lru_cache(maxsize=4096)
def size_keys(size: str | None) -> frozenset[str]:
    """A size as written -> what it covers: '42' -> {42}; '37/38' -> {37, 38}; '34-38' -> {34, …, 38};
    'M' -> {m}; 'EG' -> {xg}; 'P/M' -> {p, m}; 'Único' -> {unico}."""
    value = re.sub(r"\s+", " ", re.sub(r"[^a-z0-9/\- ]", " ", normalize_keep_slashes(size or ""))).strip()
    if not value:
        return frozenset()
    if value in ONE_SIZE:
        return frozenset({"unico"})
    match = _RANGE.match(value)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if 0 < high - low <= 10:
            return frozenset(str(n) for n in range(low, high + 1))
        return frozenset({str(low), str(high)})
    keys = set()
    for part in re.split(r"[/\- ]+", value):
        if part.isdigit():
            keys.add(str(int(part)))
        elif part in LETTER_SIZES:
            keys.add(LETTER_SIZES[part])
        elif part in ONE_SIZE:
            keys.add("unico")
        elif part:
            keys.add(part)
    return frozenset(keys)


def normalize_keep_slashes(value: str) -> str:
    """Like core.text.normalize, but '38/39' and '34-38' keep their separators."""
    return unidecode(value).lower().strip()


def size_token(key: str) -> str:
    return "tam" + key


# --- documents ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    product_id: int
    fields: dict[str, str]  # field -> its terms separated by spaces
    # Every word of the document -> (its term, correctable): the vocabulary this product brings. Correctable words
    # (name, brand, category, attributes, colours, of three letters or more) are the ones a typo may be corrected
    # to; description words only say that their term exists.
    words: dict[str, tuple[str, bool]]


def _flatten(value) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def build_document(product: dict, variants: list[dict]) -> Document | None:
    """A product row and its variant rows -> its document; None when it is not sellable (inactive, or no active
    variant)."""
    active = [v for v in variants if v["active"]]
    if not product["active"] or not active:
        return None
    name_words = normalize(product["name"]).split()
    colours: set[str] = set()
    for v in active:
        colours.update(colours_of(v["color"]))
    colours.update(colour for _, _, colour in find_colours(name_words))
    attributes = product.get("attributes") or {}
    for key in ("cor", "cores", "color"):
        if isinstance(attributes, dict) and attributes.get(key):
            for value in _flatten(attributes[key]):
                colours.update(colours_of(value))
    sizes = set()
    for v in active:
        sizes.update(size_keys(v["size"]))
    extra_text = " ".join(chain(
        [product.get("description") or ""],
        _flatten(attributes),
        (v["color"] or "" for v in active),
        (value for v in active for value in _flatten(v.get("options") or {})),
    ))
    fields = {
        "name": " ".join(terms(product["name"])),
        "brand": " ".join(terms(product["brand"])),
        "category": " ".join(terms(product["category"])),
        "colors": " ".join(sorted(chain.from_iterable(colour_tokens(c) for c in colours))),
        "sizes": " ".join(sorted(size_token(k) for k in sizes)),
        "extra": " ".join(dict.fromkeys(terms(extra_text))),
    }
    correctable_text = " ".join(chain(
        [product["name"], product["brand"] or "", product["category"] or ""],
        _flatten(attributes), (v["color"] or "" for v in active)))
    words = {w: (stem(w), False) for w in normalize(f"{correctable_text} {extra_text}").split()
             if w not in DOCUMENT_STOPWORDS}
    for w in normalize(correctable_text).split():
        if len(w) >= 3 and w.isalpha() and w not in DOCUMENT_STOPWORDS:
            words[w] = (stem(w), True)
    return Document(product["id"], fields, words)


def word_key(word: str) -> int:
    """A vocabulary word's rowid on SQLite: a stable 63-bit hash (not Python's salted hash())."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big") >> 1


# --- maintenance --------------------------------------------------------------------------------------------

_products = Product.__table__
_variants = Variant.__table__


def _chunks(ids: list[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _documents(conn: Connection, ids: list[int]) -> tuple[list[Document], list[int]]:
    """Documents of these products, and the ids that have none (gone, inactive or with no active variant)."""
    rows = conn.execute(select(_products.c.id, _products.c.name, _products.c.description, _products.c.category,
                               _products.c.brand, _products.c.attributes, _products.c.active)
                        .where(_products.c.id.in_(ids))).mappings().all()
    variants: dict[int, list[dict]] = {}
    for v in conn.execute(select(_variants.c.product_id, _variants.c.size, _variants.c.color, _variants.c.options,
                                 _variants.c.active).where(_variants.c.product_id.in_(ids))
                          .order_by(_variants.c.id)).mappings():
        variants.setdefault(v["product_id"], []).append(v)
    documents = []
    for row in rows:
        document = build_document(row, variants.get(row["id"], []))
        if document is not None:
            documents.append(document)
    indexed = {d.product_id for d in documents}
    return documents, [i for i in ids if i not in indexed]


def _write_sqlite(conn: Connection, ids: list[int], documents: list[Document]) -> None:
    conn.execute(text(f"DELETE FROM search_docs WHERE rowid IN ({','.join(str(int(i)) for i in ids)})"))
    if documents:
        conn.execute(text("INSERT INTO search_docs (rowid, name, brand, category, colors, sizes, extra) "
                          "VALUES (:id, :name, :brand, :category, :colors, :sizes, :extra)"),
                     [{"id": d.product_id, **d.fields} for d in documents])
    words = _vocabulary(documents)
    if not words:
        return
    keyed = {word_key(w): (w, s, c) for w, (s, c) in words.items()}
    known: dict[int, int] = {}
    keys = list(keyed)
    for part in _chunks(keys):
        listed = ",".join(map(str, part))
        rows = conn.execute(text(f"SELECT rowid, correctable FROM search_terms WHERE rowid IN ({listed})"))
        known.update((key, correctable) for key, correctable in rows)
    new = [{"id": k, "term": f"_{w}_", "stem": s, "correctable": int(c)} for k, (w, s, c) in keyed.items()
           if k not in known]
    if new:
        conn.execute(text("INSERT INTO search_terms (rowid, term, stem, correctable) "
                          "VALUES (:id, :term, :stem, :correctable)"), new)
    promoted = [{"id": k} for k, (_w, _s, c) in keyed.items() if c and known.get(k) == 0]
    if promoted:  # a word first seen in a description, now in a name
        conn.execute(text("UPDATE search_terms SET correctable = 1 WHERE rowid = :id"), promoted)


def _vocabulary(documents: list[Document]) -> dict[str, tuple[str, bool]]:
    words: dict[str, tuple[str, bool]] = {}
    for d in documents:
        for word, (term, correctable) in d.words.items():
            if word not in words or correctable:
                words[word] = (term, correctable or words.get(word, ("", False))[1])
    return words


def _write_postgresql(conn: Connection, ids: list[int], documents: list[Document]) -> None:
    indexed = {d.product_id for d in documents}
    gone = [i for i in ids if i not in indexed]
    if gone:
        conn.execute(text("DELETE FROM search_documents WHERE product_id = ANY(:ids)"), {"ids": gone})
    if documents:
        conn.execute(text(
            "INSERT INTO search_documents (product_id, name, brand, category, colors, sizes, extra) "
            "VALUES (:id, :name, :brand, :category, :colors, :sizes, :extra) "
            "ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, brand = excluded.brand, "
            "category = excluded.category, colors = excluded.colors, sizes = excluded.sizes, extra = excluded.extra"),
            [{"id": d.product_id, **d.fields} for d in sorted(documents, key=lambda d: d.product_id)])
        words = _vocabulary(documents)
        if words:
            # Sorted: concurrent refreshes take the rows' locks in one order. A word first seen in a description
            # becomes correctable when a name uses it.
            terms_sorted = sorted(words)
            conn.execute(text(
                "INSERT INTO search_terms (term, stem, correctable) SELECT * FROM unnest(CAST(:terms AS text[]), "
                "CAST(:stems AS text[]), CAST(:correctable AS boolean[])) ON CONFLICT (term) DO UPDATE "
                "SET correctable = true WHERE excluded.correctable AND NOT search_terms.correctable"),
                {"terms": terms_sorted, "stems": [words[w][0] for w in terms_sorted],
                 "correctable": [words[w][1] for w in terms_sorted]})


def refresh_connection(conn: Connection, product_ids: Iterable[int]) -> None:
    """:func:`refresh` on a Connection (the migration's, or a session's)."""
    ids = sorted({int(i) for i in product_ids if i is not None})
    write = _write_sqlite if conn.dialect.name == "sqlite" else _write_postgresql
    for part in _chunks(ids):
        documents, _ = _documents(conn, part)
        write(conn, part, documents)


def refresh(session: Session, product_ids: Iterable[int]) -> None:
    """Bring the index up to date for these products, in the caller's transaction.

    Products that are gone, inactive or without an active variant leave the index. Pending ORM changes are
    flushed first (and that flush indexes what it writes)."""
    ids = list(product_ids)
    if not ids:
        return
    session.flush()
    refresh_connection(session.connection(), ids)


def rebuild_connection(conn: Connection) -> int:
    """:func:`rebuild` on a Connection. Returns how many products were indexed."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("DELETE FROM search_docs"))
        conn.execute(text("DELETE FROM search_terms"))
    else:
        conn.execute(text("DELETE FROM search_documents"))
        conn.execute(text("DELETE FROM search_terms"))
    indexed = 0
    last = 0
    while True:
        ids = list(conn.execute(select(_products.c.id).where(_products.c.id > last)
                                .order_by(_products.c.id).limit(CHUNK)).scalars())
        if not ids:
            return indexed
        documents, _ = _documents(conn, ids)
        (_write_sqlite if conn.dialect.name == "sqlite" else _write_postgresql)(conn, ids, documents)
        indexed += len(documents)
        last = ids[-1]


def rebuild(session: Session) -> int:
    """The whole index again from the catalog, in the caller's transaction. Returns how many products were
    indexed (the sellable ones)."""
    session.flush()
    return rebuild_connection(session.connection())


@event.listens_for(Session, "after_flush")
def _index_what_was_flushed(session: Session, _flush_context) -> None:
    """Every ORM write of a product or a variant reaches the index in the same transaction."""
    ids: set[int] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Product):
            ids.add(obj.id)
        elif isinstance(obj, Variant):
            ids.add(obj.product_id)
    if ids:
        refresh_connection(session.connection(), ids)


def alembic_include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` filter for what the ORM metadata does not describe and must not be reported as
    something to drop: the index's tables (and FTS5's shadow tables), and the indexes the migrations make by hand
    (``models.migrate.UNMAPPED_INDEXES``). Here rather than in models because models may not import catalog."""
    if type_ == "index" and name in migrate.UNMAPPED_INDEXES:
        return False
    if type_ == "table" and name is not None:
        return not any(name == table or name.startswith(table + "_") for table in INDEX_TABLES)
    return True
