"""Schema creation is idempotent and additive changes reach existing databases, on both backends."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mirakl_pipelines.ledger import InvalidLedgerInput, Ledger, LedgerError
from mirakl_pipelines.ledger.schema import MIGRATIONS, SCHEMA_VERSION, Migration, ensure_schema
from mirakl_pipelines.ledger.tables import metadata, schema_version

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _observe(ledger, order_id):
    return ledger.observe_order(
        "decathlon_fr", order_id, commercial_id=None, mirakl_state="SHIPPING", created_at=None, updated_at=None,
        acceptance_deadline=None, eligible=True, skip_reason=None, now=T0,
    )


def test_connect_creates_every_table_and_records_the_version(ledger):
    inspector = sa.inspect(ledger.engine)
    assert set(metadata.tables) <= set(inspector.get_table_names())
    with ledger.engine.connect() as conn:
        assert list(conn.scalars(sa.select(schema_version.c.version))) == [SCHEMA_VERSION]


def test_connecting_twice_is_idempotent_and_keeps_data(ledger_url):
    with Ledger.connect(ledger_url) as first:
        _observe(first, "O-1")
    with Ledger.connect(ledger_url) as second, Ledger.connect(ledger_url) as third:
        assert list(second.get_order_links("decathlon_fr", ["O-1"])) == ["O-1"]
        assert third.count_links()["pending"] == 1
        with second.engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(schema_version)) == 1


def test_a_column_added_to_the_code_is_added_to_an_existing_database(ledger_url):
    with Ledger.connect(ledger_url) as ledger:
        _observe(ledger, "O-1")
        index_names = {ix["name"] for ix in sa.inspect(ledger.engine).get_indexes("order_links")}
        # Simulate a database created before shopify_legacy_id and the Shopify-id index existed.
        with ledger.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_order_links_shopify_order_id"))
            conn.execute(sa.text("ALTER TABLE order_links DROP COLUMN shopify_legacy_id"))
        assert "shopify_legacy_id" not in {c["name"] for c in sa.inspect(ledger.engine).get_columns("order_links")}
    assert "ix_order_links_shopify_order_id" in index_names

    with Ledger.connect(ledger_url) as upgraded:
        inspector = sa.inspect(upgraded.engine)
        assert "shopify_legacy_id" in {c["name"] for c in inspector.get_columns("order_links")}
        assert {ix["name"] for ix in inspector.get_indexes("order_links")} == index_names
        assert upgraded.get_order_links("decathlon_fr", ["O-1"])["O-1"].shopify_legacy_id is None
        upgraded.record_import("decathlon_fr", "O-1", shopify_order_id="gid://shopify/Order/7",
                               shopify_order_name="#1007", shopify_legacy_id="7", now=T0 + timedelta(minutes=1))
        assert upgraded.get_order_links("decathlon_fr", ["O-1"])["O-1"].shopify_legacy_id == "7"


def test_a_new_not_null_column_without_default_is_refused_clearly(ledger):
    later = sa.MetaData()
    sa.Table("order_links", later, sa.Column("marketplace", sa.String(64), primary_key=True),
             sa.Column("must_have", sa.String(10), nullable=False))
    with pytest.raises(LedgerError, match=r"cannot add column order_links.must_have .* nullable or have a server_default"):
        ensure_schema(ledger.engine, tables=later)


def test_migrations_with_data_work_run_once_in_order(ledger):
    later = sa.MetaData()
    notes = sa.Table("demo_notes", later, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.Text))
    calls = []

    def backfill(conn):
        calls.append("backfill")
        conn.execute(sa.insert(notes).values(text="back-filled"))

    migrations = [*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "back-fill demo notes", backfill)]
    assert ensure_schema(ledger.engine, tables=later, migrations=migrations) == SCHEMA_VERSION + 1
    assert ensure_schema(ledger.engine, tables=later, migrations=migrations) == SCHEMA_VERSION + 1
    assert calls == ["backfill"]
    with ledger.engine.connect() as conn:
        assert list(conn.scalars(sa.select(notes.c.text))) == ["back-filled"]
        assert list(conn.scalars(sa.select(schema_version.c.version).order_by(schema_version.c.version))) == [
            SCHEMA_VERSION, SCHEMA_VERSION + 1
        ]


def test_urls_the_ledger_cannot_use_are_refused(tmp_path):
    with pytest.raises(InvalidLedgerInput, match=r"use postgresql\+psycopg2://"):
        Ledger.connect("postgresql://u@127.0.0.1:1/db")
    with pytest.raises(InvalidLedgerInput, match=r"needs a SQLite file"):
        Ledger.connect("sqlite://")
    with pytest.raises(InvalidLedgerInput, match=r"backend 'mysql' is not supported"):
        Ledger.connect("mysql://u@localhost/db")
    with pytest.raises(InvalidLedgerInput, match=r"is not a database URL"):
        Ledger.connect("not a url")


def test_sqlite_parent_directory_is_created_and_wal_is_on(tmp_path):
    path = tmp_path / "deep" / "er" / "ledger.sqlite"
    with Ledger.connect(f"sqlite:///{path}") as ledger:
        assert path.exists()
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
