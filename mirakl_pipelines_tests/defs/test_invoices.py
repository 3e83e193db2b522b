"""The invoice OR74 uploads: from a file path or a URL template, "not yet" told apart from "wrong"."""

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from mirakl_pipelines.config import PROJECT_ROOT, InvoiceConfig
from mirakl_pipelines.defs.fulfilments.invoices import (
    MAX_INVOICE_BYTES,
    InvoiceNotReady,
    InvoiceUnavailable,
    fetch_invoice,
)
from mirakl_pipelines.sandbox.server import serve_in_thread

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TOKEN = "s3cret-erp-token"
IDS = dict(order_name="#1001", mirakl_order_id="M-1-A", shopify_order_id="5551")


def _config(source: str) -> InvoiceConfig:
    return InvoiceConfig(enabled=True, source=source)


def test_a_file_is_read_by_order_name_and_named_per_mirakl_order(tmp_path):
    (tmp_path / "invoices").mkdir()
    (tmp_path / "invoices" / "_1001.pdf").write_bytes(PDF)  # "#" is kept; a path separator would not be
    (tmp_path / "invoices" / "#1001.pdf").write_bytes(PDF)
    document = fetch_invoice(_config("invoices/{order_name}.pdf"), tmp_path, **IDS)
    assert (document.file_name, document.content) == ("invoice-M-1-A.pdf", PDF)
    assert document.location == str(tmp_path / "invoices" / "#1001.pdf")


def test_a_missing_file_is_not_ready_yet_and_names_the_order(tmp_path):
    with pytest.raises(InvoiceNotReady, match=r"invoice of order M-1-A at .*5551\.pdf: no such file yet"):
        fetch_invoice(_config("{shopify_order_id}.pdf"), tmp_path, **IDS)


def test_a_file_that_is_not_a_pdf_is_refused(tmp_path):
    (tmp_path / "M-1-A.pdf").write_text("<html>login</html>")
    with pytest.raises(InvoiceUnavailable, match="M-1-A.pdf is not a PDF"):
        fetch_invoice(_config("{mirakl_order_id}.pdf"), tmp_path, **IDS)
    (tmp_path / "M-1-A.pdf").write_bytes(b"")
    with pytest.raises(InvoiceUnavailable, match="is empty"):
        fetch_invoice(_config("{mirakl_order_id}.pdf"), tmp_path, **IDS)


def test_a_png_keeps_its_extension(tmp_path):
    (tmp_path / "M-1-A.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert fetch_invoice(_config("{mirakl_order_id}.png"), tmp_path, **IDS).file_name == "invoice-M-1-A.png"


@pytest.fixture(scope="module")
def erp():
    """An invoicing service over loopback (path parameters arrive decoded): an invoice, a server error, a refusal,
    an oversized file."""
    async def invoice(request):
        name = request.path_params["name"]
        answers = {"#1001.pdf": Response(PDF, media_type="application/pdf"), "boom.pdf": Response("", status_code=503),
                   "secret.pdf": Response("no", status_code=403),
                   "huge.pdf": Response(b"%PDF-" + b"0" * MAX_INVOICE_BYTES, media_type="application/pdf")}
        return answers.get(name, Response("not found", status_code=404))

    async def private(request):
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response("who are you?", status_code=401)
        return Response(PDF, media_type="application/pdf")

    server = serve_in_thread(Starlette(routes=[Route("/invoices/{name:path}", invoice),
                                               Route("/private/{name:path}", private)]), name="erp")
    yield server.url
    server.stop()


def test_a_url_template_quotes_the_order_name(erp, tmp_path):
    document = fetch_invoice(_config(erp + "/invoices/{order_name}.pdf"), tmp_path, **IDS)
    assert document.content == PDF and document.location.endswith("/invoices/%231001.pdf")


@pytest.mark.parametrize("name, error, reason", [
    ("{shopify_order_id}", InvoiceNotReady, "HTTP 404, not generated yet"),
    ("boom", InvoiceNotReady, "HTTP 503"),
    ("secret", InvoiceUnavailable, "HTTP 403"),
    ("huge", InvoiceUnavailable, "over the 10,485,760 bytes"),
])
def test_url_answers_that_are_not_an_invoice(erp, tmp_path, name, error, reason):
    with pytest.raises(error, match=reason):
        fetch_invoice(_config(erp + "/invoices/" + name + ".pdf"), tmp_path, **IDS)


def test_an_unreachable_server_is_not_ready_yet(tmp_path):
    from mirakl_pipelines.sandbox.server import free_port

    with pytest.raises(InvoiceNotReady, match="invoice of order M-1-A at http://127.0.0.1:.*ConnectError"):
        fetch_invoice(_config(f"http://127.0.0.1:{free_port()}/{{mirakl_order_id}}.pdf"), tmp_path, **IDS)


def test_a_url_behind_authentication_gets_the_configured_header_and_never_shows_it(erp, tmp_path):
    config = _config(erp + "/private/{mirakl_order_id}.pdf")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert fetch_invoice(config, tmp_path, headers=headers, **IDS).content == PDF
    with pytest.raises(InvoiceUnavailable, match="HTTP 401, refused: check invoice.authorization_env") as refused:
        fetch_invoice(config, tmp_path, headers={"Authorization": "Bearer wrong"}, **IDS)
    assert "wrong" not in str(refused.value) and TOKEN not in str(refused.value)


def test_the_authorization_comes_from_the_environment_variable_the_config_names(tmp_path, monkeypatch):
    import dagster as dg
    import yaml

    from mirakl_pipelines.config import load_settings
    from mirakl_pipelines.defs.resources import build_resources

    path = tmp_path / "marketplaces.yaml"
    data = yaml.safe_load((PROJECT_ROOT / "data" / "marketplaces.yaml").read_text())
    data["marketplaces"][0]["fulfilments"] = {"invoice": {
        "enabled": True, "source": "https://erp.example/{mirakl_order_id}.pdf", "authorization_env": "ERP_INVOICE_AUTH"}}
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    code, other = settings.marketplaces[0].code, settings.marketplaces[1].code

    invoices = {"invoices": build_resources(settings, str(path))["invoices"]}  # Dagster resolves the EnvVar
    monkeypatch.setenv("ERP_INVOICE_AUTH", f"Bearer {TOKEN}")
    with dg.build_resources(invoices) as resources:
        assert resources.invoices.headers(settings, code) == {"Authorization": f"Bearer {TOKEN}"}
        assert resources.invoices.headers(settings, other) == {}  # no authorization configured there
    monkeypatch.delenv("ERP_INVOICE_AUTH")
    with pytest.raises(dg.DagsterInvalidConfigError, match="ERP_INVOICE_AUTH"):
        with dg.build_resources(invoices):
            pass
