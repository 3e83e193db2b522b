"""Exact money in the ledger: NUMERIC on PostgreSQL, decimal text on SQLite (which has no decimal type and
would store a float). Values go in and come out as Decimal; a float is refused."""

from decimal import Decimal

import sqlalchemy as sa

from mirakl_pipelines.ledger.errors import InvalidLedgerInput


class Money(sa.types.TypeDecorator):
    impl = sa.Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int)):
            raise InvalidLedgerInput(f"money must be a Decimal, got {type(value).__name__} {value!r}")
        value = Decimal(value)
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(str(value))
