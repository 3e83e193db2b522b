"""The sandbox's stock imports (STO01–STO03) and offer quantities: line errors, whole-file failures, the
knobs a stock flow must survive (stuck, failing, silently skipping), warehouses, and orders taking units."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.offers import catalogue_offers
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.sandbox.mirakl.conftest import HEADER, KEY, SKUS, T0, call, make_sim, post_stock, settle, stock_file


def run_import(sim, content: bytes) -> tuple[dict, list[list[str]]]:
    """STO01 straight on the book, the import settled; (its STO02 status, its STO03 rows without the header)."""
    import_id = sim.offers.start_import(content)["import_id"]
    settle(sim)
    status = sim.offers.import_status(import_id)
    rows = []
    if status["has_error_report"]:
        rows = list(csv.reader(io.StringIO(sim.offers.error_report(import_id).decode()), delimiter=";"))[1:]
    return status, rows


def test_line_errors_are_reported_and_the_other_lines_applied():
    sim = make_sim()
    status, rows = run_import(sim, stock_file(
        '"ALP-TRAIL-42";"3";"";""',  # line 2: applied
        '"UNKNOWN-SKU";"1";"";""',  # 3: offer not found
        '"ALP-TRAIL-43";"-2";"";""',  # 4: negative
        '"ALP-MERINO-M";"2.5";"";"update"',  # 5: not a whole number
        '"LUM-HEAD-400";"";"";""',  # 6: missing quantity
        '"ALP-VEST-12";"4"',  # 7: wrong column count
        '"ALP-TRAIL-42";"9";"";""',  # 8: duplicate of line 2
        '"ALP-VEST-12";"6";"";"replace"',  # 9: unknown update-delete
        '"ALP-VEST-12";"5";"";"UPDATE"',  # 10: applied (case-insensitive mode)
    ))
    assert status["status"] == "COMPLETE" and (status["lines_in_success"], status["lines_in_error"]) == (2, 7)
    reasons = {int(row[0]): row[1] for row in rows}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    for line, fragment in {3: "does not exist", 4: "negative", 5: "whole number", 6: "required", 7: "columns",
                           8: "more than once", 9: "update-delete"}.items():
        assert fragment in reasons[line], (line, reasons[line])
    assert [row[2] for row in rows] == ["UNKNOWN-SKU", "ALP-TRAIL-43", "ALP-MERINO-M", "LUM-HEAD-400", "ALP-VEST-12",
                                        "ALP-TRAIL-42", "ALP-VEST-12"]
    assert sim.offers.quantities() == {"ALP-TRAIL-42": 3, "ALP-TRAIL-43": 10, "ALP-MERINO-M": 10, "LUM-HEAD-400": 10,
                                       "ALP-VEST-12": 5}


def test_warehouses_delete_and_bom():
    sim = make_sim()
    content = ("\ufeff" + HEADER + '"ALP-TRAIL-42";"3";"LYON";""\n"ALP-TRAIL-42";"4";"PARIS";"update"\n'
               '"ALP-TRAIL-43";"";"";"delete"\n"ALP-MERINO-M";"2";"";""\n"ALP-MERINO-M";"1";"LYON";""\n').encode()
    status, rows = run_import(sim, content)
    assert (status["lines_in_success"], status["lines_in_error"]) == (4, 1) and "mixes" in rows[0][1]
    offers = {o["sku"]: o for o in sim.offers.offers()}
    assert offers["ALP-TRAIL-42"]["quantity"] == 7 and offers["ALP-TRAIL-42"]["warehouses"] == {"LYON": 3, "PARIS": 4}
    assert offers["ALP-TRAIL-43"]["quantity"] == 0 and offers["ALP-TRAIL-43"]["offer_active"] is False
    run_import(sim, stock_file('"ALP-TRAIL-42";"";"PARIS";"delete"'))
    trail = next(o for o in sim.offers.offers() if o["sku"] == "ALP-TRAIL-42")
    assert trail["warehouses"] == {"LYON": 3} and trail["quantity"] == 3
    run_import(sim, stock_file('"ALP-TRAIL-42";"8";"";""'))  # a global quantity replaces the breakdown
    trail = next(o for o in sim.offers.offers() if o["sku"] == "ALP-TRAIL-42")
    assert trail["warehouses"] == {} and trail["quantity"] == 8


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b'"sku","qty"\n"ALP-TRAIL-42","3"\n', "semicolon"),  # commas
    (b'"offer-sku";"quantity";"colour"\n"ALP-TRAIL-42";"3";"red"\n', "Invalid header"),
    (b'"offer-sku";"offer-sku";"quantity"\n', "Invalid header"),
    (b'"offer-sku";"quantity"\n"ALP-TRAIL-42";"3\n', "not a readable"),
])
def test_whole_file_failures(content, fragment):
    sim = make_sim()
    status, rows = run_import(sim, content)
    assert status["status"] == "FAILED" and status["has_error_report"] is True
    assert len(rows) == 1 and rows[0][0] == "1" and fragment in rows[0][1]
    assert set(sim.offers.quantities().values()) == {10}


def test_minimal_header_is_enough():
    sim = make_sim()
    status, rows = run_import(sim, b'offer-sku;quantity\nALP-TRAIL-42;4\n')
    assert status["status"] == "COMPLETE" and rows == [] and sim.offers.quantities()["ALP-TRAIL-42"] == 4


def test_fail_knob_fails_whole_imports():
    sim = make_sim(stock_import_fail=True)
    status, rows = run_import(sim, stock_file('"ALP-TRAIL-42";"3";"";""', '"ALP-TRAIL-43";"3";"";""'))
    assert (status["status"], status["lines_in_success"], status["lines_in_error"]) == ("FAILED", 0, 2)
    assert rows[0][0] == "1" and sim.offers.quantities()["ALP-TRAIL-42"] == 10


def test_stuck_knob_keeps_imports_running_until_released():
    sim = make_sim()
    sim.apply_settings(stock_import_stuck=True)
    import_id = sim.offers.start_import(stock_file('"ALP-TRAIL-42";"3";"";""'))["import_id"]
    sim.advance(timedelta(hours=1))
    assert sim.offers.import_status(import_id)["status"] == "RUNNING"
    assert sim.offers.quantities()["ALP-TRAIL-42"] == 10
    sim.apply_settings(stock_import_stuck=False)
    assert sim.offers.import_status(import_id)["status"] == "COMPLETE"
    assert sim.offers.quantities()["ALP-TRAIL-42"] == 3


def test_skip_knobs_drop_lines_silently():
    sim = make_sim(stock_import_skip_skus=["ALP-TRAIL-43"])
    lines = [f'"{sku}";"{i + 1}";"";""' for i, sku in enumerate(SKUS)]
    status, rows = run_import(sim, stock_file(*lines))
    assert (status["lines_in_success"], status["lines_in_error"], rows) == (5, 0, [])
    quantities = sim.offers.quantities()
    assert quantities["ALP-TRAIL-43"] == 10 and quantities["ALP-TRAIL-42"] == 1
    assert sim.offers.stats()["stock_lines_skipped"] == 1
    shared = make_sim(stock_import_skip_share=0.5)
    shared.offers.seed([{"sku": f"S-{i:03d}", "quantity": 1000} for i in range(200)])
    status, _ = run_import(shared, stock_file(*[f'"S-{i:03d}";"1";"";""' for i in range(200)]))
    dropped = {sku for sku, q in shared.offers.quantities().items() if q == 1000}
    assert status["lines_in_success"] == 200 and 60 < len(dropped) < 140  # about half, by SKU hash
    status, _ = run_import(shared, stock_file(*[f'"S-{i:03d}";"2";"";""' for i in range(200)]))
    assert {sku for sku, q in shared.offers.quantities().items() if q == 1000} == dropped  # the same SKUs each time


def test_seed_refuses_bad_entries():
    sim = make_sim()
    for entry, fragment in [({"sku": "X", "price": 1.5}, "not float"), ({"sku": "X", "quantity": "3"}, "whole number"),
                            ({"sku": "X", "active": "no"}, "bool"), ({"price": "1"}, "sku")]:
        with pytest.raises(ValueError, match=fragment):
            sim.offers.seed([entry])
    assert sim.offers.seed([{"sku": "ALP-TRAIL-42", "price": Decimal("12.3")}])[0]["quantity"] == 10  # other fields kept


# ---- orders take units from the offers ------------------------------------------------------------------


def _order(sim, order_id: str, quantities: dict[str, int], **kwargs):
    lines = [{"sku": sku, "quantity": q, "unit_price": Decimal("19.90")} for sku, q in quantities.items()]
    return sim.add_order(build_order(order_id=order_id, lines=lines, created=sim.now(), **kwargs))


def test_orders_take_units_and_refusals_and_cancellations_give_them_back():
    sim = make_sim()
    _order(sim, "O-1-A", {"ALP-TRAIL-42": 3, "ALP-VEST-12": 1, "NOT-AN-OFFER": 2})
    assert sim.offers.quantities()["ALP-TRAIL-42"] == 7 and sim.offers.quantities()["ALP-VEST-12"] == 9
    sim.accept("O-1-A", {"order_lines": [{"id": "O-1-A-1", "accepted": True}, {"id": "O-1-A-2", "accepted": False},
                                         {"id": "O-1-A-3", "accepted": True}]})
    assert sim.offers.quantities()["ALP-VEST-12"] == 10  # refused line: back
    sim.pay("O-1-A")
    sim.cancel_lines("O-1-A", {"O-1-A-1": 1})
    assert sim.offers.quantities()["ALP-TRAIL-42"] == 8  # one unit cancelled before shipment: back
    sim.ship("O-1-A")
    assert sim.offers.quantities()["ALP-TRAIL-42"] == 8  # shipped units stay taken
    _order(sim, "O-2-A", {"ALP-TRAIL-43": 4})
    sim.cancel("O-2-A")
    assert sim.offers.quantities()["ALP-TRAIL-43"] == 10
    _order(sim, "O-3-A", {"ALP-MERINO-M": 2})
    sim.advance(sim.settings.acceptance_window)  # auto-refused
    assert sim.get_order("O-3-A")["order_state"] == "REFUSED" and sim.offers.quantities()["ALP-MERINO-M"] == 10


def test_an_order_never_takes_more_than_the_offer_has():
    sim = make_sim()
    sim.offers.seed([{"sku": "LUM-HEAD-400", "warehouses": {"LYON": 1, "PARIS": 2}}])
    _order(sim, "O-9-A", {"LUM-HEAD-400": 5})
    offer = next(o for o in sim.offers.offers() if o["sku"] == "LUM-HEAD-400")
    assert offer["quantity"] == 0 and offer["warehouses"] == {"LYON": 0, "PARIS": 0}
    sim.offers.seed([{"sku": "LUM-HEAD-400", "quantity": 4}])  # restocked meanwhile
    sim.cancel("O-9-A")
    assert sim.offers.quantities()["LUM-HEAD-400"] == 7  # gives back the 3 it took, not the 5 ordered


def test_orders_over_http_show_in_of21():
    sim = make_sim()
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-offers")
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as http:
            created = http.post("/_sandbox/orders", json={"lines": [{"sku": "ALP-VEST-12", "quantity": 2, "unit_price": "119.00"}],
                                                          "created": T0.isoformat()})
            assert created.status_code == 201
            offers = call(http, "GET", "/api/offers", params={"sku": "ALP-VEST-12"}).json()["offers"]
            assert offers[0]["quantity"] == 8
    finally:
        server.stop()


# ---- property: every line is applied or reported, exactly once -------------------------------------------

SKU_CHOICES = st.sampled_from([*SKUS, "UNKNOWN-1", 'WEIRD;"SKU', ""])
QUANTITIES = st.one_of(st.integers(-5, 50).map(str), st.sampled_from(["", "1.5", "abc", " 7 ", "+3"]))
MODES = st.sampled_from(["", "", "update", "delete", "bogus"])
LINES = st.lists(st.one_of(
    st.tuples(SKU_CHOICES, QUANTITIES, st.just(""), MODES).map(list),
    st.tuples(SKU_CHOICES, QUANTITIES).map(list),  # wrong column count
), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def served_property_sim():
    sim = make_sim()
    sim.limiter.scale = 1e-6  # many imports in a row: keep the limits, make them short
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-offers-property")
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as http:
        yield sim, http
    server.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES, skipped=st.sets(st.sampled_from(SKUS), max_size=2))
def test_every_line_is_applied_or_reported_exactly_once(served_property_sim, lines, skipped):
    sim, http = served_property_sim
    sim.offers.seed([{"sku": sku, "quantity": 1000} for sku in SKUS])  # 1000: never a generated quantity
    sim.apply_settings(stock_import_skip_skus=sorted(skipped))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["offer-sku", "quantity", "warehouse-code", "update-delete"])
    writer.writerows(lines)
    created = post_stock(http, out.getvalue().encode())
    assert created.status_code == 201
    import_id = created.json()["import_id"]
    settle(sim)
    status = call(http, "GET", f"/api/offers/stock/imports/{import_id}/status").json()
    reported: dict[int, str] = {}
    if status["has_error_report"]:
        report = call(http, "GET", f"/api/offers/stock/imports/{import_id}/error_report").text
        for row in list(csv.reader(io.StringIO(report), delimiter=";"))[1:]:
            assert int(row[0]) not in reported, f"line {row[0]} reported twice"
            reported[int(row[0])] = row[1]
    numbers = range(2, len(lines) + 2)
    assert set(reported) <= set(numbers)
    assert status["status"] == "COMPLETE"
    assert status["lines_in_success"] + status["lines_in_error"] == len(lines)  # never lost
    assert status["lines_in_error"] == len(reported)
    quantities = sim.offers.quantities()
    applied: dict[str, int] = {}
    for number, line in zip(numbers, lines):
        if number in reported:
            continue
        sku = line[0]
        assert sku in SKUS and sku not in applied, f"line {number} {line} neither reported nor applicable"
        applied[sku] = 0 if line[3] == "delete" else int(line[1])
    for sku in SKUS:
        expected = applied[sku] if sku in applied and sku not in skipped else 1000
        assert quantities[sku] == expected, (sku, lines)


def test_the_demo_catalogue_seeds_every_listed_sku():
    catalogue = yaml.safe_load((Path(__file__).resolve().parents[3] / "data/sandbox/catalogue.yaml").read_text())
    sim = make_sim()
    sim.offers.seed(catalogue_offers(catalogue))
    quantities = sim.offers.quantities()
    listed = {v["sku"] for p in catalogue["products"] for v in p["variants"]} | set(catalogue["unknown_skus"])
    assert listed <= set(quantities)
    assert all(isinstance(q, int) and q >= 0 for q in quantities.values())
    shop_only = {v.get("sku") for p in catalogue.get("shop_only_products", []) for v in p["variants"]}
    assert not shop_only & set(quantities)
