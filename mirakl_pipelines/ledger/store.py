"""The ledger: the integration's durable memory (SQLite file by default, PostgreSQL in production)."""

import time
from typing import Callable


from mirakl_pipelines.ledger.budget import CallBudgetSlots
from mirakl_pipelines.ledger.engine import create_ledger_engine
from mirakl_pipelines.ledger.exception_queue import ExceptionQueue
from mirakl_pipelines.ledger.fulfilments import FulfilmentPushes
from mirakl_pipelines.ledger.inbox import WebhookInbox
from mirakl_pipelines.ledger.order_lines import OrderLineBook
from mirakl_pipelines.ledger.orders import OrderLinks
from mirakl_pipelines.ledger.records import ExceptionRecord, OrderLink
from mirakl_pipelines.ledger.schema import ensure_schema
from mirakl_pipelines.ledger.stock import StockPushes
from mirakl_pipelines.ledger.watermarks import Watermarks

__all__ = ["ExceptionRecord", "Ledger", "OrderLink"]


class Ledger(OrderLinks, OrderLineBook, ExceptionQueue, Watermarks, CallBudgetSlots, WebhookInbox, FulfilmentPushes,
             StockPushes):
    """Order links and lines, exception queue, sync watermarks, call budget, webhook inbox, fulfilment and stock
    pushes in one database.

    Thread-safe and safe for several processes at once; every method is one short transaction.
    """

    @classmethod
    def connect(cls, url: str, *, clock: Callable[[], float] = time.time) -> "Ledger":
        """Open ``sqlite:///path`` (parent directory created) or ``postgresql+psycopg2://…``, schema ensured.

        ``clock`` (epoch seconds) drives the call budget; tests inject a fake one.
        """
        engine = create_ledger_engine(url)
        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self._engine.url.render_as_string(hide_password=True)!r})"
