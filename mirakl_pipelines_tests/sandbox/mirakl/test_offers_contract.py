"""Every response of the sandbox's offers and stock operations (OF21, OF52–OF54, STO01–STO03) validates
against the official seller OpenAPI spec (mirakl_spec.py's adjustments); errors have the classic MMP body."""

import csv
import io
import json
import re
from datetime import timedelta

import httpx
import pytest

from mirakl_pipelines.sandbox.mirakl.ratelimits import OFFER_MIN_INTERVAL_SECONDS
from mirakl_pipelines_tests.mirakl_spec import SPEC_URI, declared_content, load_spec, validate
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.sandbox.mirakl.conftest import call, post_stock, settle, stock_file

ROUTES = {
    "OF21": ("GET", "/api/offers"),
    "OF52": ("POST", "/api/offers/export/async"),
    "OF53": ("GET", "/api/offers/export/async/status/{tracking_id}"),
    "OF54": ("GET", "/dynamic-url/The+URL+is+retrieved+from+OF53+output/OF54"),
    "STO01": ("POST", "/api/offers/stock/imports"),
    "STO02": ("GET", "/api/offers/stock/imports/{import_id}/status"),
    "STO03": ("GET", "/api/offers/stock/imports/{import_id}/error_report"),
}


def check(operation: str, response: httpx.Response) -> None:
    """The status is declared by the spec and the body matches its schema (OF54 files: each item; CSV: the header)."""
    content = declared_content(operation, *ROUTES[operation], response)
    if content is None:
        assert response.status_code >= 400, f"{operation} answered {response.status_code} without a body"
        return
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, f"{operation} answered {media_type}, the spec declares {sorted(content)}"
    schema = content[media_type].get("schema", {})
    if operation == "OF54" and media_type == "application/json":
        items = response.json()
        assert isinstance(items, list)  # the spec's examples: a JSON array of offers
        for item in items:
            validate({"$ref": f"{SPEC_URI}{schema['$ref']}"}, item)
    elif operation == "OF54":
        columns = load_spec()["components"]["schemas"]["OF54_Response_200_TextCsv_Ext_FileStructure"]["properties"]
        header = next(csv.reader(io.StringIO(response.text), delimiter=";"))
        assert set(header) <= set(columns), sorted(set(header) - set(columns))
    elif media_type == "application/json":
        validate({"$ref": f"{SPEC_URI}{schema['$ref']}"}, response.json())
    else:
        assert schema == {"type": "string", "format": "binary"} and response.content


def test_of21_pages_filters_and_variety_validate(sim, client):
    sim.offers.seed([{"sku": "OFF-DISABLED", "quantity": 4, "active": False},
                     {"sku": "OFF-EMPTY", "quantity": 0, "state_code": "1"},
                     {"sku": "OFF-WAREHOUSES", "price": "5.00", "warehouses": {"LYON": 3, "PARIS": 2}}])
    seen = []
    for offset in range(0, 8, 3):
        response = call(client, "GET", "/api/offers", params={"max": 3, "offset": offset})
        check("OF21", response)
        assert response.json()["total_count"] == 8
        seen += [o["shop_sku"] for o in response.json()["offers"]]
    assert len(seen) == len(set(seen)) == 8
    offers = {o["shop_sku"]: o for o in call(client, "GET", "/api/offers", params={"max": 100}).json()["offers"]}
    assert offers["OFF-DISABLED"]["active"] is False and offers["OFF-DISABLED"]["inactivity_reasons"] == ["PRODUCT_DISABLED"]
    assert offers["OFF-EMPTY"]["inactivity_reasons"] == ["ZERO_QUANTITY"]
    assert offers["OFF-WAREHOUSES"]["quantity"] == 5
    assert offers["OFF-WAREHOUSES"]["warehouses"] == [{"code": "LYON", "quantity": 3}, {"code": "PARIS", "quantity": 2}]
    filtered = call(client, "GET", "/api/offers", params={"sku": "OFF-EMPTY,ALP-TRAIL-42"})
    check("OF21", filtered)
    assert sorted(o["shop_sku"] for o in filtered.json()["offers"]) == ["ALP-TRAIL-42", "OFF-EMPTY"]
    by_state = call(client, "GET", "/api/offers", params={"offer_state_codes": "1"}).json()
    assert [o["shop_sku"] for o in by_state["offers"]] == ["OFF-EMPTY"]
    assert call(client, "GET", "/api/offers").json()["total_count"] == 8
    assert len(call(client, "GET", "/api/offers").json()["offers"]) == 10 - 2  # default page of 10, 8 offers
    bad = call(client, "GET", "/api/offers", params={"sort": "quantity"})
    assert bad.status_code == 400
    check("OF21", bad)


@pytest.mark.parametrize("export_type", ["application/json", "text/csv"])
def test_export_pending_completed_chunks_validate(sim, client, export_type):
    started = call(client, "POST", "/api/offers/export/async",
                   json={"export_type": export_type, "items_per_chunk": 2, "include_inactive_offers": True})
    check("OF52", started)
    tracking_id = started.json()["tracking_id"]
    sim.offers.seed([{"sku": "ALP-TRAIL-42", "quantity": 99}])  # after OF52: not in this export
    pending = call(client, "GET", f"/api/offers/export/async/status/{tracking_id}")
    check("OF53", pending)
    assert pending.json()["status"] == "PENDING"
    sim.advance(sim.settings.offer_export_delay)
    done = call(client, "GET", f"/api/offers/export/async/status/{tracking_id}")
    check("OF53", done)
    urls = done.json()["urls"]
    assert done.json()["status"] == "COMPLETED" and len(urls) == 3  # 5 offers, 2 per chunk
    assert all(url.startswith(str(client.base_url).rstrip("/") + "/") for url in urls)
    quantities = {}
    for url in urls:
        chunk = call(client, "GET", url)
        check("OF54", chunk)
        if export_type == "application/json":
            quantities.update({o["shop_sku"]: o["quantity"] for o in chunk.json()})
        else:
            quantities.update({r["shop-sku"]: int(r["quantity"]) for r in csv.DictReader(io.StringIO(chunk.text), delimiter=";")})
    assert quantities == {sku: 10 for sku in quantities} and len(quantities) == 5


def test_export_modes_and_failures(sim, client):
    sim.offers.seed([{"sku": "OFF-EMPTY", "quantity": 0}])
    full = call(client, "POST", "/api/offers/export/async", json={"export_type": "application/json"}).json()
    sim.advance(sim.settings.offer_export_delay)
    url = call(client, "GET", f"/api/offers/export/async/status/{full['tracking_id']}").json()["urls"][0]
    assert "OFF-EMPTY" not in {o["shop_sku"] for o in call(client, "GET", url).json()}  # full mode: active offers only
    differential = call(client, "POST", "/api/offers/export/async",
                        json={"export_type": "application/json", "include_inactive_offers": True,
                              "last_request_date": "2026-05-04T08:00:00Z"})
    assert differential.status_code == 400  # the spec: not in differential mode
    check("OF52", differential)
    assert call(client, "POST", "/api/offers/export/async", json={"export_type": "text/xml"}).status_code == 400
    not_a_date = call(client, "POST", "/api/offers/export/async", json={"last_request_date": -6315})  # schemathesis found a 500
    assert not_a_date.status_code == 400
    check("OF52", not_a_date)
    client.post("/_sandbox/settings", json={"offer_export_fail": True})
    failing = call(client, "POST", "/api/offers/export/async", json={}).json()["tracking_id"]
    sim.advance(sim.settings.offer_export_delay)
    failed = call(client, "GET", f"/api/offers/export/async/status/{failing}")
    check("OF53", failed)
    assert failed.json()["status"] == "FAILED" and failed.json()["error"]["detail"]
    unknown = call(client, "GET", "/api/offers/export/async/status/nope")
    assert unknown.status_code == 404
    check("OF53", unknown)


def test_stock_import_lifecycle_validates(sim, client):
    created = post_stock(client, stock_file('"ALP-TRAIL-42";"3";"";""', '"NOPE";"1";"";""'))
    check("STO01", created)
    import_id = created.json()["import_id"]
    assert isinstance(import_id, str)
    assert created.headers["location"] == f"{str(client.base_url).rstrip('/')}/api/offers/stock/imports/{import_id}/status"
    statuses = []
    for step in (timedelta(0), sim.settings.stock_import_waiting, sim.settings.stock_import_running):
        sim.advance(step)
        response = call(client, "GET", f"/api/offers/stock/imports/{import_id}/status")
        check("STO02", response)
        statuses.append(response.json())
    assert [s["status"] for s in statuses] == ["WAITING", "RUNNING", "COMPLETE"]
    assert statuses[0]["has_error_report"] is False and "lines_in_success" not in statuses[0]
    assert statuses[-1] | {"date_created": None} == {
        "import_id": import_id, "shop_id": sim.offers.shop_id, "date_created": None, "status": "COMPLETE",
        "has_error_report": True, "lines_in_success": 1, "lines_in_error": 1}
    report = call(client, "GET", f"/api/offers/stock/imports/{import_id}/error_report")
    check("STO03", report)
    rows = list(csv.reader(io.StringIO(report.text), delimiter=";"))
    assert rows[0][:2] == ["error-line", "error-message"]
    assert [row[:1] + row[2:3] for row in rows[1:]] == [["3", "NOPE"]] and "does not exist" in rows[1][1]


def test_error_report_absent_and_unknown_import_are_404(sim, client):
    clean = post_stock(client, stock_file('"ALP-TRAIL-42";"3";"";""')).json()["import_id"]
    settle(sim)
    for path in (f"/api/offers/stock/imports/{clean}/error_report", "/api/offers/stock/imports/NOPE/error_report"):
        response = call(client, "GET", path)
        assert response.status_code == 404
        check("STO03", response)
    response = call(client, "GET", "/api/offers/stock/imports/NOPE/status")
    assert response.status_code == 404
    check("STO02", response)


def test_sto01_needs_one_file_part(client):
    response = call(client, "POST", "/api/offers/stock/imports", files={"other": ("x.csv", b"x", "text/csv")})
    assert response.status_code == 400
    check("STO01", response)
    response = call(client, "POST", "/api/offers/stock/imports", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 400
    check("STO01", response)


def test_second_sto01_within_the_minute_is_429(sim, client):
    sim.limiter.scale = 1.0  # a real minute
    assert post_stock(client, stock_file('"ALP-TRAIL-42";"3";"";""')).status_code == 201
    refused = client.post("/api/offers/stock/imports", files={"file": ("s.csv", stock_file('"ALP-TRAIL-42";"4";"";""'), "text/csv")})
    assert refused.status_code == 429 and 55 <= int(refused.headers["retry-after"]) <= 60
    check("STO01", refused)
    assert sim.rejected["STO01"] == 1 and sim.offers.stats()["stock_imports"] == 1


def test_frequency_limits_match_the_operations_index():
    """Every interval in OFFER_MIN_INTERVAL_SECONDS is the spec's "Maximum usage" of the operation."""
    index = {op["operationId"]: op for op in json.loads(reference_file("mirakl/operations-index.json").read_text())["operations"]}
    for operation, interval in OFFER_MIN_INTERVAL_SECONDS.items():
        entry = index[operation]
        assert (entry["method"], entry["path"]) == ROUTES[operation], operation
        text = (entry["call_frequency_max"] or "").lower()
        seconds = re.search(r"every (\d+) seconds", text)
        documented = (60.0 if "once per minute" in text else float(seconds.group(1)) if seconds else None)
        if documented is None:
            assert text == "" or re.search(r"\b(at each|on each)\b", text), f"{operation}: unparsed {text!r}"
        assert interval == documented, f"{operation}: sandbox {interval}, spec says {text!r}"
    assert set(OFFER_MIN_INTERVAL_SECONDS) == set(ROUTES)


def test_control_routes_and_knobs(sim, client):
    seeded = client.post("/_sandbox/offers", json={"offers": [{"sku": "NEW-1", "price": "7.50", "quantity": 2}]})
    assert seeded.status_code == 201 and seeded.json()["offers"][0]["price"] == 7.5
    assert {o["sku"]: o["quantity"] for o in client.get("/_sandbox/offers").json()["offers"]}["NEW-1"] == 2
    for bad in ({"offers": [{"sku": ""}]}, {"offers": [{"sku": "X", "price": "cheap"}]}, {"offers": [{"sku": "X", "quantity": -1}]},
                {"offers": [{"sku": "X", "colour": "red"}]}, {"sku": "X"}):
        response = client.post("/_sandbox/offers", json=bad)
        assert response.status_code == 400 and response.json()["message"], bad
    knobs = client.post("/_sandbox/settings", json={"stock_import_stuck": True, "stock_import_skip_skus": ["A"],
                                                    "stock_import_skip_share": 0.25, "stock_import_running": 30}).json()
    assert knobs["stock_import_stuck"] is True and knobs["stock_import_skip_skus"] == ["A"]
    assert knobs["stock_import_skip_share"] == 0.25 and knobs["stock_import_running"] == 30.0
    assert sim.settings.stock_import_running == timedelta(seconds=30)
    for bad in ({"stock_import_skip_share": 2}, {"stock_import_stuck": "yes"}, {"stock_import_skip_skus": "A"},
                {"offer_export_delay": -1}):
        response = client.post("/_sandbox/settings", json=bad)
        assert response.status_code == 400, bad
    stats = client.get("/_sandbox/stats").json()
    assert stats["offers"]["offers"] == 6 and stats["offers"]["stock_imports"] == 0
