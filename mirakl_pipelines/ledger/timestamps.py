"""UTC timestamps in and out of the ledger, whatever the backend.

SQLite has no time-zone type: SQLAlchemy stores the wall-clock text and hands back naive values.
Every timestamp is therefore converted to UTC on the way in and marked UTC on the way out, so
callers always get tz-aware datetimes and comparisons in SQL compare like with like.
"""

from datetime import datetime, timezone

import sqlalchemy as sa

from mirakl_pipelines.ledger.errors import InvalidLedgerInput


class UtcDateTime(sa.types.TypeDecorator):
    """A tz-aware UTC datetime column (TIMESTAMP WITH TIME ZONE on PostgreSQL, UTC text on SQLite)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise InvalidLedgerInput(f"expected a datetime, got {type(value).__name__} {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidLedgerInput(f"naive datetime {value.isoformat()} refused: the ledger stores tz-aware UTC only")
        value = value.astimezone(timezone.utc)
        # SQLite keeps text; dropping the (always UTC) offset keeps that text sortable.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def require_aware(value: datetime | None, field: str, record: str, *, optional: bool = True) -> datetime | None:
    """Check a datetime argument before it reaches SQL, naming the record in the error."""
    if value is None:
        if optional:
            return None
        raise InvalidLedgerInput(f"{record}: {field} is required")
    if not isinstance(value, datetime):
        raise InvalidLedgerInput(f"{record}: {field} must be a datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidLedgerInput(f"{record}: {field} {value.isoformat()} is naive; pass a tz-aware datetime (UTC)")
    return value.astimezone(timezone.utc)
