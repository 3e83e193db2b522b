"""The offers and stock client (mirakl/offers.py) against the Mirakl sandbox over loopback HTTP, and against a
scripted stub for answers the sandbox never gives (malformed offers, foreign download URLs, lost import ids)."""

import csv
import io
import time
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest

from mirakl_pipelines.mirakl.budget import InMemoryBudget
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklNotFound, MiraklOutcomeUnknown, MiraklRetryLater
from mirakl_pipelines.mirakl.offers import (
    OfferExportFailed, StockImportStillRunning, read_offers, send_stock_file, stock_import_error_report,
    stock_import_status, wait_for_stock_import,
)
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.sync.stock_levels import OFFER_COLUMNS, OFFER_DTYPES

SCALE = 0.001
KEY = "k"
HEADER = '"offer-sku";"quantity";"warehouse-code";"update-delete"\n'


def stock_csv(*lines: tuple[str, int | str]) -> bytes:
    return (HEADER + "".join(f'"{sku}";"{quantity}";"";"update"\n' for sku, quantity in lines)).encode()


@pytest.fixture
def sim():
    settings = MarketplaceSettings(
        api_key=KEY, rate_limit_scale=SCALE, stock_import_waiting=timedelta(milliseconds=20),
        stock_import_running=timedelta(milliseconds=40), offer_export_delay=timedelta(milliseconds=30))
    sim = MarketplaceSim(settings)
    sim.offers.seed([{"sku": f"SKU-{i:04d}", "price": "9.90", "quantity": i % 7} for i in range(250)])
    sim.offers.seed([{"sku": "SKU-DISABLED", "quantity": 3, "active": False}])
    return sim


@pytest.fixture
def make_client(sim):
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-offers-client")
    clients = []

    def make(**kwargs) -> MiraklClient:
        options = dict(rate_limit_scale=SCALE, timeout=5.0, marketplace="sandbox", budget=InMemoryBudget())
        options.update(kwargs)
        client = MiraklClient(options.pop("url", server.url), KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    server.stop()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("offer_sku").reset_index(drop=True)


def test_of21_pages_over_250_offers(sim, make_client):
    client = make_client()
    result = read_offers(client)
    frame = result.offers
    assert result.source == "OF21" and tuple(frame.columns) == OFFER_COLUMNS
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == OFFER_DTYPES
    assert len(frame) == 251 and frame["offer_sku"].is_unique
    by_sku = frame.set_index("offer_sku")
    assert by_sku.loc["SKU-0013", "quantity"] == 13 % 7
    assert not by_sku.loc["SKU-DISABLED", "active"] and not by_sku.loc["SKU-0000", "active"]  # disabled; zero quantity
    assert client.calls["OF21"] == 3 and client.rejected == []


def test_the_export_gives_the_same_frame_as_of21(sim, make_client):
    client = make_client()
    paged = read_offers(client).offers
    exported = read_offers(client, export_threshold=100, items_per_chunk=60)
    assert exported.source == "OF52"
    assert client.calls["OF52"] == 1 and client.calls["OF54"] == 5  # 251 offers in chunks of 60
    pd.testing.assert_frame_equal(_sorted(exported.offers), _sorted(paged))


def test_a_failed_export_raises(sim, make_client):
    sim.apply_settings(offer_export_fail=True)
    with pytest.raises(OfferExportFailed, match="FAILED"):
        read_offers(make_client(), export_threshold=10)


def test_stock_round_trip(sim, make_client):
    client = make_client()
    import_id = send_stock_file(client, stock_csv(("SKU-0001", 42), ("SKU-0002", 0), ("SKU-DISABLED", 5)))
    assert isinstance(import_id, str) and import_id
    status = wait_for_stock_import(client, import_id, timeout_seconds=10)
    assert (status.status, status.lines_in_success, status.lines_in_error, status.has_error_report) == ("COMPLETE", 3, 0, False)
    assert status.import_id == import_id and status.date_created is not None
    assert client.calls["STO02"] >= 2  # WAITING / RUNNING first: polled at its interval
    frame = read_offers(client).offers.set_index("offer_sku")
    assert frame.loc["SKU-0001", "quantity"] == 42 and frame.loc["SKU-0002", "quantity"] == 0
    with pytest.raises(MiraklNotFound):
        stock_import_error_report(client, import_id)


def test_sto02_polls_keep_its_interval(sim, make_client, recording_sleep):
    client = make_client(sleep=recording_sleep)
    import_id = send_stock_file(client, stock_csv(("SKU-0001", 1)))
    started = time.monotonic()
    wait_for_stock_import(client, import_id, timeout_seconds=10)
    polls = client.calls["STO02"] - sim.rejected["STO02"]  # calls counts attempts, a 429 answered one included
    assert polls >= 2 and time.monotonic() - started >= (polls - 1) * 15 * SCALE
    assert recording_sleep.waits  # the client paced itself: its budget slept between polls


def test_line_errors_reach_the_error_report(sim, make_client):
    client = make_client()
    content = stock_csv(("SKU-0001", 5), ("NO-SUCH-SKU", 1), ("SKU-0003", -4), ("SKU-0004", "x"))
    status = wait_for_stock_import(client, send_stock_file(client, content), timeout_seconds=10)
    assert (status.lines_in_success, status.lines_in_error, status.has_error_report) == (1, 3, True)
    report = stock_import_error_report(client, status.import_id)
    rows = list(csv.reader(io.StringIO(report.decode()), delimiter=";"))[1:]
    assert [(row[0], row[2]) for row in rows] == [("3", "NO-SUCH-SKU"), ("4", "SKU-0003"), ("5", "SKU-0004")]
    assert sim.offers.quantities()["SKU-0001"] == 5 and sim.offers.quantities()["SKU-0003"] == 3


def test_a_whole_failure_is_a_status_not_an_exception(sim, make_client):
    client = make_client()
    status = wait_for_stock_import(client, send_stock_file(client, b"sku,qty\nSKU-0001,4\n"), timeout_seconds=10)
    assert status.status == "FAILED" and status.finished and status.has_error_report
    assert b"semicolon" in stock_import_error_report(client, status.import_id)


def test_an_import_stuck_running_times_out_with_its_last_status(sim, make_client):
    sim.apply_settings(stock_import_stuck=True)
    client = make_client()
    import_id = send_stock_file(client, stock_csv(("SKU-0001", 4)))
    started = time.monotonic()
    with pytest.raises(StockImportStillRunning, match="still RUNNING after") as raised:
        wait_for_stock_import(client, import_id, timeout_seconds=0.3)
    assert 0.25 <= time.monotonic() - started < 2
    assert raised.value.last.status == "RUNNING" and raised.value.import_id == import_id
    sim.apply_settings(stock_import_stuck=False)
    assert wait_for_stock_import(client, import_id, timeout_seconds=5).status == "COMPLETE"


def test_skipped_lines_are_neither_applied_nor_reported(sim, make_client):
    sim.apply_settings(stock_import_skip_skus=["SKU-0002"])
    client = make_client()
    status = wait_for_stock_import(client, send_stock_file(client, stock_csv(("SKU-0001", 30), ("SKU-0002", 30))),
                                   timeout_seconds=10)
    assert (status.status, status.lines_in_success, status.lines_in_error, status.has_error_report) == ("COMPLETE", 2, 0, False)
    frame = read_offers(client).offers.set_index("offer_sku")
    assert frame.loc["SKU-0001", "quantity"] == 30 and frame.loc["SKU-0002", "quantity"] == 2  # 2 % 7: untouched


def test_a_second_sto01_within_the_minute_meets_429(sim, make_client):
    first, second = make_client(), make_client(max_wait=0.0)  # separate budgets: only the sandbox stops the second
    send_stock_file(first, stock_csv(("SKU-0001", 1)))
    with pytest.raises(MiraklRetryLater):
        send_stock_file(second, stock_csv(("SKU-0001", 2)))
    assert sim.rejected["STO01"] == 1 and sim.offers.stats()["stock_imports"] == 1
    patient = make_client()  # waits for Retry-After (scaled), then the file goes through once
    send_stock_file(patient, stock_csv(("SKU-0001", 3)))
    assert sim.offers.stats()["stock_imports"] == 2


def test_sto01_is_never_resent_after_a_lost_answer(sim, make_client):
    sim.faults.update(lose_writes=1, path_filter="/stock/imports")
    client = make_client()
    with pytest.raises(MiraklOutcomeUnknown, match="may have been applied"):
        send_stock_file(client, stock_csv(("SKU-0001", 9)))
    assert client.calls["STO01"] == 1 and sim.offers.stats()["stock_imports"] == 1


def test_orders_decrement_the_offers_client_sees(sim, make_client):
    sim.add_order(build_order(order_id="ORD-1-A", created=sim.now(),
                              lines=[{"sku": "SKU-0006", "quantity": 4, "unit_price": Decimal("9.90")}]))
    assert read_offers(make_client()).offers.set_index("offer_sku").loc["SKU-0006", "quantity"] == 2
    sim.cancel("ORD-1-A")
    assert read_offers(make_client()).offers.set_index("offer_sku").loc["SKU-0006", "quantity"] == 6


def test_empty_file_and_bad_ids_are_refused_unsent(make_client):
    client = make_client()
    with pytest.raises(ValueError, match="empty"):
        send_stock_file(client, b"")
    with pytest.raises(ValueError, match="import id"):
        stock_import_status(client, "")
    assert client.calls["STO01"] == 0 and client.calls["STO02"] == 0


# ---- answers the sandbox never gives --------------------------------------------------------------------


def test_reading_is_tolerant_of_odd_offers(stub):
    offers = [
        {"offer_id": 1, "shop_sku": "A", "quantity": 3, "active": True, "surprise": {"new": "field"}},
        {"offer_id": 2, "quantity": 1},  # no shop_sku
        {"offer_id": 3, "shop_sku": "C", "quantity": "7"},  # text quantity, no active
        {"offer_id": 4, "shop_sku": "D", "quantity": "many"},
        {"offer_id": 1, "shop_sku": "A", "quantity": 3, "active": True},  # the same offer again (paging shift)
        "garbage",
    ]
    stub.handler = lambda r: (200, {"offers": offers, "total_count": len(offers)}, {})
    client = MiraklClient(stub.url, KEY, rate_limit_scale=SCALE)
    frame = read_offers(client).offers.set_index("offer_sku")
    assert sorted(frame.index) == ["A", "C"] and frame.loc["C", "quantity"] == 7 and frame.loc["C", "active"]
    assert len(client.rejected) == 3 and any("no shop_sku" in reason for _, reason in client.rejected)


def test_export_files_elsewhere_are_refused(stub):
    def handler(request):
        if request.path.endswith("/export/async"):
            return 200, {"tracking_id": "t-1"}, {}
        if "/status/" in request.path:
            return 200, {"status": "COMPLETED", "urls": ["https://files.example.com/offers/0.json"]}, {}
        return 200, {"offers": [], "total_count": 5000}, {}

    stub.handler = handler
    with pytest.raises(Exception, match="refusing to send the API key elsewhere"):
        read_offers(MiraklClient(stub.url, KEY, rate_limit_scale=SCALE))


def test_an_sto01_answer_without_import_id_is_an_unknown_outcome(stub):
    stub.handler = lambda r: (201, {"unexpected": True}, {})
    client = MiraklClient(stub.url, KEY, rate_limit_scale=SCALE)
    with pytest.raises(MiraklOutcomeUnknown, match="no import_id"):
        send_stock_file(client, stock_csv(("A", 1)))
    assert len(stub.requests) == 1
    part = stub.requests[0]
    assert part.headers["content-type"].startswith("multipart/form-data") and b'name="file"' in part.body
    assert b'"offer-sku";"quantity"' in part.body
