from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from models import Cart, CartItem, Customer, Message, MessageStatus, Direction, Product, Order, OrderStatus


def test_times_come_back_aware_utc(session):
    sp = timezone(timedelta(hours=-3))
    c = Customer(phone="+5511999990001", opted_out_at=datetime(2026, 11, 22, 10, 0, tzinfo=sp))
    session.add(c)
    session.commit()
    session.expire_all()
    got = session.get(Customer, c.id)
    assert got.opted_out_at == datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)
    assert got.opted_out_at.utcoffset() == timedelta(0)
    assert got.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(session):
    session.add(Customer(phone="+5511999990002", opted_out_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError):
        session.flush()


def test_money_is_decimal_and_exact(session):
    cart = Cart(customer=Customer(phone="+5511999990003"))
    cart.items = [CartItem(sku="A", name="A", quantity=3, unit_price=Decimal("0.10")),
                  CartItem(sku="B", name="B", quantity=1, unit_price=Decimal("79.90"))]
    cart.recompute_total()
    session.add(cart)
    session.commit()
    session.expire_all()
    got = session.get(Cart, cart.id)
    assert got.total == Decimal("80.20") and isinstance(got.total, Decimal)


@pytest.mark.parametrize("model,kwargs", [
    (Customer, {"phone": "+5511999990004"}),
    (Product, {"key": "P-1", "name": "x", "price": Decimal("1.00")}),
])
def test_unique_keys(session, model, kwargs):
    session.add(model(**kwargs))
    session.flush()
    session.add(model(**kwargs))
    with pytest.raises(IntegrityError):
        session.flush()


def test_provider_sid_is_unique(session):
    c = Customer(phone="+5511999990005")
    session.add(c)
    session.flush()
    for _ in range(2):
        session.add(Message(customer_id=c.id, direction=Direction.INBOUND, kind="shopper", body="oi",
                            provider_sid="SM1", status=MessageStatus.RECEIVED))
    with pytest.raises(IntegrityError):
        session.flush()


def test_enum_columns_refuse_unknown_values(session):
    c = Customer(phone="+5511999990006")
    session.add(c)
    session.flush()
    session.add(Order(external_id="o-1", customer_id=c.id, status="shipped", total=Decimal("1"),
                      placed_at=datetime.now(timezone.utc)))
    with pytest.raises((StatementError, LookupError)):
        session.flush()
    session.rollback()
    assert OrderStatus("paid") is OrderStatus.PAID


def test_migration_0005_marks_earlier_inbound_messages_processed(tmp_path):
    """Messages received before processed_at existed were answered then: the inbound sweep must not replay them."""
    from sqlalchemy import text

    from models import Database, migrate

    database = Database(f"sqlite:///{tmp_path / 'old.db'}", pooled=False)
    migrate.upgrade(database.engine, "0004")
    at = "2026-11-30 10:00:00.000000"
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (id, phone, tags, created_at, updated_at) "
                          "VALUES (1, '+5511999990001', '[]', :at, :at)"), {"at": at})
        for direction, status in (("inbound", "received"), ("outbound", "queued")):
            conn.execute(text("INSERT INTO messages (customer_id, direction, kind, body, media_count, automated, status, "
                              "created_at, updated_at) VALUES (1, :d, 'shopper', 'oi', 0, false, :s, :at, :at)"),
                         {"d": direction, "s": status, "at": at})
    migrate.upgrade(database.engine)
    with database.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT direction, processed_at FROM messages")).all())
    database.engine.dispose()
    assert rows == {"inbound": at, "outbound": None}


def test_migration_0006_rebuilds_tables_that_other_rows_reference(tmp_path):
    """SQLite rebuilds a table to change a CHECK constraint; rows referencing it (coupons -> attempts, messages ->
    customers) must survive, and 'failed' becomes a valid attempt status."""
    from sqlalchemy import text

    from models import Database, migrate

    database = Database(f"sqlite:///{tmp_path / 'old.db'}", pooled=False)
    migrate.upgrade(database.engine, "0005")
    at = "2026-11-30 10:00:00.000000"
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (id, phone, tags, created_at, updated_at) "
                          "VALUES (1, '+5511999990001', '[]', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO coupon_rules (id, name, kind, value, min_order, recovery_only, active, "
                          "created_at, updated_at) VALUES (1, 'r', 'percent', 10, 0, true, true, :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO recovery_attempts (id, customer_id, interaction_at, due_at, status, variant, "
                          "created_at, updated_at) VALUES (1, 1, :at, :at, 'sent', 'A', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO coupons (code, rule_id, customer_id, attempt_id, issued_at, expires_at) "
                          "VALUES ('VOLTA-X', 1, 1, 1, :at, :at)"), {"at": at})
    migrate.upgrade(database.engine)
    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT attempt_id FROM coupons")).scalar() == 1
        assert conn.execute(text("SELECT simulated FROM customers")).scalar() in (0, False)
        conn.execute(text("UPDATE recovery_attempts SET status = 'failed'"))
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # enforcement is back on after migrating
    migrate.downgrade(database.engine, "0005")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM recovery_attempts")).scalar() == "skipped"
    database.engine.dispose()


def test_the_models_and_the_migrations_describe_the_same_schema(migrated_database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from models import Base

    from catalog.index import alembic_include_name

    with migrated_database.engine.connect() as conn:
        # The search index's tables and a few hand-made indexes live outside the ORM's metadata.
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": alembic_include_name})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_a_sku_is_unique_across_products_and_a_variant_goes_with_its_product(session):
    from models import Variant

    shoe = Product(key="TENIS", name="Tênis", price=Decimal("10.00"),
                   variants=[Variant(sku="TENIS-40", size="40", price=Decimal("10.00"))])
    cap = Product(key="BONE", name="Boné", price=Decimal("5.00"))
    session.add_all([shoe, cap])
    session.flush()
    cap.variants.append(Variant(sku="TENIS-40", price=Decimal("5.00")))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    shoe = Product(key="TENIS", name="Tênis", price=Decimal("10.00"),
                   variants=[Variant(sku="TENIS-40", size="40", stock=0, price=Decimal("10.00")),
                             Variant(sku="TENIS-41", size="41", stock=None, price=Decimal("10.00"))])
    session.add(shoe)
    session.flush()
    assert [v.available for v in shoe.variants] == [False, True]  # stock None: not tracked, always available
    assert shoe.variants[1].label() == "Tênis 41"
    session.delete(shoe)
    session.flush()
    assert session.scalar(select(func.count()).select_from(Variant)) == 0


def test_migration_0007_turns_listed_sizes_into_variants(tmp_path):
    """A product of before variants becomes one variant per listed size (its colour and price), a one-size product
    keeps its SKU (so carts that name it still match), and a chat cart line points at its variant."""
    import json

    from sqlalchemy import text

    from models import Database, migrate

    database = Database(f"sqlite:///{tmp_path / 'old.db'}", pooled=False)
    migrate.upgrade(database.engine, "0006")
    at = "2026-11-30 10:00:00.000000"
    with database.engine.begin() as conn:
        for sku, name, attributes in (("TEN-1", "Tênis Corrida Preto", {"cor": "preto", "tamanhos": ["40", "41"],
                                                                         "material": "mesh"}),
                                      ("BONE-1", "Boné", {"cor": "preto", "tamanhos": ["Único"]})):
            conn.execute(text("INSERT INTO products (sku, name, price, attributes, active, created_at, updated_at) "
                              "VALUES (:sku, :name, 99.90, :a, true, :at, :at)"),
                         {"sku": sku, "name": name, "a": json.dumps(attributes), "at": at})
        conn.execute(text("INSERT INTO customers (id, phone, tags, created_at, updated_at) "
                          "VALUES (1, '+5511999990001', '[]', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO carts (id, source, customer_id, status, currency, total, created_at, updated_at)"
                          " VALUES (1, 'bot', 1, 'open', 'BRL', 99.90, :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO cart_items (cart_id, sku, name, quantity, unit_price) "
                          "VALUES (1, 'BONE-1', 'Boné', 1, 99.90)"))
    migrate.upgrade(database.engine, "0007")
    with database.engine.connect() as conn:
        variants = conn.execute(text("SELECT p.key, v.sku, v.size, v.color FROM variants v "
                                     "JOIN products p ON p.id = v.product_id ORDER BY v.id")).all()
        attributes = [json.loads(a) for (a,) in conn.execute(text("SELECT attributes FROM products ORDER BY id"))]
        line = conn.execute(text("SELECT v.sku FROM cart_items i JOIN variants v ON v.id = i.variant_id")).scalar()
    database.engine.dispose()
    assert variants == [("TEN-1", "TEN-1-40", "40", "Preto"), ("TEN-1", "TEN-1-41", "41", "Preto"),
                        ("BONE-1", "BONE-1", "Único", "Preto")]
    assert attributes == [{"material": "mesh"}, {}]
    assert line == "BONE-1"
