"""A marketplace with seeded offers, served on loopback, for the offers' and stock imports' own tests.

Its clock stands still (T0) unless the test advances it, so import and export delays are played with
`sim.advance`; the call-frequency limits run on a scale where a minute is 6 ms.
"""

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
KEY = "offers-key"
SCALE = 1e-4
SKUS = ("ALP-TRAIL-42", "ALP-TRAIL-43", "ALP-MERINO-M", "LUM-HEAD-400", "ALP-VEST-12")
HEADER = '"offer-sku";"quantity";"warehouse-code";"update-delete"\n'


def make_sim(**settings) -> MarketplaceSim:
    sim = MarketplaceSim(MarketplaceSettings(api_key=KEY, rate_limit_scale=SCALE, **settings), clock=lambda: T0)
    sim.offers.seed([{"sku": sku, "price": "19.90", "quantity": 10} for sku in SKUS])
    return sim


@pytest.fixture
def sim() -> MarketplaceSim:
    return make_sim()


@pytest.fixture
def client(sim):
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-offers")
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as http:
        yield http
    server.stop()


def stock_file(*lines: str) -> bytes:
    """An STO01 file: the spec's header, then `lines` as given (one CSV record each)."""
    return (HEADER + "".join(line + "\n" for line in lines)).encode("utf-8")


def call(client: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """A request that waits out the call-frequency limits (429 + Retry-After, on the test's time scale)."""
    while True:
        response = client.request(method, url, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(int(response.headers["retry-after"]) * SCALE)


def post_stock(client: httpx.Client, content: bytes) -> httpx.Response:
    return call(client, "POST", "/api/offers/stock/imports", files={"file": ("stock.csv", content, "text/csv")})


def settle(sim: MarketplaceSim) -> None:
    """Let every pending import finish (the default waiting + running delays, and a second more)."""
    sim.advance(sim.settings.stock_import_waiting + sim.settings.stock_import_running + timedelta(seconds=1))
