"""Durable sync state: order links, exception queue, sync watermarks, call budget (SQLAlchemy Core)."""

from mirakl_pipelines.ledger.errors import InvalidLedgerInput, LedgerError, UnknownOrderLink
from mirakl_pipelines.ledger.records import ExceptionRecord, OrderLink
from mirakl_pipelines.ledger.store import Ledger

__all__ = ["ExceptionRecord", "InvalidLedgerInput", "Ledger", "LedgerError", "OrderLink", "UnknownOrderLink"]
