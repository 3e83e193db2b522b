"""The webhook inbox: every Shopify delivery stored once (X-Shopify-Webhook-Id), read by cursor or as a work queue.

The receiver only inserts; sensors read ``inbox_after(cursor)`` and flows mark what they handled.
A cursor is safe only if ids become visible in increasing order. SQLite has one writer at a time,
so that holds; on PostgreSQL two transactions could take ids 11 and 12 and commit 12 first, and a
reader at that moment would move its cursor past 11 for good. Inserts therefore take a
transaction-level advisory lock there: the insert is the whole transaction, so this costs little.

A delivery that cannot be stored as parsed (not JSON, not an object, nested deeper than
MAX_PAYLOAD_DEPTH, a NUL or a lone surrogate in a string, an id wider than its column) is
quarantined instead: kept verbatim, marked processed, hidden from the readers, and raised in the
exception queue in the same transaction. Readers never meet a row that would fail their flow, and
one poison delivery never holds up the others.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput, LedgerError
from mirakl_pipelines.ledger.records import InboxEntry, OrderLink
from mirakl_pipelines.ledger.tables import INBOX_PARSED_WHERE, INBOX_UNPROCESSED_WHERE
from mirakl_pipelines.ledger.tables import order_links as links
from mirakl_pipelines.ledger.tables import webhook_inbox as i
from mirakl_pipelines.ledger.timestamps import require_aware

# Arbitrary constant naming "webhook inbox inserts" among PostgreSQL advisory locks.
_PG_INBOX_LOCK_ID = 0x4D494E42  # "MINB"
_IN_CHUNK = 500
_ORDER_GID_PREFIX = "gid://shopify/Order/"
# Shopify's bodies are a handful of levels deep; far deeper is not a Shopify resource, and every reader
# (json, the flows) would have to survive it.
MAX_PAYLOAD_DEPTH = 64
# Quarantined deliveries belong to no marketplace yet: their exceptions are filed under this name.
QUARANTINE_MARKETPLACE = "shopify"
QUARANTINE_KIND = "webhook_quarantined"
QUARANTINED = "quarantined"  # the outcome of a quarantined row (it is marked processed when stored)
# The widths of the inbox's text columns that hold header values: a longer value cannot be stored.
HEADER_WIDTHS = {name: i.c[name].type.length
                 for name in ("webhook_id", "topic", "shop_domain", "api_version", "event_id")}
_ID_WIDTH = i.c.resource_id.type.length


class UnstorablePayload(InvalidLedgerInput):
    """A delivery's body cannot be stored as parsed; ``reason`` says why without quoting the body."""

    def __init__(self, record: str, reason: str):
        self.reason = reason
        super().__init__(f"{record}: {reason}")


@dataclass(frozen=True)
class QuarantinedWebhook:
    """A delivery kept verbatim because it could not be stored as parsed."""

    id: int
    webhook_id: str
    topic: str
    shop_domain: str
    api_version: str
    event_id: str | None
    triggered_at: datetime | None
    received_at: datetime
    raw_body: bytes
    reason: str


def payload_ids(topic: str, payload: dict) -> tuple[str | None, str | None]:
    """(resource id, Shopify order id) of a delivery, as strings; None where the topic has none.

    fulfillments/* and refunds/* carry the order in ``order_id``; orders/* are the order itself,
    except orders/edited, whose body is ``{"order_edit": {"id", "order_id", …}}``;
    inventory_levels/* have no ``id`` and are identified by their inventory item.
    """
    if topic == "orders/edited":
        edit = payload.get("order_edit")
        edit = edit if isinstance(edit, dict) else {}
        return _id_text(edit.get("id")), _id_text(edit.get("order_id"))
    if topic.startswith("inventory_levels/"):
        return _id_text(payload.get("inventory_item_id")), None
    resource = _id_text(payload.get("id"))
    if topic.startswith("orders/"):
        return resource, resource
    return resource, _id_text(payload.get("order_id"))


def _id_text(value) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return str(value)


class _Unstorable(ValueError):
    """Raised deep in payload_to_json; each enclosing level adds its key to ``path``."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


def payload_to_json(value) -> str:
    """JSON text of a parsed body, with Decimal written back as the number it was read from.

    ValueError, naming where, for what cannot be stored as parsed: nesting deeper than MAX_PAYLOAD_DEPTH,
    a NUL character (PostgreSQL text cannot hold one) or a lone surrogate (not Unicode text) in a string.
    """
    try:
        return _to_json(value, 0)
    except _Unstorable as exc:
        path = exc.path[::-1]
        where = "".join(path) if len(path) <= 10 else "".join(path[:8]) + f"…({len(path) - 8} more levels)"
        raise ValueError(f"{exc.problem} at ${where}") from None


def _to_json(value, depth: int) -> str:
    # json.dumps cannot emit a Decimal as a number, and a float or a string would change the payload.
    if isinstance(value, str):
        _check_text(value)
        return json.dumps(value)
    if isinstance(value, dict):
        if depth >= MAX_PAYLOAD_DEPTH:
            raise _Unstorable(f"nesting deeper than {MAX_PAYLOAD_DEPTH} levels")
        parts = []
        for k, v in value.items():
            key = str(k)
            try:
                _check_text(key)
                parts.append(f"{json.dumps(key)}:{_to_json(v, depth + 1)}")
            except _Unstorable as exc:
                exc.path.append(f"[{json.dumps(key[:40])}]")  # ASCII: NULs and surrogates come out escaped
                raise
        return "{" + ",".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        if depth >= MAX_PAYLOAD_DEPTH:
            raise _Unstorable(f"nesting deeper than {MAX_PAYLOAD_DEPTH} levels")
        parts = []
        for n, v in enumerate(value):
            try:
                parts.append(_to_json(v, depth + 1))
            except _Unstorable as exc:
                exc.path.append(f"[{n}]")
                raise
        return "[" + ",".join(parts) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)
    return json.dumps(value, allow_nan=False)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Unstorable("a NUL character (\\u0000) in a string")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unstorable("a lone surrogate (\\ud800-\\udfff) in a string") from None


class WebhookInbox(LedgerBase):
    def store_webhook(
        self,
        *,
        webhook_id: str,
        topic: str,
        shop_domain: str,
        api_version: str,
        event_id: str | None,
        triggered_at: datetime | None,
        payload: dict,
        now: datetime,
    ) -> bool:
        """Store a delivery; False when this webhook id is already stored (a redelivery). Never raises for a duplicate."""
        record = f"webhook {webhook_id!r}"
        for field, value in (("webhook_id", webhook_id), ("topic", topic), ("shop_domain", shop_domain),
                             ("api_version", api_version)):
            require_text(value, field, record)
        if event_id is not None:
            require_text(event_id, "event_id", record)
        triggered_at = require_aware(triggered_at, "triggered_at", record)
        now = require_aware(now, "now", record, optional=False)
        record = f"{record} ({topic})"
        if not isinstance(payload, dict):
            raise UnstorablePayload(record, f"payload must be a JSON object, got {type(payload).__name__}")
        try:
            body = payload_to_json(payload)
        except (TypeError, ValueError) as exc:
            raise UnstorablePayload(record, f"payload cannot be stored as parsed: {exc}") from exc
        resource_id, shopify_order_id = payload_ids(topic, payload)
        for name, value in (("resource id", resource_id), ("order id", shopify_order_id)):
            if value is not None and len(value) > _ID_WIDTH:
                raise UnstorablePayload(record,
                                        f"the {name} is {len(value)} characters long; the inbox holds {_ID_WIDTH}")

        row = {
            "webhook_id": webhook_id,
            "topic": topic,
            "shop_domain": shop_domain,
            "api_version": api_version,
            "event_id": event_id,
            "triggered_at": triggered_at,
            "received_at": now,
            "resource_id": resource_id,
            "shopify_order_id": shopify_order_id,
            "payload": body,
        }
        try:
            return self._insert_inbox_row(row) is not None
        except (sa.exc.DataError, sa.exc.IntegrityError, ValueError, UnicodeError) as exc:
            # The checks above should leave nothing for the database to refuse; if it still does, it is the content.
            raise UnstorablePayload(record, f"the ledger refused the payload ({type(exc).__name__})") from exc

    def quarantine_webhook(
        self,
        *,
        webhook_id: str,
        topic: str,
        shop_domain: str,
        api_version: str,
        event_id: str | None,
        triggered_at: datetime | None,
        raw_body: bytes,
        reason: str,
        now: datetime,
    ) -> bool:
        """Keep a delivery that cannot be stored as parsed verbatim, and raise it in the exception queue.

        The row is marked processed (outcome "quarantined") and the readers skip it; the exception
        (marketplace "shopify", kind "webhook_quarantined", record = the webhook id) is opened in the
        same transaction. False when this webhook id is already stored (a redelivery).
        """
        record = f"webhook {webhook_id!r}"
        for field, value in (("webhook_id", webhook_id), ("topic", topic), ("shop_domain", shop_domain),
                             ("api_version", api_version), ("reason", reason)):
            require_text(value, field, record)
        if event_id is not None:
            require_text(event_id, "event_id", record)
        if not isinstance(raw_body, bytes):
            raise InvalidLedgerInput(f"{record}: raw_body must be bytes, got {type(raw_body).__name__}")
        triggered_at = require_aware(triggered_at, "triggered_at", record)
        now = require_aware(now, "now", record, optional=False)
        row = {
            "webhook_id": webhook_id,
            "topic": topic,
            "shop_domain": shop_domain,
            "api_version": api_version,
            "event_id": event_id,
            "triggered_at": triggered_at,
            "received_at": now,
            "resource_id": None,
            "shopify_order_id": None,
            "payload": "null",
            "raw_body": raw_body,
            "quarantine_reason": reason,
            "processed_at": now,
            "outcome": QUARANTINED,
        }
        details = {"webhook_id": webhook_id, "topic": topic, "shop_domain": shop_domain, "api_version": api_version,
                   "event_id": event_id, "bytes": len(raw_body), "sha256": hashlib.sha256(raw_body).hexdigest()}

        def open_exception(conn: sa.Connection, inbox_id: int) -> None:
            self._open_exception(
                conn, QUARANTINE_MARKETPLACE, QUARANTINE_KIND, webhook_id,
                f"{topic} delivery from {shop_domain} kept verbatim as inbox #{inbox_id} and passed to no flow: "
                f"{reason}", {**details, "inbox_id": inbox_id}, now)

        return self._insert_inbox_row(row, then=open_exception) is not None

    def quarantined_webhooks(self, *, after: int = 0, limit: int = 500) -> list[QuarantinedWebhook]:
        """Quarantined deliveries with inbox id > ``after``, oldest first, with their raw bodies."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidLedgerInput(f"inbox cursor must be an int >= 0, got {after!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidLedgerInput(f"inbox limit must be an int >= 1, got {limit!r}")
        query = sa.select(i).where(i.c.id > after, ~INBOX_PARSED_WHERE).order_by(i.c.id).limit(limit)
        with self._read() as conn:
            return [
                QuarantinedWebhook(
                    **{name: row[name] for name in QuarantinedWebhook.__dataclass_fields__ if name != "reason"},
                    reason=row["quarantine_reason"],
                )
                for row in conn.execute(query).mappings()
            ]

    def _insert_inbox_row(self, row: dict, then=None) -> int | None:
        """Insert unless the webhook id is stored; the new id (None for a redelivery), after ``then(conn, id)``."""
        with self._write() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_INBOX_LOCK_ID)))
            inbox_id = conn.execute(self._inbox_insert(), row).scalar_one_or_none()
            if inbox_id is not None and then is not None:
                then(conn, inbox_id)
            return inbox_id

    def _inbox_insert(self):
        # Built once: the receiver calls this for every delivery, and building the statement costs more than running it.
        stmt = getattr(self, "_inbox_insert_stmt", None)
        if stmt is None:
            stmt = self._upsert(i).on_conflict_do_nothing(index_elements=[i.c.webhook_id]).returning(i.c.id)
            self._inbox_insert_stmt = stmt
        return stmt

    def inbox_after(self, cursor: int, *, topics: Iterable[str] | None = None, limit: int = 500) -> list[InboxEntry]:
        """Entries with id > ``cursor``, oldest first; the last one's id is the next cursor. Skips quarantined rows."""
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise InvalidLedgerInput(f"inbox cursor must be an int >= 0, got {cursor!r}")
        return self._entries(sa.select(i).where(i.c.id > cursor, INBOX_PARSED_WHERE), topics, limit)

    def unprocessed(self, *, topics: Iterable[str] | None, limit: int = 500) -> list[InboxEntry]:
        """Entries not yet marked processed, oldest first (a work queue that survives a lost cursor).

        Quarantined rows are stored as processed, so they never enter the queue.
        """
        return self._entries(sa.select(i).where(INBOX_UNPROCESSED_WHERE), topics, limit)

    def latest_inbox_id(self) -> int:
        """The newest entry's id, 0 when the inbox is empty (a cursor that starts after everything stored)."""
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.coalesce(sa.func.max(i.c.id), 0))).scalar_one()

    def mark_processed(self, ids: Iterable[int], *, outcome: str, now: datetime) -> int:
        """Record what was done with these entries; returns how many rows were marked."""
        wanted = list(dict.fromkeys(ids))
        record = f"inbox entries {wanted[:5]}{'…' if len(wanted) > 5 else ''}"
        require_text(outcome, "outcome", record)
        now = require_aware(now, "now", record, optional=False)
        bad = [x for x in wanted if isinstance(x, bool) or not isinstance(x, int)]
        if bad:
            raise InvalidLedgerInput(f"{record}: ids must be ints, got {bad[:5]!r}")
        marked = 0
        with self._write() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                result = conn.execute(sa.update(i).where(i.c.id.in_(chunk)).values(processed_at=now, outcome=outcome))
                marked += result.rowcount
        return marked

    def order_link_by_shopify_id(self, shopify_order_id: str | int) -> OrderLink | None:
        """The order link of a Shopify order, given its GID (gid://shopify/Order/123) or legacy id (123)."""
        text = require_text(str(shopify_order_id) if isinstance(shopify_order_id, int) else shopify_order_id,
                            "shopify_order_id", "order link look-up").strip()
        legacy = text[len(_ORDER_GID_PREFIX):] if text.startswith(_ORDER_GID_PREFIX) else text
        gid = _ORDER_GID_PREFIX + legacy
        # The importer stores the GID; a bare id is matched too. Both use the shopify_order_id index,
        # which a webhook look-up needs (an OR on shopify_legacy_id would scan the table).
        query = (
            sa.select(links)
            .where(links.c.shopify_order_id.in_([gid, legacy]))
            .order_by(links.c.marketplace, links.c.mirakl_order_id)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        if len(rows) > 1:
            found = [f"{r['marketplace']}/{r['mirakl_order_id']}" for r in rows]
            raise LedgerError(f"Shopify order {text!r} is linked to several Mirakl orders {found}; the ledger needs repair")
        return OrderLink.from_row(rows[0]) if rows else None

    def _entries(self, query, topics: Iterable[str] | None, limit: int) -> list[InboxEntry]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidLedgerInput(f"inbox limit must be an int >= 1, got {limit!r}")
        if topics is not None:
            topics = [topics] if isinstance(topics, str) else list(topics)
            query = query.where(i.c.topic.in_(topics))
        with self._read() as conn:
            return [InboxEntry.from_row(row) for row in conn.execute(query.order_by(i.c.id).limit(limit)).mappings()]
