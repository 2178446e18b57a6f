"""Catalog search for chat text: accent- and typo-tolerant (rapidfuzz over unidecoded words).

"tem tenis pretu 42?" -> words {tenis, pretu} and size 42 -> "Tênis Corrida Preto" (has 42) first.
Each query word is matched against the words of a product's name, category, brand and colour; products are
ranked by how many query words they match, then by how well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.text import normalize
from models import Product

WORD_CUTOFF = 78  # rapidfuzz ratio (0-100) for a query word to count as matching a product word
MAX_QUERY_WORDS = 8
MAX_QUERY_CHARS = 300
LETTER_SIZES = {"pp", "p", "m", "g", "gg", "xg", "xgg"}
STOPWORDS = {
    "tem", "tens", "teria", "voce", "voces", "vcs", "vc", "quero", "queria", "procuro", "procurando", "busco",
    "buscar", "algum", "alguma", "alguns", "algumas", "um", "uma", "uns", "umas", "o", "a", "os", "as", "de",
    "do", "da", "dos", "das", "com", "pra", "para", "por", "favor", "pf", "pfv", "me", "mostra", "mostrar",
    "ver", "e", "ou", "no", "na", "em", "tamanho", "tam", "n", "numero", "cor", "ai", "aí", "ola", "oi",
    "gostaria", "preciso", "que", "qual", "quais", "tipo", "modelo", "opcoes", "opcao", "ter",
}


# Words that say "I am looking for a product": with them, an empty result is "not found", not "not understood".
SEARCH_CUES = {"tem", "tens", "teria", "quero", "queria", "procuro", "procurando", "busco", "vende", "vendem",
               "vendem", "preciso", "gostaria"}


def looks_like_search(text: str) -> bool:
    return bool(set(normalize(text[:MAX_QUERY_CHARS]).split()[:4]) & SEARCH_CUES)


@dataclass
class Query:
    words: list[str]
    sizes: list[str]


@dataclass
class SearchResult:
    products: list[Product] = field(default_factory=list)
    size: str | None = None  # the size asked for, if any
    missing_size: list[Product] = field(default_factory=list)  # matched, but not in that size


def parse_query(text: str) -> Query:
    tokens = normalize(text[:MAX_QUERY_CHARS]).split()
    words, sizes = [], []
    for token in tokens:
        if token.isdigit() and 1 <= len(token) <= 3:
            sizes.append(token)
        elif token in LETTER_SIZES and len(tokens) > 1:
            sizes.append(token)
        elif token not in STOPWORDS and len(token) > 1:
            words.append(token)
    return Query(words=words[:MAX_QUERY_WORDS], sizes=sizes)


def _product_words(product: Product) -> list[str]:
    colour = (product.attributes or {}).get("cor") or ""
    text = " ".join(filter(None, [product.name, product.category, product.brand, str(colour)]))
    return normalize(text).split()


def _sizes(product: Product) -> set[str]:
    raw = (product.attributes or {}).get("tamanhos") or []
    values = raw if isinstance(raw, list) else [raw]
    return {normalize(str(v)) for v in values}


def _score(query_words: list[str], product_words: list[str]) -> tuple[int, float]:
    matched, total = 0, 0.0
    for word in query_words:
        best = process.extractOne(word, product_words, scorer=fuzz.ratio, score_cutoff=WORD_CUTOFF)
        if best is not None:
            matched += 1
            total += best[1]
    return matched, total


def search(session: Session, text: str, limit: int = 5) -> SearchResult:
    query = parse_query(text)
    if not query.words:
        return SearchResult()
    scored = []
    for product in session.scalars(select(Product).where(Product.active)):
        matched, score = _score(query.words, _product_words(product))
        if matched:
            scored.append((matched, score, product))
    if not scored:
        return SearchResult(size=query.sizes[0] if query.sizes else None)
    best_matched = max(m for m, _, _ in scored)
    # A product matching fewer of the words than the best one is noise ("tênis preto" != "camiseta preta").
    ranked = sorted((s for s in scored if s[0] == best_matched), key=lambda s: (-s[1], s[2].price, s[2].id))
    result = SearchResult(size=query.sizes[0] if query.sizes else None)
    for _, _, product in ranked:
        if result.size and _sizes(product) and result.size not in _sizes(product):
            result.missing_size.append(product)
        else:
            result.products.append(product)
    result.products = result.products[:limit]
    result.missing_size = result.missing_size[:limit]
    return result


def categories(session: Session) -> list[str]:
    return sorted({c for c in session.scalars(select(Product.category).where(Product.active)) if c})
