"""OR11 paging against the Mirakl sandbox: pages streamed one at a time, and a listing read again when orders
entered it while it was paged (offset paging is unstable, NOTES §2.4)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mirakl_pipelines.mirakl.budget import InMemoryBudget
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.sandbox.mirakl import orders as orders_mod
from mirakl_pipelines.sandbox.mirakl import state
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.server import serve_in_thread

SCALE = 0.001
KEY = "k"
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW_START = NOW - timedelta(hours=1)


def _order(order_id: str, created: datetime, updated: datetime | None = None) -> dict:
    order = orders_mod.build_order(order_id=order_id, created=created, state="SHIPPING", lines=[
        {"sku": "ALP-TRAIL-42", "title": "Shoe", "quantity": 1, "unit_price": Decimal("89.90")}])
    if updated is not None:
        order["last_updated_date"] = updated
    return order


@pytest.fixture
def sim():
    sim = state.MarketplaceSim(state.MarketplaceSettings(api_key=KEY, rate_limit_scale=SCALE))
    for i in range(5):  # five orders of the window, created (and updated) a minute apart
        sim.add_order(_order(f"W-{i}", NOW - timedelta(minutes=50 - i)))
    return sim


class CountingBudget(InMemoryBudget):
    """Counts the slots booked and the seconds the client was told to wait for them."""

    def __init__(self):
        super().__init__()
        self.waits: list[float] = []

    def reserve(self, key: str, min_interval: float, max_wait: float = float("inf")) -> float:
        wait = super().reserve(key, min_interval, max_wait)
        self.waits.append(wait)
        return wait


@pytest.fixture
def client(sim):
    running = serve_in_thread(create_mirakl_app(sim), name="mirakl-sandbox")
    with MiraklClient(running.url, KEY, rate_limit_scale=SCALE, timeout=5.0, marketplace="sandbox",
                      budget=CountingBudget(), max_wait=5.0) as client:
        yield client
    running.stop()


def _entering(sim, count: int) -> list[str]:
    """Orders created before the window's first (they sort ahead of any cursor) but updated inside it, added right
    after the listing's first page is served: Mirakl indexing an update late, or an old order updated meanwhile."""
    ids = [f"LATE-{i}" for i in range(count)]
    sim.listing_insertions.queue([_order(order_id, NOW - timedelta(days=3), NOW - timedelta(minutes=30))
                                  for order_id in ids])
    return ids


def test_pages_are_yielded_one_at_a_time(client, sim):
    pages = list(client.iter_order_pages(updated_from=WINDOW_START, page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sim.calls["OR11"] == 3 and sim.rejected["OR11"] == 0


def test_orders_entering_the_listing_while_it_pages_are_returned_by_the_same_call(client, sim):
    late = _entering(sim, 2)
    got = client.list_orders(updated_from=WINDOW_START, page_size=2)
    assert sorted(o.order_id for o in got) == sorted([f"W-{i}" for i in range(5)] + late)
    assert len(got) == 7  # de-duplicated across the first read and the re-read
    # The re-read booked its own slot and waited for it: Mirakl's limit holds. (Under load a request can still
    # reach the sandbox a little early, as the first one may arrive late: such a 429 is retried, never more.)
    assert len(client.budget.waits) == 2 and client.budget.waits[1] > 0
    assert sim.rejected["OR11"] <= 1


def test_without_a_re_read_the_entering_orders_are_missed(client, sim):
    """What the re-read is for (and that the fault bites): the first pass alone misses them."""
    late = _entering(sim, 2)
    got = [o.order_id for page in client.iter_order_pages(updated_from=WINDOW_START, page_size=2, max_rereads=0)
           for o in page]
    assert not set(late) <= set(got)
    assert len(got) == len(set(got))  # the pages shifted by the insertions repeat orders: yielded once anyway


def test_a_single_page_listing_is_never_read_again(client, sim):
    _entering(sim, 2)
    got = client.list_orders(updated_from=WINDOW_START)  # one page of 100: no page boundary to shift
    assert len(got) == 5 and sim.calls["OR11"] == 1


def test_re_reads_are_bounded(client, sim):
    """Orders enter every listing: the client reads again at most max_rereads times, then stops (and says so)."""
    for round_ in range(5):
        sim.listing_insertions.queue([_order(f"R{round_}-{i}", NOW - timedelta(days=3), NOW - timedelta(minutes=30))
                                      for i in range(2)])
    list(client.iter_order_pages(updated_from=WINDOW_START, page_size=2, max_rereads=1))
    assert sim.listing_insertions.pending == 3  # two listings: the first read and one re-read
