"""OR21 against a hostile Mirakl, in real runs: a decision applied whose answer was lost is recorded as what Mirakl
shows (not "not applicable"), and a Retry-After longer than the run waits leaves the work to the next run."""

from contextlib import closing

from mirakl_pipelines_tests.defs.test_acceptance_modes import LEROY, configure  # noqa: F401
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, _line, _meta, _order, _wait_until_shipping, pipeline  # noqa: F401


def _link_and_lines(pipeline, code: str, order_id: str):  # noqa: F811
    with closing(pipeline.ledger()) as ledger:
        link = ledger.get_order_links(code, [order_id])[order_id]
        lines = {line_id: record.decision for line_id, record in ledger.get_order_lines(code, order_id).items()}
        return link, lines, ledger.open_exceptions(code)


def _logged(pipeline, result) -> list[str]:  # noqa: F811
    return [entry.user_message for entry in pipeline.instance.all_logs(result.run_id)]


def test_or21_answer_lost_then_invalid_state_is_recorded_accepted_and_imported(pipeline, sandbox):  # noqa: F811
    sim = sandbox.sims[MKP]
    sim.add_order(_order("LOST-1-A", [_line("ALP-MERINO-S", 1), _line("LUM-HEAD-400", 1, "39.95")]))
    sim.faults.update(lose_writes=1, path_filter="/accept")  # applied, answered 502; the retry meets WAITING_DEBIT
    meta = _meta(pipeline.run(), "shopify_orders")
    assert sim.calls["OR21"] == 2
    assert meta["accepted"] == 1 and meta["acceptance_failed"] == 0
    link, lines, exceptions = _link_and_lines(pipeline, MKP, "LOST-1-A")
    assert link.acceptance_state == "accepted" and set(lines.values()) == {"accepted"} and not exceptions

    _wait_until_shipping(sim, ["LOST-1-A"])
    assert _meta(pipeline.run(), "shopify_orders")["imported"] == 1
    [created] = sandbox.store.orders()
    assert created["sourceIdentifier"] == f"{MKP}:LOST-1-A"


def test_a_partial_decision_whose_answer_was_lost_is_read_back(configure, sandbox):  # noqa: F811
    pipeline = configure(LEROY)
    sim = sandbox.sims[LEROY]
    sim.add_order(_order("LOST-2-A", [_line("LUM-HEAD-400", 1, "39.95"), _line("LEGACY-SKU-9", 1, "19.90")]))
    sim.faults.update(lose_writes=1, path_filter="/accept")
    listings = sim.calls["OR11"]
    meta = _meta(pipeline.run(marketplace=LEROY), "shopify_orders")
    # The 400 names the order's state only; which line was refused takes one OR11 by id.
    assert sim.calls["OR11"] == listings + 2
    assert meta["accepted"] == 1 and meta["acceptance_failed"] == 0
    link, lines, exceptions = _link_and_lines(pipeline, LEROY, "LOST-2-A")
    assert link.acceptance_state == "partial" and sorted(lines.values()) == ["accepted", "refused"] and not exceptions


def test_every_answer_lost_is_settled_by_reading_the_order_back(pipeline, sandbox):  # noqa: F811
    sim = sandbox.sims[MKP]
    sim.add_order(_order("LOST-3-A", [_line("ALP-MERINO-S", 1)]))
    sim.faults.update(lose_writes=1000, path_filter="/accept")  # even the retries' 400s come back as 502s
    meta = _meta(pipeline.run(), "shopify_orders")
    assert sim.calls["OR21"] > 2
    assert meta["accepted"] == 1 and meta["acceptance_failed"] == 0
    link, _, exceptions = _link_and_lines(pipeline, MKP, "LOST-3-A")
    assert link.acceptance_state == "accepted" and not exceptions


def test_a_decision_made_elsewhere_is_still_not_applicable(pipeline, sandbox):  # noqa: F811
    sim = sandbox.sims[MKP]
    sim.add_order(_order("ELSE-1-A", [_line("ALP-MERINO-S", 1)]))
    sim.faults.update(lose_writes=1, path_filter="/accept", burst_429=0)
    # The back office refuses the order while our accept's answer is lost: the 502'd call applied nothing.
    original = sim.accept

    def refuse_instead(order_id, body):
        original(order_id, {"order_lines": [{"accepted": False, "id": line["id"]} for line in body["order_lines"]]})

    sim.accept = refuse_instead
    try:
        meta = _meta(pipeline.run(), "shopify_orders")
    finally:
        sim.accept = original
    assert meta["accepted"] == 0 and meta["acceptance_failed"] == 0
    link, lines, exceptions = _link_and_lines(pipeline, MKP, "ELSE-1-A")
    assert link.acceptance_state == "not_applicable" and not exceptions


def test_a_long_retry_after_on_or21_leaves_the_decision_pending_for_the_next_run(pipeline, sandbox):  # noqa: F811
    sim = sandbox.sims[MKP]
    sim.add_order(_order("WAIT-1-A", [_line("ALP-MERINO-S", 1)]))
    sim.faults.update(burst_429=1, retry_after_seconds=3600, path_filter="/accept")
    result = pipeline.run()
    meta = _meta(result, "shopify_orders")
    assert meta["accepted"] == 0 and meta["acceptance_failed"] == 0 and sim.calls.get("OR21", 0) == 0
    link, _, exceptions = _link_and_lines(pipeline, MKP, "WAIT-1-A")
    assert link.acceptance_state == "pending" and not exceptions
    assert any("3600 s" in message and "OR21" in message for message in _logged(pipeline, result))

    assert _meta(pipeline.run(), "shopify_orders")["accepted"] == 1
    assert sim.get_order("WAIT-1-A")["order_state"] != "WAITING_ACCEPTANCE"


def test_a_long_retry_after_on_the_refresh_skips_it_without_failing(pipeline, sandbox):  # noqa: F811
    sim = sandbox.sims[MKP]
    sim.add_order(_order("WAIT-2-A", [_line("ALP-MERINO-S", 1)]))
    sim.faults.update(burst_429=1, retry_after_seconds=3600, path_filter="/api/orders")
    result = pipeline.run()
    assert result.success
    skipped = _meta(result, "mirakl_orders")
    assert skipped["fetched"] == 0 and "skipped" in skipped
    assert _meta(pipeline.run(), "shopify_orders")["accepted"] == 1
