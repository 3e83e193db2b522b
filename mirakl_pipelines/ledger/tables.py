"""The ledger's tables (SQLAlchemy Core). One MetaData: the schema module creates and upgrades it.

Adding a flow's state (fulfilment pushes, refund links, stock pushes, webhook inbox) means adding
its Table here; columns added later to an existing table must be nullable or carry a
server_default so that ``schema.ensure_schema`` can add them to existing databases.
"""

import sqlalchemy as sa

from mirakl_pipelines.ledger.money import Money
from mirakl_pipelines.ledger.timestamps import UtcDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

# One row per (marketplace, Mirakl order): what Mirakl said last, and what we did about it.
order_links = sa.Table(
    "order_links",
    metadata,
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("mirakl_order_id", sa.String(128), primary_key=True),
    sa.Column("commercial_id", sa.String(128)),
    sa.Column("mirakl_state", sa.String(64)),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("skip_reason", sa.Text),
    sa.Column("import_state", sa.String(16), nullable=False),
    sa.Column("shopify_order_id", sa.String(128)),
    sa.Column("shopify_order_name", sa.String(64)),
    sa.Column("shopify_legacy_id", sa.String(64)),
    sa.Column("acceptance_state", sa.String(16), nullable=False),
    sa.Column("mirakl_created_at", UtcDateTime),
    sa.Column("mirakl_updated_at", UtcDateTime),
    sa.Column("acceptance_deadline", UtcDateTime),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("eligible_since", UtcDateTime),
    sa.Column("imported_at", UtcDateTime),
    sa.Column("accepted_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The partition day whose raw file holds the latest snapshot seen (a refresh may fetch the previous day's tail).
    sa.Column("snapshot_day", sa.Date),
    # What the latest snapshot says, and what the Shopify order shows, so follow-ups are found without parsing:
    # a debit to mark paid, an address to complete.
    sa.Column("mirakl_paid", sa.Boolean),
    sa.Column("mirakl_has_address", sa.Boolean),
    sa.Column("payment_state", sa.String(16)),  # Shopify: paid | pending
    sa.Column("address_state", sa.String(16)),  # Shopify: complete | missing (imported before Mirakl showed it)
    sa.Index(None, "marketplace", "import_state", "eligible_since"),
    sa.Index(None, "marketplace", "mirakl_state", "acceptance_state"),
    # Webhooks arrive with the Shopify id and must find the Mirakl order.
    sa.Index(None, "shopify_order_id"),
)

# One row per Mirakl order line, from the latest snapshot seen: its live units and amounts (order_lines.py), the
# acceptance decision sent, the units imported into Shopify and the cancelled units handled there since.
# Acceptance reserves stock from it, the payouts reconciliation reads the commission of every line kept.
order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("mirakl_order_id", sa.String(128), primary_key=True),
    sa.Column("order_line_id", sa.String(160), primary_key=True),
    sa.Column("sku", sa.String(255)),
    sa.Column("line_state", sa.String(64)),
    sa.Column("ordered_quantity", sa.Integer, nullable=False),
    sa.Column("cancelled_quantity", sa.Integer, nullable=False),
    sa.Column("live_quantity", sa.Integer, nullable=False),
    sa.Column("price", Money),  # None when the line's amounts cannot be read (the import says why)
    sa.Column("shipping", Money),
    sa.Column("fees", Money),
    sa.Column("commission_fee", Money),
    sa.Column("commission_vat", Money),
    sa.Column("commission_vat_rate", Money),
    sa.Column("total_commission", Money),
    sa.Column("decision", sa.String(16)),  # accepted | refused (OR21 as sent)
    sa.Column("imported_quantity", sa.Integer),  # units created in Shopify
    # Units cancelled after import and handled in Shopify (fulfilment held, or reported as already shipped).
    sa.Column("held_quantity", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "sku"),
)

# Things a person must act on. At most one OPEN row per (marketplace, kind, record); resolved rows stay as history.
exception_queue = sa.Table(
    "exception_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("marketplace", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
)
OPEN_EXCEPTION_WHERE = exception_queue.c.status == "open"
sa.Index(
    "uq_exception_queue_open",
    exception_queue.c.marketplace,
    exception_queue.c.kind,
    exception_queue.c.record_id,
    unique=True,
    sqlite_where=OPEN_EXCEPTION_WHERE,
    postgresql_where=OPEN_EXCEPTION_WHERE,
)
sa.Index(None, exception_queue.c.status, exception_queue.c.marketplace)

# End of the last successful fetch window per flow, marketplace and partition day.
sync_watermarks = sa.Table(
    "sync_watermarks",
    metadata,
    sa.Column("flow", sa.String(64), primary_key=True),
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Next booked call slot per budget key (epoch seconds), shared by every process using the ledger.
call_budget = sa.Table(
    "call_budget",
    metadata,
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("last_slot", sa.Double, nullable=False),
    # The last slot's class (mirakl.budget: live | background; NULL: live) and until when background callers leave
    # the next slot to a refused live caller (NULL: none owed).
    sa.Column("last_priority", sa.String(16)),
    sa.Column("live_hold_until", sa.Double),
    # Who booked the last slot (a run id; NULL: nobody in particular), whether it claimed it (it called, or is about
    # to), and the slot before it: an unclaimed slot of a run that died is given back (mirakl.budget.release_slot).
    sa.Column("last_owner", sa.String(64)),
    sa.Column("last_claimed", sa.Boolean),
    sa.Column("previous_slot", sa.Double),
)

# A live refresh owed per flow and marketplace: one that skipped (its call slot was taken) or failed. The catch-up
# sensor runs it once the slot opens; a successful fetch after `owed_at` (its watermark) settles it.
refresh_debts = sa.Table(
    "refresh_debts",
    metadata,
    sa.Column("flow", sa.String(64), primary_key=True),
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("owed_since", UtcDateTime, nullable=False),  # first time owed since the last settled debt
    sa.Column("owed_at", UtcDateTime, nullable=False),  # latest time owed: identifies the debt (the catch-up run key)
    sa.Column("slot_opens_at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("times", sa.Integer, nullable=False),  # how often owed since `owed_since`
)

# Every Shopify webhook delivery received, once per X-Shopify-Webhook-Id. The id is the readers' cursor:
# ids are handed out and committed in order (see inbox.py), so "id > cursor" never skips a row.
webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    # BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY (and never reuses ids with AUTOINCREMENT).
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(255), nullable=False, unique=True),
    sa.Column("topic", sa.String(128), nullable=False),
    sa.Column("shop_domain", sa.String(255), nullable=False),
    sa.Column("api_version", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(255)),
    sa.Column("triggered_at", UtcDateTime),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("resource_id", sa.String(128)),
    sa.Column("shopify_order_id", sa.String(128)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("processed_at", UtcDateTime),
    sa.Column("outcome", sa.Text),
    # A delivery that cannot be stored as parsed (inbox.py) is kept verbatim, with why; its payload is then 'null'.
    sa.Column("raw_body", sa.LargeBinary),
    sa.Column("quarantine_reason", sa.Text),
    sa.Index(None, "topic", "id"),
    sa.Index(None, "shopify_order_id"),
    sqlite_autoincrement=True,
)
INBOX_UNPROCESSED_WHERE = webhook_inbox.c.processed_at.is_(None)
INBOX_PARSED_WHERE = webhook_inbox.c.quarantine_reason.is_(None)
sa.Index(
    "ix_webhook_inbox_unprocessed",
    webhook_inbox.c.topic,
    webhook_inbox.c.id,
    sqlite_where=INBOX_UNPROCESSED_WHERE,
    postgresql_where=INBOX_UNPROCESSED_WHERE,
)

# One row per Shopify fulfilment of an imported order: what it carried, what was sent to Mirakl, and
# where each step (OR23 tracking, OR24 ship, OR74 invoice) stands, so a crashed push resumes exactly.
fulfilment_pushes = sa.Table(
    "fulfilment_pushes",
    metadata,
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("mirakl_order_id", sa.String(128), primary_key=True),
    sa.Column("shopify_fulfillment_id", sa.String(128), primary_key=True),
    sa.Column("shopify_order_id", sa.String(128), nullable=False),
    sa.Column("shopify_status", sa.String(32)),
    sa.Column("fulfilment_created_at", UtcDateTime),
    sa.Column("fulfilment_updated_at", UtcDateTime),
    # When Shopify showed that version (the webhook's triggered-at, the sweep's read time): it orders two versions
    # with the same whole-second updated_at.
    sa.Column("fulfilment_seen_at", UtcDateTime),
    sa.Column("tracking_company", sa.Text),
    sa.Column("tracking_number", sa.Text),
    sa.Column("tracking_url", sa.Text),
    sa.Column("carrier_code", sa.String(128)),
    sa.Column("carrier_name", sa.Text),
    sa.Column("carrier_url", sa.Text),
    sa.Column("line_quantities", sa.JSON, nullable=False),
    sa.Column("tracking_numbers", sa.JSON),  # every number of the parcel (tracking_number is the first)
    # With Mirakl's multiple shipments, the parcel is its own Mirakl shipment: OR23 is then the tracking sent
    # with it and OR24 its creation as shipped (ST01), whose id this is.
    sa.Column("shipment_id", sa.String(64)),
    sa.Column("or23_state", sa.String(16), nullable=False),
    sa.Column("or23_at", UtcDateTime),
    sa.Column("or23_error", sa.Text),
    sa.Column("or24_state", sa.String(16), nullable=False),
    sa.Column("or24_at", UtcDateTime),
    sa.Column("or24_error", sa.Text),
    sa.Column("or74_state", sa.String(16), nullable=False),
    sa.Column("or74_at", UtcDateTime),
    sa.Column("or74_error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Named: the generated name passes PostgreSQL's 63 characters and would be truncated.
    sa.Index("ix_fulfilment_pushes_or24", "marketplace", "or24_state", "fulfilment_created_at"),
    sa.Index(None, "shopify_fulfillment_id"),
)

# One row per STO01 stock import sent: what it carried and where Mirakl's asynchronous processing stands
# (WAITING → RUNNING → COMPLETE | FAILED), so the next run waits for it instead of sending over it.
stock_imports = sa.Table(
    "stock_imports",
    metadata,
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("import_id", sa.String(128), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),  # delta | full
    sa.Column("run_id", sa.String(64)),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("snapshot_at", UtcDateTime, nullable=False),  # when Shopify was read for it
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # Mirakl's STO02 status (SENT before the first poll)
    sa.Column("lines_in_success", sa.Integer),
    sa.Column("lines_in_error", sa.Integer),
    sa.Column("lines_rejected", sa.Integer),  # lines STO03 named
    sa.Column("finished_at", UtcDateTime),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "marketplace", "status"),
)

# The last quantity sent per (marketplace, offer SKU) and what became of it: a delta file carries only the SKUs whose
# computed quantity differs from this one. A line of a failed import is resent; a rejected one waits for the full file.
stock_sent = sa.Table(
    "stock_sent",
    metadata,
    sa.Column("marketplace", sa.String(64), primary_key=True),
    sa.Column("offer_sku", sa.String(255), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("import_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | applied | rejected | failed
    sa.Column("error", sa.Text),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("settled_at", UtcDateTime),
    sa.Index(None, "marketplace", "import_id"),
)
