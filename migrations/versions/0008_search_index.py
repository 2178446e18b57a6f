"""the catalog's search index: FTS5 on SQLite, tsvector + pg_trgm on PostgreSQL; filled for existing products

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00

SQLite: two FTS5 virtual tables. ``search_docs`` (rowid = product id) holds each sellable product's terms by
field under ``unicode61 remove_diacritics 2``; ``search_terms`` holds the catalog's vocabulary (each word once,
wrapped in ``_`` so its first and last letters make trigrams of their own, with its term and whether a typo may
be corrected to it) under the ``trigram`` tokenizer, to find the words close to a mistyped one. SQLite 3.40's
trigram tokenizer cannot drop accents: it only ever receives normalised text.

PostgreSQL: ``search_documents`` (one row per sellable product: the same fields, and a generated weighted
``tsvector`` with a GIN index) and ``search_terms`` (the vocabulary: ``term`` with a trigram GIN index over the
correctable words, ``pg_trgm``; ``stem`` with a btree, to tell whether a term is in the catalog).

The terms come from Python (``catalog.index``: normalisation and the Portuguese stemmer), so the fill for
existing rows calls the index's own rebuild: the index is derived data, rebuilt whenever its analysis changes.
These tables are not in the ORM metadata (``catalog.index.alembic_include_name`` keeps autogenerate off them).
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE search_docs USING fts5(name, brand, category, colors, sizes, extra, "
                   "tokenize = 'unicode61 remove_diacritics 2')")
        op.execute("CREATE VIRTUAL TABLE search_terms USING fts5(term, stem UNINDEXED, correctable UNINDEXED, "
                   "tokenize = 'trigram')")
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE TABLE search_documents ("
            " product_id integer PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,"
            " name text NOT NULL DEFAULT '', brand text NOT NULL DEFAULT '', category text NOT NULL DEFAULT '',"
            " colors text NOT NULL DEFAULT '', sizes text NOT NULL DEFAULT '', extra text NOT NULL DEFAULT '',"
            " document tsvector GENERATED ALWAYS AS ("
            "  setweight(to_tsvector('simple'::regconfig, name), 'A')"
            "  || setweight(to_tsvector('simple'::regconfig, brand || ' ' || category), 'B')"
            "  || setweight(to_tsvector('simple'::regconfig, colors || ' ' || sizes), 'C')"
            "  || setweight(to_tsvector('simple'::regconfig, extra), 'D')) STORED)")
        # fastupdate off: with GIN's pending list, entries written since the last VACUUM are scanned linearly by
        # every search (7 ms instead of 0.03 ms at 20 000 products after a bulk import, bench/reply.py); searches
        # must not depend on when autovacuum last ran, and catalog writes can afford the immediate index update.
        op.execute("CREATE INDEX ix_search_documents_document ON search_documents USING gin (document) "
                   "WITH (fastupdate = off)")
        op.execute("CREATE TABLE search_terms ("
                   " term text PRIMARY KEY, stem text NOT NULL, correctable boolean NOT NULL)")
        op.execute("CREATE INDEX ix_search_terms_stem ON search_terms (stem)")
        op.execute("CREATE INDEX ix_search_terms_trgm ON search_terms USING gin (term gin_trgm_ops) "
                   "WITH (fastupdate = off) WHERE correctable")

    from catalog.index import rebuild_connection

    rebuild_connection(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_terms")
        op.execute("DROP TABLE IF EXISTS search_docs")
    else:
        op.execute("DROP TABLE IF EXISTS search_terms")
        op.execute("DROP TABLE IF EXISTS search_documents")
        # pg_trgm stays: dropping an extension could break whatever else came to use it.
