"""The sandbox's shipping additions: OR74 uploads (every form, every rule), OR72 and the reject_shipments knob.
Every response validates against the official spec, as in test_mirakl_contract."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklBadRequest
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.documents import MAX_DOCUMENTS_PER_ORDER
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.mirakl_spec import CLASSIC_ERROR, SPEC_URI, load_spec, validate

KEY = "shipping-key"
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
ROUTES = {
    "OR24": ("PUT", "/api/orders/{order_id}/ship"),
    "OR72": ("GET", "/api/orders/documents"),
    "OR74": ("POST", "/api/orders/{order_id}/documents"),
}
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def check():
    """check(op, response): declared status, body valid against its schema (or the classic error shape)."""

    def _check(operation: str, response: httpx.Response) -> None:
        method, path = ROUTES[operation]
        declared = load_spec()["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        if response.status_code >= 400:
            assert status not in declared
            validate(CLASSIC_ERROR, response.json())
            assert response.json()["status"] == response.status_code
            return
        assert status in declared, f"{operation} answered {status}; the spec declares {sorted(declared)}"
        content = declared[status].get("content")
        if content is None:
            assert response.content == b""
            return
        schema = content["application/json"]["schema"]
        validate({"$ref": f"{SPEC_URI}{schema['$ref']}"}, response.json())

    return _check


@pytest.fixture
def served():
    sim = MarketplaceSim(MarketplaceSettings(api_key=KEY, rate_limit_scale=1e-6), clock=lambda: T0 + timedelta(minutes=10))
    for order_id in ("D-1-A", "D-2-A"):
        sim.add_order(build_order(order_id=order_id, state="SHIPPING", created=T0,
                                  lines=[{"sku": "ALP-TRAIL-42", "quantity": 1, "unit_price": Decimal("89.90")}]))
    server = serve_in_thread(create_mirakl_app(sim))
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as client:
        yield sim, client
    server.stop()


def upload(client: httpx.Client, order_id: str, metadata: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    return client.post(
        f"/api/orders/{order_id}/documents",
        data={"order_documents": metadata},
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
    )


def xml_form(*documents: tuple[str, str]) -> str:
    items = "".join(f"<order_document><file_name>{n}</file_name><type_code>{t}</type_code></order_document>"
                    for n, t in documents)
    return f'<?xml version="1.0"?>\n<body><order_documents>{items}</order_documents></body>'


# ---- OR74: the three forms of order_documents --------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        xml_form(("invoice.pdf", "CUSTOMER_INVOICE")),
        json.dumps({"order_documents": [{"file_name": "invoice.pdf", "type_code": "CUSTOMER_INVOICE"}]}),
        json.dumps([{"file_name": "invoice.pdf", "type_code": "CUSTOMER_INVOICE"}]),
    ],
    ids=["sdk-xml", "spec-json-object", "json-array"],
)
def test_each_accepted_form_stores_the_document(served, check, metadata):
    sim, client = served
    response = upload(client, "D-1-A", metadata, [("invoice.pdf", PDF)])
    assert response.status_code == 200, response.text
    check("OR74", response)
    assert response.json() == {"errors_count": 0, "order_documents": []}
    internal = client.get("/_sandbox/orders/D-1-A").json()
    assert [(d["file_name"], d["type"], d["file_size"]) for d in internal["documents"]] == [("invoice.pdf", "CUSTOMER_INVOICE", len(PDF))]
    assert client.get(f"/_sandbox/orders/D-1-A/documents/{internal['documents'][0]['id']}").content == PDF
    orders = client.get("/api/orders", params={"order_ids": "D-1-A"}).json()["orders"]
    assert orders[0]["has_invoice"] is True


@pytest.mark.parametrize(
    "metadata",
    [json.dumps({"file_name": "invoice.pdf", "type_code": "CUSTOMER_INVOICE"}), "file_name=invoice.pdf", "<body><docs/></body>"],
    ids=["flat-json-object", "not-json", "xml-without-order_documents"],
)
def test_an_unreadable_order_documents_part_is_a_400(served, check, metadata):
    sim, client = served
    response = upload(client, "D-1-A", metadata, [("invoice.pdf", PDF)])
    assert response.status_code == 400
    check("OR74", response)
    assert "problem with form param 'order_documents'" in response.json()["message"]
    assert sim.documents("D-1-A") == []


def test_a_request_without_files_or_multipart_is_a_400(served, check):
    _, client = served
    no_files = client.post("/api/orders/D-1-A/documents", data={"order_documents": xml_form(("a.pdf", "CUSTOMER_INVOICE"))},
                           files={})
    assert no_files.status_code == 400
    check("OR74", no_files)
    as_json = client.post("/api/orders/D-1-A/documents", json={"order_documents": []})
    assert as_json.status_code == 400 and "multipart/form-data" in as_json.json()["message"]
    check("OR74", as_json)


def test_unknown_order_is_404(served, check):
    _, client = served
    response = upload(client, "NOPE-A", xml_form(("a.pdf", "CUSTOMER_INVOICE")), [("a.pdf", PDF)])
    assert response.status_code == 404
    check("OR74", response)


# ---- OR74: per-document rules -----------------------------------------------------------------------


def test_each_rule_reports_only_the_failing_documents(served, check):
    sim, client = served
    metadata = xml_form(
        ("ok.pdf", "CUSTOMER_INVOICE"),
        ("unknown-type.pdf", "FACTURE"),
        ("slip.pdf", "SYSTEM_DELIVERY_BILL"),
        ("attachment.pdf", "SYSTEM_MESSAGE_ATTACHMENT"),
        ("script.exe", "CUSTOMER_INVOICE"),
        ("ok.pdf", "CUSTOMER_INVOICE"),  # same name twice
        ("missing.pdf", "CUSTOMER_INVOICE"),  # no file part
        ("credit.txt", "CUSTOMER_CREDIT_NOTE"),
    )
    files = [(n, PDF) for n in ("ok.pdf", "unknown-type.pdf", "slip.pdf", "attachment.pdf", "script.exe", "credit.txt", "orphan.pdf")]
    response = upload(client, "D-1-A", metadata, files)
    assert response.status_code == 200
    check("OR74", response)
    body = response.json()
    failures = [(item["input"].get("file_name"), [e["code"] for e in item["errors"]]) for item in body["order_documents"]]
    assert failures == [
        ("unknown-type.pdf", ["valid_order_document.type"]),
        ("slip.pdf", ["valid_order_document.type.restricted"]),
        ("attachment.pdf", ["valid_order_document.type.not_allowed"]),
        ("script.exe", ["valid_order_document.file_name.extension"]),
        ("ok.pdf", ["valid_order_document.file_name.duplicate"]),
        ("missing.pdf", ["valid_order_document.file"]),
        ("orphan.pdf", ["valid_order_document.missing"]),
    ]
    assert body["errors_count"] == len(failures)
    assert body["order_documents"][0]["errors"][0]["message"] == "Unable to retrieve document's type from the given code"
    assert sorted(d["file_name"] for d in sim.documents("D-1-A")) == ["credit.txt", "ok.pdf"]


def test_a_name_already_on_the_order_is_refused(served, check):
    _, client = served
    assert upload(client, "D-1-A", xml_form(("invoice.pdf", "CUSTOMER_INVOICE")), [("invoice.pdf", PDF)]).json()["errors_count"] == 0
    again = upload(client, "D-1-A", xml_form(("invoice.pdf", "CUSTOMER_INVOICE")), [("invoice.pdf", PDF)])
    check("OR74", again)
    assert again.json()["order_documents"][0]["errors"][0]["code"] == "valid_order_document.file_name.duplicate"
    # Other orders may use the same name.
    assert upload(client, "D-2-A", xml_form(("invoice.pdf", "CUSTOMER_INVOICE")), [("invoice.pdf", PDF)]).json()["errors_count"] == 0


def test_an_order_holds_at_most_50_documents(served, check):
    sim, client = served
    names = [f"doc-{i:02d}.pdf" for i in range(MAX_DOCUMENTS_PER_ORDER + 2)]
    response = upload(client, "D-1-A", xml_form(*((n, "CUSTOMER_INVOICE") for n in names)), [(n, PDF) for n in names])
    check("OR74", response)
    refused = [item["input"]["file_name"] for item in response.json()["order_documents"]]
    assert refused == names[-2:]
    assert all(item["errors"][0]["code"] == "valid_order_document.limit" for item in response.json()["order_documents"])
    assert len(sim.documents("D-1-A")) == MAX_DOCUMENTS_PER_ORDER


# ---- OR72 ---------------------------------------------------------------------------------------------


def test_or72_lists_the_documents_of_the_orders(served, check):
    _, client = served
    upload(client, "D-1-A", xml_form(("a.pdf", "CUSTOMER_INVOICE")), [("a.pdf", PDF)])
    upload(client, "D-2-A", xml_form(("b.csv", "CUSTOMER_CREDIT_NOTE")), [("b.csv", b"x;y\n")])
    response = client.get("/api/orders/documents", params={"order_ids": "D-1-A,D-2-A,NOPE-A"})
    assert response.status_code == 200
    check("OR72", response)
    assert [(d["order_id"], d["file_name"], d["type"]) for d in response.json()["order_documents"]] == [
        ("D-1-A", "a.pdf", "CUSTOMER_INVOICE"), ("D-2-A", "b.csv", "CUSTOMER_CREDIT_NOTE")]
    missing = client.get("/api/orders/documents")
    assert missing.status_code == 400 and "order_ids" in missing.json()["message"]
    check("OR72", missing)
    too_many = client.get("/api/orders/documents", params={"order_ids": ",".join(f"O{i}" for i in range(101))})
    assert too_many.status_code == 400
    check("OR72", too_many)


# ---- reject_shipments ------------------------------------------------------------------------------


def test_reject_shipments_over_http_makes_or24_fail_until_cleared(served, check):
    sim, client = served
    assert client.get("/_sandbox/settings").json()["reject_shipments"] is False
    assert client.post("/_sandbox/settings", json={"reject_shipments": True}).json()["reject_shipments"] is True
    refused = client.put("/api/orders/D-1-A/ship")
    assert refused.status_code == 400
    check("OR24", refused)
    assert "cannot be shipped" in refused.json()["message"]
    assert sim.get_order("D-1-A")["order_state"] == "SHIPPING"

    # The client sees a plain bad request, not the "already shipped" answer it counts as done.
    with MiraklClient(str(client.base_url), KEY, rate_limit_scale=1e-6, timeout=5) as mirakl:
        with pytest.raises(MiraklBadRequest) as caught:
            mirakl.ship_order("D-1-A")
        assert getattr(caught.value, "current_status", None) is None

    client.post("/_sandbox/settings", json={"reject_shipments": False})
    shipped = client.put("/api/orders/D-1-A/ship")
    assert shipped.status_code == 204
    check("OR24", shipped)
    assert sim.get_order("D-1-A")["order_state"] == "SHIPPED"


@pytest.mark.parametrize(
    "body, fragment",
    [({"reject_shipment": True}, "unknown setting(s) ['reject_shipment']"), ({"reject_shipments": "yes"}, "true or false"),
     ([True], "expected a JSON object")],
)
def test_settings_refuse_unknown_or_mistyped_knobs(served, body, fragment):
    sim, client = served
    response = client.post("/_sandbox/settings", json=body)
    assert response.status_code == 400 and fragment in response.json()["message"]
    assert sim.settings.reject_shipments is False
