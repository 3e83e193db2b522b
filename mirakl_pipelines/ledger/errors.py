"""Errors the ledger raises; each message names the record and the reason."""


class LedgerError(Exception):
    """Base of every error raised by the ledger."""


class UnknownOrderLink(LedgerError, LookupError):
    """An outcome was recorded for an order the ledger has never observed."""

    def __init__(self, marketplace: str, mirakl_order_id: str):
        self.marketplace = marketplace
        self.mirakl_order_id = mirakl_order_id
        super().__init__(
            f"order {mirakl_order_id!r} of marketplace {marketplace!r} is not in the ledger; "
            "call observe_order() before recording its import or acceptance"
        )


class InvalidLedgerInput(LedgerError, ValueError):
    """A value handed to the ledger cannot be stored (naive datetime, unknown state, empty key…)."""
