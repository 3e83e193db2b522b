"""OR74 inside the shipment push: the order ships whatever the invoice does; a missing invoice waits, a refused one
is queued as an exception, and the upload happens once per order."""

from contextlib import closing
from datetime import datetime, timedelta, timezone

import dagster as dg

from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _order
from mirakl_pipelines_tests.defs.test_shipment_push import _fulfilment_of, _push

PDF = b"%PDF-1.4\n%%EOF\n"


def _shipped_order(settings, config_path, sandbox, order_id: str):
    sandbox.sims[MKP].add_order(_order(order_id, [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        Pipeline(settings, config_path, instance).run()
    Warehouse(sandbox.store, seed=3, delay_seconds=0, partial_share=0, unknown_carrier_share=0).step()
    [fulfilment] = sandbox.store.fulfillments.values()
    return _fulfilment_of(sandbox.store, fulfilment)


def _with_invoice(push, **invoice):
    fulfilments = push.marketplace.fulfilments
    push.marketplace = push.marketplace.model_copy(update={"fulfilments": fulfilments.model_copy(
        update={"invoice": fulfilments.invoice.model_copy(update=invoice)})})
    return push


def test_the_order_ships_and_the_invoice_waits_until_its_file_exists(settings, config_path, sandbox, tmp_path):
    sim = sandbox.sims[MKP]
    fulfilment = _shipped_order(settings, config_path, sandbox, "I-1-A")
    source = str(tmp_path / "{mirakl_order_id}.pdf")
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        push = _with_invoice(_push(settings, sandbox, ledger), source=source)
        push.record("I-1-A", fulfilment)
        report = push.push()
        assert (report.shipped, report.invoices_waiting, report.invoices_uploaded) == (1, 1, 0)
        [row] = ledger.get_pushes(MKP, "I-1-A")
        assert row.or24.state == "done" and row.or74.state == "waiting"
        assert "I-1-A.pdf: no such file yet" in row.or74.error
        assert sim.get_order("I-1-A")["order_state"] == "SHIPPED" and "OR74" not in sim.calls

        assert ledger.open_exceptions(MKP, kinds=["invoice_missing"]) == []

        # A day later it is still missing: the order is listed for an operator, and the upload keeps waiting.
        late = _with_invoice(_push(settings, sandbox, ledger, push.sh21), source=source)
        late.now = lambda: datetime.now(timezone.utc) + timedelta(hours=24, minutes=1)
        late.push()
        [missing] = ledger.open_exceptions(MKP, kinds=["invoice_missing"])
        assert missing.record_id == "I-1-A" and "24 h after it shipped" in missing.reason

        (tmp_path / "I-1-A.pdf").write_bytes(PDF)  # the invoicing app catches up
        sh21 = push.sh21
        for _ in range(2):  # the second push finds nothing to do
            again = _with_invoice(_push(settings, sandbox, ledger, sh21), source=source)
            again.push()
        [row] = ledger.get_pushes(MKP, "I-1-A")
        assert row.or74.state == "done" and row.or74.error is None
        assert ledger.open_exceptions(MKP, kinds=["invoice_missing"]) == []
    assert (sim.calls["OR24"], sim.calls["OR74"]) == (1, 1)
    [document] = sim.documents("I-1-A")
    assert sim.document_content("I-1-A", document["id"])[1] == PDF


def test_a_refused_invoice_is_queued_and_a_repeat_counts_as_uploaded(settings, config_path, sandbox, tmp_path):
    sim = sandbox.sims[MKP]
    fulfilment = _shipped_order(settings, config_path, sandbox, "I-2-A")
    (tmp_path / "I-2-A.pdf").write_bytes(PDF)
    source = str(tmp_path / "{mirakl_order_id}.pdf")
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        push = _with_invoice(_push(settings, sandbox, ledger), source=source, type_code="NO_SUCH_TYPE")
        push.record("I-2-A", fulfilment)
        assert push.push().invoice_failures == 1
        [exception] = ledger.open_exceptions(MKP, kinds=["invoice_failed"])
        assert exception.record_id == "I-2-A" and "NO_SUCH_TYPE" in exception.reason
        assert sim.get_order("I-2-A")["order_state"] == "SHIPPED" and sim.documents("I-2-A") == []

        # The operator fixes the type code. Mirakl already holds the file (an upload whose answer was lost):
        # the duplicate file name is recognised as uploaded, not as a failure.
        sim.upload_documents("I-2-A", [{"file_name": "invoice-I-2-A.pdf", "type_code": "CUSTOMER_INVOICE"}],
                             {"invoice-I-2-A.pdf": PDF})
        fixed = _with_invoice(_push(settings, sandbox, ledger, push.sh21), source=source)
        fixed.push()
        [row] = ledger.get_pushes(MKP, "I-2-A")
        assert row.or74.state == "already"
        assert ledger.open_exceptions(MKP, kinds=["invoice_failed"]) == []
    assert len(sim.documents("I-2-A")) == 1
