"""Catalog search at 50 000 variants: p50/p95 of ``catalog.search.search`` over 500 varied queries.

A generated catalog (``tests.search_catalog.scaled_products``: the realistic lines of the relevance set in every
brand and collection, about 11 000 products and 50 000 variants, sold-out and untracked stock) is written with
Core in chunks of 1 000 products, each chunk indexed with ``catalog.index.refresh`` in its transaction
(``import_s`` / ``index_s``). Then 500 queries, each in its own session as the engine does it: the 184 of the
relevance set (typos, plurals, sizes, colours, unknown brands, nonsense) and 316 made from the catalog's words
(type + model word + colour + size, with typos, plural forms, brands the store does not carry). The time is the
``search()`` call alone, on a session that already holds its connection. Also reported: the cost of keeping the
index current for one edited product (an ORM flush), and how many queries found something.

Runs on the embedded SQLite (WAL, as ``make run``) and, when the server answers, on PostgreSQL (database
``bench``). Target: p95 <= 20 ms.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from sqlalchemy import select, text

from bench.common import emit, fresh_database, log, percentile, postgres_bench_url, postgres_reachable, workspace
from catalog import index
from catalog.search import search
from models import Product
from tests.search_catalog import LINES, insert_products, scaled_products

VARIANTS = 50_000
QUICK_VARIANTS = 10_000
QUERIES = 500
CHUNK = 1_000
TARGET_P95_MS = 20.0
RELEVANCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "search_relevance.tsv"

COLOURS = ["preto", "preta", "pretos", "branco", "branca", "azul", "azul marinho", "vermelho", "vermelha", "rosa",
           "cinza", "bege", "marrom", "caramelo", "nude", "dourada", "verde", "off white", "vinho", "lilas"]
SIZES = ["36", "38", "40", "42", "44", "37/38", "39 40", "P", "M", "G", "GG", "tam M", "nº 40", "tamanho 42"]
UNKNOWN_BRANDS = ["nike", "adidas", "havaianas", "hering", "farm", "arezzo", "vans", "olympikus"]
OPENERS = ["", "", "", "tem ", "oi, tem ", "vcs tem ", "quero ", "procuro ", "boa tarde! tem "]
NONSENSE = ["geladeira frost free", "pneu aro 15", "celular samsung", "oi tudo bem", "qual o horario?",
            "frete para salvador", "quero falar com atendente"]


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1:]  # a letter missing
    if kind == 1:
        return word[:i] + word[i] + word[i:]  # a letter doubled
    if kind == 2:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # two letters swapped
    return word[:i] + rng.choice("aeiouszc") + word[i + 1:]  # a letter wrong


def queries(count: int = QUERIES, seed: int = 5) -> list[str]:
    """The relevance set's queries, then queries made from the catalog's lines up to ``count``."""
    from core.text import normalize

    made = [line.split("\t")[0] for line in RELEVANCE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")][:count]
    rng = random.Random(seed)
    while len(made) < count:
        roll = rng.random()
        if roll < 0.03:
            made.append(rng.choice(NONSENSE))
            continue
        _category, type_name, models, *_ = rng.choice(LINES)
        words = normalize(type_name).split()
        if rng.random() < 0.5:
            words.append(normalize(rng.choice(models)).split()[0])
        if rng.random() < 0.15:
            words[0] = words[0] + "s"  # plural
        if rng.random() < 0.25:
            words[0] = _typo(words[0], rng)
        if rng.random() < 0.08:
            words.append(rng.choice(UNKNOWN_BRANDS))
        if rng.random() < 0.6:
            words.append(rng.choice(COLOURS))
        if rng.random() < 0.45:
            words.append(rng.choice(SIZES))
        made.append(rng.choice(OPENERS) + " ".join(words) + ("?" if rng.random() < 0.3 else ""))
    return made


def _load(database, target_variants: int) -> dict:
    specs = scaled_products(10 ** 9)
    products = variants = 0
    insert_s = index_s = 0.0
    while variants < target_variants:
        chunk = []
        while len(chunk) < CHUNK and variants < target_variants:
            spec = next(specs)
            chunk.append(spec)
            variants += len(spec["variants"])
        with database.transaction() as session:
            started = time.perf_counter()
            ids = insert_products(session.connection(), chunk, first_id=products + 1)
            inserted = time.perf_counter()
            index.refresh(session, ids)
            insert_s += inserted - started
            index_s += time.perf_counter() - inserted
        products += len(chunk)
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return {"products": products, "variants": variants, "insert_s": round(insert_s, 2), "index_s": round(index_s, 2)}


def _edit_one(database) -> float:
    """Milliseconds to flush one product's edit, its index refresh included (median of 20)."""
    samples = []
    with database.session() as session:
        ids = list(session.scalars(select(Product.id).order_by(Product.id).limit(20)))
        for product_id in ids:
            product = session.get(Product, product_id)
            product.variants[0].stock = 0
            started = time.perf_counter()
            session.flush()
            samples.append((time.perf_counter() - started) * 1000)
        session.rollback()
    return round(statistics.median(samples), 2)


def one_backend(name: str, url: str, target_variants: int, texts: list[str]) -> dict:
    database = fresh_database(url)
    log(f"search/{name}: loading {target_variants:,} variants")
    loaded = _load(database, target_variants)
    log(f"search/{name}: {loaded}")
    for warm in texts[:20]:
        with database.session() as session:
            search(session, warm)
    times, found, slowest = [], 0, []
    for query in texts:
        with database.session() as session:
            session.execute(select(1))  # the engine's session already holds its connection
            started = time.perf_counter()
            result = search(session, query)
            times.append((time.perf_counter() - started) * 1000)
            slowest.append((times[-1], query))
            found += bool(result.hits or result.out_of_size or result.other_sizes or result.other_colors)
    times.sort()
    with database.session() as session:
        documents = session.scalar(text("SELECT count(*) FROM " + ("search_docs" if name == "sqlite"
                                                                    else "search_documents")))
        words = session.scalar(text("SELECT count(*) FROM search_terms"))
    figures = {
        "database": name, **loaded, "documents": documents, "vocabulary": words, "queries": len(texts),
        "p50_ms": round(percentile(times, 0.50), 2), "p95_ms": round(percentile(times, 0.95), 2),
        "p99_ms": round(percentile(times, 0.99), 2), "max_ms": round(times[-1], 2),
        "mean_ms": round(statistics.mean(times), 2), "found_share": round(found / len(texts), 3),
        "edit_one_product_flush_ms": _edit_one(database),
    }
    figures["slowest"] = [[round(ms, 1), q] for ms, q in sorted(slowest, reverse=True)[:3]]
    figures["met"] = figures["p95_ms"] <= TARGET_P95_MS
    log(f"search/{name}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms")
    database.engine.dispose()
    return figures


def run(quick: bool = False) -> dict:
    target = QUICK_VARIANTS if quick else VARIANTS
    texts = queries(100 if quick else QUERIES)
    runs = []
    with workspace() as (_folder, sqlite_url):
        runs.append(one_backend("sqlite", sqlite_url, target, texts))
    if postgres_reachable():
        runs.append(one_backend("postgresql", postgres_bench_url(), target, texts))
    else:
        log("search: PostgreSQL is not reachable on 127.0.0.1:5432; skipped")
        runs.append({"database": "postgresql", "skipped": "PostgreSQL not reachable"})
    return emit("search", {"target_p95_ms": TARGET_P95_MS, "runs": runs})
