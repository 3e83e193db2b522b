"""MiraklClient.upload_invoice (OR74): the multipart the SDK sends, per-document errors, retries; over loopback HTTP."""

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mirakl_pipelines.mirakl.budget import InMemoryBudget
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklDocumentRejected
from mirakl_pipelines.mirakl.errors import MiraklNotFound, MiraklResponseError
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.documents import parse_multipart
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread

SCALE = 0.001
PDF = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj\n<<>>\nendobj\n\x00\xff--boundary-lookalike\r\n%%EOF\n"


def _client(url: str, **kwargs) -> MiraklClient:
    options = dict(rate_limit_scale=SCALE, timeout=5.0, marketplace="decathlon_fr", budget=InMemoryBudget())
    options.update(kwargs)
    return MiraklClient(url, "k", **options)


@pytest.fixture
def sandbox():
    sim = MarketplaceSim(MarketplaceSettings(api_key="k", rate_limit_scale=SCALE))
    sim.add_order(build_order(order_id="INV-1-A", state="SHIPPING", created=datetime.now(UTC),
                              lines=[{"sku": "ALP-TRAIL-42", "quantity": 1, "unit_price": Decimal("89.90")}]))
    server = serve_in_thread(create_mirakl_app(sim))
    client = _client(server.url)
    yield sim, client
    client.close()
    server.stop()


def test_invoice_arrives_intact_and_is_listed(sandbox):
    sim, client = sandbox
    client.upload_invoice("INV-1-A", file_name="invoice-1001.pdf", content=PDF)
    [doc] = sim.documents("INV-1-A")
    assert (doc["file_name"], doc["type"], doc["file_size"]) == ("invoice-1001.pdf", "CUSTOMER_INVOICE", len(PDF))
    assert sim.document_content("INV-1-A", doc["id"])[1] == PDF
    assert sim.get_order("INV-1-A")["has_invoice"] is True
    assert client.calls["OR74"] == 1


def test_per_document_errors_in_a_200_raise_naming_them(sandbox):
    sim, client = sandbox
    with pytest.raises(MiraklDocumentRejected) as caught:
        client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF, type_code="FACTURE")
    error = caught.value
    assert error.status == 200 and error.code == "valid_order_document.type"
    assert "invoice.pdf" in str(error) and "Unable to retrieve document's type" in str(error)
    assert not error.already_uploaded
    assert sim.documents("INV-1-A") == []


def test_a_repeated_upload_is_recognisable_as_already_done(sandbox):
    _, client = sandbox
    client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF)
    with pytest.raises(MiraklDocumentRejected) as caught:
        client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF)
    assert caught.value.already_uploaded


def test_unknown_order_is_not_found(sandbox):
    _, client = sandbox
    with pytest.raises(MiraklNotFound):
        client.upload_invoice("NOPE-A", file_name="invoice.pdf", content=PDF)


def test_transient_failures_are_retried_with_the_same_body(sandbox):
    sim, client = sandbox
    sim.faults.update(burst_429=1, retry_after_seconds=1)
    client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF)
    assert client.calls["OR74"] == 2
    assert sim.document_content("INV-1-A", sim.documents("INV-1-A")[0]["id"])[1] == PDF


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"file_name": "facture-été.pdf"}, "US-ASCII"),
        ({"file_name": "../invoice.pdf"}, "bare US-ASCII name"),
        ({"file_name": "invoice.exe"}, "type Mirakl does not take"),
        ({"file_name": "invoice"}, "type Mirakl does not take"),
        ({"content": b""}, "empty"),
        ({"type_code": ""}, "type_code is empty"),
    ],
)
def test_what_mirakl_would_refuse_is_refused_before_sending(stub, kwargs, fragment):
    with _client(stub.url) as client:
        with pytest.raises(ValueError, match="OR74 for order INV-1-A") as caught:
            client.upload_invoice("INV-1-A", **{"file_name": "invoice.pdf", "content": PDF, **kwargs})
    assert fragment in str(caught.value)
    assert stub.requests == []


def test_the_request_is_the_multipart_the_official_sdk_sends(stub):
    stub.handler = lambda r: (200, {"errors_count": 0, "order_documents": []}, {})
    with _client(stub.url, shop_id=42) as client:
        client.upload_invoice("INV-1-A", file_name="invoice-1001.pdf", content=PDF, type_code="CUSTOMER_INVOICE")
    [request] = stub.requests
    assert (request.method, request.path, request.query) == ("POST", "/api/orders/INV-1-A/documents", {"shop_id": "42"})
    assert request.headers["authorization"] == "k"
    parts = {part.name: part for part in parse_multipart(request.headers["content-type"], request.body)}
    assert set(parts) == {"files", "order_documents"}
    assert (parts["files"].filename, parts["files"].content_type, parts["files"].data) == (
        "invoice-1001.pdf", "application/pdf", PDF)
    root = ElementTree.fromstring(parts["order_documents"].data)
    assert root.tag == "body"
    [item] = root.find("order_documents").findall("order_document")
    assert {child.tag: child.text for child in item} == {"file_name": "invoice-1001.pdf", "type_code": "CUSTOMER_INVOICE"}


def test_errors_count_without_details_still_raises(stub):
    stub.handler = lambda r: (200, {"errors_count": 1, "order_documents": []}, {})
    with _client(stub.url) as client, pytest.raises(MiraklDocumentRejected, match="errors_count=1 without details"):
        client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF)


def test_a_200_that_is_not_the_contract_is_a_response_error(stub):
    stub.handler = lambda r: (200, {"status": "ok"}, {})
    with _client(stub.url) as client, pytest.raises(MiraklResponseError, match="no 'order_documents' list"):
        client.upload_invoice("INV-1-A", file_name="invoice.pdf", content=PDF)
