"""Durable sync state: order links, exception queue, sync watermarks, call budget, webhook inbox and
fulfilment pushes (SQLAlchemy Core)."""

from mirakl_pipelines.ledger.errors import InvalidLedgerInput, LedgerError, UnknownOrderLink
from mirakl_pipelines.ledger.fulfilments import UnknownFulfilmentPush
from mirakl_pipelines.ledger.records import ExceptionRecord, FulfilmentPush, InboxEntry, OrderLineRecord, OrderLink
from mirakl_pipelines.ledger.store import Ledger

__all__ = [
    "ExceptionRecord", "FulfilmentPush", "InboxEntry", "InvalidLedgerInput", "Ledger", "LedgerError", "OrderLineRecord",
    "OrderLink",
    "UnknownFulfilmentPush", "UnknownOrderLink",
]
