"""ShopifyClient's fulfilment orders and holds over loopback HTTP against the sandbox store: reading them with the
Mirakl line ids, holding whole or in part (the split), duplicate handles, lost answers, release, and the warehouse."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.shopify.errors import ShopifyNotFound, ShopifyUserError
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY, FulfilmentOrder
from mirakl_pipelines_tests.shopify.test_client_loopback import (  # noqa: F401
    OPTIONS,
    LoseAnswers,
    client_for,
    order_input,
    sandbox,
    start_store,
)


def import_order(client, source: str, lines: list[tuple[str, int]]) -> str:
    """An order as the importer creates it, unpaid: one line per Mirakl line, each carrying its Mirakl line id."""
    variants = client.variants_by_sku([sku for sku, _ in lines])
    order = order_input(source, variants[lines[0][0]], lines[0][1])
    del order["transactions"]  # the importer marks it paid on its own (mark_order_paid)
    order["lineItems"] = [{"variantId": variants[sku].id, "quantity": quantity, "priceSet": {"shopMoney": {
        "amount": variants[sku].price, "currencyCode": "EUR"}}, "properties": [
        {"name": LINE_ID_PROPERTY, "value": f"{source}-{n + 1}"}]} for n, (sku, quantity) in enumerate(lines)]
    return client.create_order(order, OPTIONS).id


def later() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=1)


def test_fulfilment_orders_carry_lines_with_their_mirakl_ids(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "FO-1", [("ALP-TRAIL-42", 2), ("LUM-HEAD-400", 1)])
        state = client.order_fulfilment_state(order_id)
        [fo] = client.fulfilment_orders(order_id)
    total = sum(Decimal(line["originalTotalSet"]["shopMoney"]["amount"]) for line in store.order(order_id)["lineItems"])
    assert (state.financial_status, state.outstanding, state.currency, state.cancelled_at) == (None, total, "EUR", None)
    assert state.fulfilment_orders == (fo,)
    assert isinstance(fo, FulfilmentOrder) and fo.status == "OPEN" and fo.holds == () and fo.order_id == order_id
    record = store.fulfillment_orders[fo.id]
    assert [(line.id, line.mirakl_line_id, line.total_quantity, line.remaining_quantity) for line in fo.line_items] == [
        (record["lineItems"][0]["id"], "FO-1-1", 2, 2), (record["lineItems"][1]["id"], "FO-1-2", 1, 1)]
    assert [line.line_item_id for line in fo.line_items] == [line["id"] for line in store.order(order_id)["lineItems"]]
    assert fo.remaining_by_mirakl_line() == {"FO-1-1": 2, "FO-1-2": 1}


def test_unknown_order_or_fulfilment_order_is_not_found(sandbox):
    _, server = sandbox
    with client_for(server) as client:
        with pytest.raises(ShopifyNotFound):
            client.fulfilment_orders("gid://shopify/Order/1")
        with pytest.raises(ShopifyNotFound):
            client.fulfilment_order("gid://shopify/FulfillmentOrder/1")


def test_whole_hold_stops_the_warehouse_and_a_duplicate_handle_is_already_held(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "FO-2", [("ALP-MERINO-S", 2)])
        [fo] = client.fulfilment_orders(order_id)
        held = client.hold_fulfilment_order(fo.id, reason="OTHER", notes="cancelled on the marketplace",
                                            handle="mirakl-cancel-FO-2")
        again = client.hold_fulfilment_order(fo.id, reason="OTHER", notes="cancelled on the marketplace",
                                             handle="mirakl-cancel-FO-2")
        [after] = client.fulfilment_orders(order_id)
    assert (held.fulfilment_order_id, held.remaining_fulfilment_order_id, held.already_held) == (fo.id, None, False)
    assert (held.hold.handle, held.hold.reason, held.hold.reason_notes) == (
        "mirakl-cancel-FO-2", "OTHER", "cancelled on the marketplace")
    assert again.already_held and again.hold == held.hold and again.fulfilment_order_id == fo.id
    assert after.on_hold and after.hold_handles == {"mirakl-cancel-FO-2"} and after.holds == (held.hold,)
    assert len(store.fulfillment_orders[fo.id]["fulfillmentHolds"]) == 1  # one hold, not two
    assert Warehouse(store, seed=1, delay_seconds=0).step(later()) == []


def test_partial_hold_splits_and_the_warehouse_ships_only_the_unheld_part(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "FO-3", [("ALP-TRAIL-43", 3), ("LUM-BOTTLE-750", 2)])
        [fo] = client.fulfilment_orders(order_id)
        shoes = fo.line_items[0]
        result = client.hold_fulfilment_order(fo.id, reason="OTHER", notes="line 1 cancelled", handle="cancel-FO-3-1",
                                              lines={shoes.id: 3})
        # A resend of the same partial hold (the fulfilment order is held since): Shopify says "not splittable",
        # the client finds its own hold and reports it as already held.
        again = client.hold_fulfilment_order(fo.id, reason="OTHER", notes="line 1 cancelled", handle="cancel-FO-3-1",
                                             lines={shoes.id: 3})
        held, rest = client.fulfilment_orders(order_id)
        assert again.already_held and again.hold == result.hold
        assert (held.id, held.status, rest.id, rest.status) == (fo.id, "ON_HOLD", result.remaining_fulfilment_order_id, "OPEN")
        assert held.remaining_by_mirakl_line() == {"FO-3-1": 3}
        assert rest.remaining_by_mirakl_line() == {"FO-3-2": 2}

        [parcel] = Warehouse(store, seed=2, delay_seconds=0, partial_share=0).step(later())
        assert (parcel.fulfillment_order_id, parcel.quantity) == (rest.id, 2)
        [fulfilment] = client.fulfilments_of_orders_updated_since(datetime.now(timezone.utc) - timedelta(minutes=5))
        assert fulfilment.lines == {"FO-3-2": 2}  # only the unheld Mirakl line shipped
        held_after, rest_after = client.fulfilment_orders(order_id)
        assert (held_after.status, rest_after.status) == ("ON_HOLD", "CLOSED")


def test_release_reopens_and_is_harmless_twice(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "FO-4", [("ALP-VEST-12", 1)])
        [fo] = client.fulfilment_orders(order_id)
        first = client.hold_fulfilment_order(fo.id, reason="INCORRECT_ADDRESS", notes=None, handle="address")
        second = client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, handle="other")
        still = client.release_fulfilment_hold(fo.id, [first.hold.id])
        assert still.on_hold and still.hold_handles == {"other"}
        reopened = client.release_fulfilment_hold(fo.id, [second.hold.id])
        assert (reopened.status, reopened.holds) == ("OPEN", ())
        assert client.release_fulfilment_hold(fo.id, [first.hold.id, second.hold.id]) == reopened
        with pytest.raises(ValueError, match="name the holds"):
            client.release_fulfilment_hold(fo.id, [])
    assert [s.fulfillment_order_id for s in Warehouse(store, seed=3, delay_seconds=0).step(later())] == [fo.id]


def test_refused_holds_raise_and_bad_arguments_are_caught_before_sending(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "FO-5", [("LUM-HEAD-400", 1)])
        [fo] = client.fulfilment_orders(order_id)
        with pytest.raises(ShopifyUserError) as too_many:
            client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, handle="h",
                                         lines={fo.line_items[0].id: 2})
        assert too_many.value.codes == ["INVALID_LINE_ITEM_QUANTITY"]
        client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, handle="whole")
        with pytest.raises(ShopifyUserError) as not_splittable:  # held by another of our holds: no split now
            client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, handle="part",
                                         lines={fo.line_items[0].id: 1})
        assert not_splittable.value.codes == ["FULFILLMENT_ORDER_NOT_SPLITTABLE"]
        sent = sum(client.calls.values())
        for bad in ({"handle": ""}, {"handle": "x" * 65}, {"handle": "h", "lines": {}}, {"handle": "h", "lines": {"a": 0}}):
            with pytest.raises(ValueError):
                client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, **bad)
        assert sum(client.calls.values()) == sent


def test_lost_answer_to_a_hold_is_resent_and_read_as_held():
    store, server = start_store(app=lambda asgi: LoseAnswers(asgi, n=1, operation="FulfillmentOrderHold"),
                                bucket_size=2000, restore_rate=1000)
    try:
        with client_for(server) as client:
            order_id = import_order(client, "FO-6", [("ALP-TRAIL-44", 2)])
            [fo] = client.fulfilment_orders(order_id)
            result = client.hold_fulfilment_order(fo.id, reason="OTHER", notes=None, handle="cancel-FO-6",
                                                  lines={fo.line_items[0].id: 1})
            assert client.calls["FulfillmentOrderHold"] == 2  # the first went through, its answer was lost
        assert result.already_held and result.hold.handle == "cancel-FO-6"
        assert [h["handle"] for h in store.fulfillment_orders[fo.id]["fulfillmentHolds"]] == ["cancel-FO-6"]
        assert len(store.order(order_id)["fulfillmentOrders"]) == 2  # split once
    finally:
        server.stop()


def test_lost_answer_to_a_release_is_resent_harmlessly():
    store, server = start_store(app=lambda asgi: LoseAnswers(asgi, n=1, operation="FulfillmentOrderReleaseHold"),
                                bucket_size=2000, restore_rate=1000)
    try:
        with client_for(server) as client:
            order_id = import_order(client, "FO-7", [("ALP-TRAIL-42", 1)])
            [fo] = client.fulfilment_orders(order_id)
            held = client.hold_fulfilment_order(fo.id, reason="INCORRECT_ADDRESS", notes=None, handle="address")
            released = client.release_fulfilment_hold(fo.id, [held.hold.id])
            assert client.calls["FulfillmentOrderReleaseHold"] == 2
        assert (released.status, released.holds) == ("OPEN", ())
    finally:
        server.stop()
