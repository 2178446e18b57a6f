"""The Clientes list at 1 M customers / 5 M orders on PostgreSQL: p50/p95 of one list page (the count, capped,
and the page of 30) for each search, filter and sort a user can choose, as an admin, a branch manager and a seller.

The data is written with set-based SQL (``generate_series``) in the ``bench`` database: 10 branches with 20
sellers each, 1 M customers (Brazilian names, cities and phones; 300 in each seller's portfolio, the product's
default cap, so 6 % have an owner; half with an e-mail), 5 M orders over two years (a few heavy buyers, many occasional ones, 4 % cancelled), one item each from
a 500-product catalog, and 50 000 open opportunities; then ``ANALYZE``, as autovacuum would. Then
``crm.metrics.refresh_all`` fills the per-customer figures as the daily job does (``refresh_s``, customers per
second), and ``ANALYZE`` again.

Each scenario calls ``web.customers.customer_listing`` — the function the page calls — 30 times in one session
(after one warm-up call); the time is that call alone. Target: p95 <= 100 ms for every scenario.

``--quick``: 50 000 customers / 250 000 orders. ``--customers N``: any size (orders are 5 N).
"""

from __future__ import annotations

import random
import statistics
import time

from sqlalchemy import select, text

from bench.common import emit, fresh_database, log, percentile, postgres_bench_url, postgres_reachable
from crm import metrics
from crm.users import create_user
from models import User, utcnow
from web.customers import customer_listing

CUSTOMERS = 1_000_000
QUICK_CUSTOMERS = 50_000
ORDERS_PER_CUSTOMER = 5
STORES = 10
SELLERS_PER_STORE = 20
PRODUCTS = 500
OPPORTUNITIES = 50_000
PORTFOLIO = 300  # customers per seller: the product's default cap (User.max_portfolio)
RUNS = 30
TARGET_P95_MS = 100.0

FIRST = ["Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Henrique", "Isabela", "João",
         "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sabrina", "Thiago", "Vanessa", "Wagner"]
LAST = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
        "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa"]
CITIES = [("São Paulo", "SP", "11"), ("Campinas", "SP", "19"), ("Rio de Janeiro", "RJ", "21"),
          ("Belo Horizonte", "MG", "31"), ("Curitiba", "PR", "41"), ("Porto Alegre", "RS", "51"),
          ("Salvador", "BA", "71"), ("Recife", "PE", "81"), ("Fortaleza", "CE", "85"), ("Goiânia", "GO", "62")]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _populate(conn, customers: int) -> None:
    now = "now()"
    conn.execute(text(
        "INSERT INTO stores (id, code, name, city, state, ddd, active, created_at) "
        f"SELECT s, 'L' || s, 'Loja ' || s, ({_array([c for c, _, _ in CITIES])})[s], "
        f"({_array([st for _, st, _ in CITIES])})[s], ({_array([d for _, _, d in CITIES])})[s], true, {now} "
        f"FROM generate_series(1, {STORES}) s"))
    conn.execute(text(
        "INSERT INTO users (id, email, name, role, active, seller_code, region_ddds, max_portfolio, hours_per_day, "
        "idle_share, avg_conversation_minutes, store_id, created_at) "
        "SELECT 100 + u, 'vendedor' || u || '@loja.example', 'Vendedor ' || u, 'seller', true, 'V' || u, '[]', "
        f"{PORTFOLIO}, 8, 0.3, 15, 1 + (u - 1) / {SELLERS_PER_STORE}, {now} "
        f"FROM generate_series(1, {STORES * SELLERS_PER_STORE}) u"))
    sellers = STORES * SELLERS_PER_STORE
    first, last = _array(FIRST), _array(LAST)
    city, state, ddd = (_array([c[i] for c in CITIES]) for i in range(3))
    # The branch (and its city) from a hash of the id, so it is independent of the name, as in a real store (a
    # branch correlated with first names would make an alphabetical walk meet none of its customers for long).
    place = "(1 + abs(hashint4(i)) % 10)"
    conn.execute(text(
        "INSERT INTO customers (id, phone, name, email, ddd, city, state, tags, store_id, owner_seller_id, "
        "simulated, created_at, updated_at) "
        f"SELECT i, '+55' || ({ddd})[{place}] || '9' || lpad(i::text, 8, '0'), "
        f"({first})[1 + i % 20] || ' ' || ({last})[1 + (i / 20) % 20] || ' ' || ({last})[1 + (i / 400) % 20], "
        "CASE WHEN i % 2 = 0 THEN 'cliente' || i || '@exemplo.com.br' END, "
        f"({ddd})[{place}], ({city})[{place}], ({state})[{place}], '[]', {place}, "
        f"CASE WHEN i % {customers // (sellers * PORTFOLIO) or 1} = 0 THEN 101 + (i / "
        f"{customers // (sellers * PORTFOLIO) or 1}) % {sellers} END, false, {now}, {now} "
        f"FROM generate_series(1, {customers}) i"))
    # Every customer has its figures row from creation (models.crm); written here as migration 0012 does.
    conn.execute(text("INSERT INTO customer_metrics (customer_id, orders, revenue, churn_band, refreshed_at) "
                      f"SELECT id, 0, 0, 'inativo', {now} FROM customers"))
    log("customers written")
    conn.execute(text(
        "INSERT INTO products (id, key, name, price, category, brand, attributes, active, created_at, updated_at) "
        "SELECT p, 'produto-' || p, 'Produto ' || p, 20 + p % 300, 'Categoria ' || (p % 25), 'Marca ' || (p % 12), "
        f"'{{}}', true, {now} - interval '400 days', {now} FROM generate_series(1, {PRODUCTS}) p"))
    conn.execute(text(
        "INSERT INTO variants (id, product_id, sku, size, color, options, price, stock, active, created_at, updated_at) "
        f"SELECT p, p, 'SKU-' || p, 'M', 'Preto', '{{}}', 20 + p % 300, 10, true, {now}, {now} "
        f"FROM generate_series(1, {PRODUCTS}) p"))
    orders = customers * ORDERS_PER_CUSTOMER
    # Skewed buyers: a customer id from a power of a uniform number, so a few buy often and many rarely.
    conn.execute(text(
        "INSERT INTO orders (id, external_id, customer_id, status, currency, total, placed_at, received_at, "
        "updated_at) "
        f"SELECT j, 'b-' || j, 1 + floor(power(random(), 1.6) * {customers})::int, "
        "CASE WHEN random() < 0.04 THEN 'cancelled' WHEN random() < 0.1 THEN 'created' ELSE 'paid' END, 'BRL', "
        f"round((30 + random() * 600)::numeric, 2), {now} - random() * interval '730 days', {now}, "
        f"{now} - interval '3 days' FROM generate_series(1, {orders}) j"))
    log("orders written")
    conn.execute(text(
        "INSERT INTO order_items (order_id, sku, name, quantity, unit_price) "
        f"SELECT j, 'SKU-' || (1 + j % {PRODUCTS}), 'Produto ' || (1 + j % {PRODUCTS}), 1, 50 "
        f"FROM generate_series(1, {orders}) j"))
    log("order items written")
    conn.execute(text(
        "INSERT INTO opportunities (customer_id, type, reason, status, priority, seller_id, recommended_skus, "
        "created_at, updated_at) "
        f"SELECT i * {max(1, customers // OPPORTUNITIES)}, 'manual', 'manual', 'assigned', 2, "
        f"101 + (i % {sellers}), '[]', {now}, {now} FROM generate_series(1, {min(OPPORTUNITIES, customers)}) i"))
    for table in ("stores", "users", "customers", "products", "variants", "orders", "order_items", "opportunities"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def _analyze(database) -> None:
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def refresh(database) -> tuple[int, float]:
    """``crm.metrics.refresh_all`` as the daily job runs it: (customers, seconds); statistics refreshed after."""
    started = time.perf_counter()
    refreshed = metrics.refresh_all(database, utcnow())
    refresh_s = time.perf_counter() - started
    _analyze(database)
    log(f"metrics for {refreshed} customers in {refresh_s:.0f} s")
    return refreshed, refresh_s


def _time(session, user, runs: int, **args) -> list[float]:
    customer_listing(session, user, **args)  # warm-up
    taken = []
    for _ in range(runs):
        start = time.perf_counter()
        customer_listing(session, user, **args)
        taken.append((time.perf_counter() - start) * 1000)
    return sorted(taken)


def run(quick: bool = False, customers: int | None = None) -> dict | None:
    if not postgres_reachable():
        log("customer_list: PostgreSQL is not reachable; skipped")
        return None
    size = customers or (QUICK_CUSTOMERS if quick else CUSTOMERS)
    database = fresh_database(postgres_bench_url())
    started = time.perf_counter()
    with database.engine.begin() as conn:
        _populate(conn, size)
    populate_s = time.perf_counter() - started
    log(f"{size} customers, {size * ORDERS_PER_CUSTOMER} orders in {populate_s:.0f} s; refreshing metrics")
    _analyze(database)  # as autovacuum would have: without statistics the planner takes 5 M orders for a few
    refreshed, refresh_s = refresh(database)
    results = measure(database)
    worst = max(r["p95_ms"] for r in results.values())
    database.engine.dispose()
    return emit("customer_list", {
        "customers": size, "orders": size * ORDERS_PER_CUSTOMER, "populate_s": round(populate_s, 1),
        "refresh_s": round(refresh_s, 1), "refresh_per_s": round(refreshed / refresh_s),
        "scenarios": results, "worst_p95_ms": worst, "target_p95_ms": TARGET_P95_MS,
        "meets_target": worst <= TARGET_P95_MS,
    })


def measure(database) -> dict:
    """The scenarios' p50/p95 on a populated database (also callable on its own, to measure again)."""
    rng = random.Random(7)
    with database.transaction() as session:
        for email, role, store in (("dona@loja.example", "admin", None), ("filial@loja.example", "manager", 3)):
            if session.scalar(select(User.id).where(User.email == email)) is None:
                create_user(session, email=email, role=role, password="uma-senha-bem-longa", store_id=store)
    with database.session() as session:
        admin = session.scalar(select(User).where(User.email == "dona@loja.example"))
        branch = session.scalar(select(User).where(User.email == "filial@loja.example"))
        seller = session.scalar(select(User).where(User.role == "seller").order_by(User.id).offset(rng.randrange(50)))
        scenarios = {
            "admin, by name": (admin, {}),
            "admin, by revenue": (admin, {"ordem": "receita"}),
            "admin, by last purchase": (admin, {"ordem": "ultima_compra"}),
            "admin, by risk": (admin, {"ordem": "risco"}),
            "admin, page 100 by name": (admin, {"page": 100}),
            "admin, band alto": (admin, {"risco": "alto"}),
            "admin, band inativo by risk": (admin, {"risco": "inativo", "ordem": "risco"}),
            "admin, bought in 30 days by revenue": (admin, {"ultima_compra": "30", "ordem": "receita"}),
            "admin, never bought": (admin, {"ultima_compra": "nunca"}),
            "admin, search name 'ferreira alves'": (admin, {"q": "ferreira alves"}),
            "admin, search phone '98765'": (admin, {"q": "98765"}),
            "admin, search e-mail 'cliente4242'": (admin, {"q": "cliente4242"}),
            "admin, search city 'curitiba' by risk": (admin, {"q": "curitiba", "ordem": "risco"}),
            "admin, seller filter by revenue": (admin, {"seller": seller.id, "ordem": "receita"}),
            "admin, store filter, band medio": (admin, {"store": 5, "risco": "medio"}),
            "branch manager, by name": (branch, {}),
            "branch manager, by risk": (branch, {"ordem": "risco"}),
            "branch manager, search 'silva'": (branch, {"q": "silva"}),
            "seller, by name": (seller, {}),
            "seller, by revenue, band alto": (seller, {"ordem": "receita", "risco": "alto"}),
        }
        results = {}
        for name, (user, args) in scenarios.items():
            taken = _time(session, user, RUNS, **args)
            results[name] = {"p50_ms": round(statistics.median(taken), 2),
                             "p95_ms": round(percentile(taken, 0.95), 2)}
            log(f"{name}: p50 {results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms")
    return results
