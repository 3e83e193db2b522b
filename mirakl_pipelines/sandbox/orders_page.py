"""A sandbox's orders as one read-only HTML table, for a person with a browser: `GET /_sandbox/orders.html` on
the Shopify store and on each Mirakl marketplace (the JSON views beside them serve programs)."""

from datetime import datetime
from html import escape
from typing import Any, Callable, Iterable

# (column title, how to read it from an order)
Column = tuple[str, Callable[[dict], Any]]


def _amount(money_bag: dict | None) -> str:
    money = (money_bag or {}).get("shopMoney") or {}
    return f"{money.get('amount', '')} {money.get('currencyCode', '')}".strip()


SHOPIFY_COLUMNS: list[Column] = [
    ("order", lambda o: o.get("name")),
    ("created", lambda o: o.get("createdAt")),
    ("processed", lambda o: o.get("processedAt")),
    ("Mirakl order", lambda o: o.get("sourceIdentifier")),
    ("tags", lambda o: ", ".join(o.get("tags") or [])),
    ("payment", lambda o: o.get("displayFinancialStatus")),
    ("fulfilment", lambda o: o.get("displayFulfillmentStatus")),
    ("cancelled", lambda o: o.get("cancelledAt")),
    ("total", lambda o: _amount(o.get("totalPriceSet"))),
]

MIRAKL_COLUMNS: list[Column] = [
    ("order", lambda o: o.get("order_id")),
    ("created", lambda o: o.get("created_date")),
    ("state", lambda o: o.get("order_state")),
    ("payment workflow", lambda o: o.get("payment_workflow")),
    ("debited", lambda o: o.get("customer_debited_date")),
    ("last updated", lambda o: o.get("last_updated_date")),
    ("lines", lambda o: len(o.get("order_lines") or [])),
    ("total", lambda o: f"{o.get('total_price', '')} {o.get('currency_iso_code', '')}".strip()),
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return escape(str(value))


def orders_page(title: str, orders: Iterable[dict], columns: list[Column]) -> str:
    """Newest first (the order given is oldest first)."""
    rows = list(orders)[::-1]
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{_cell(read(o))}</td>" for _, read in columns) + "</tr>" for o in rows)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{len(rows)} order(s), newest first; read-only, reload to refresh.</p>"
        f"<table><tr>{head}</tr>\n{body}\n</table></body></html>"
    )
