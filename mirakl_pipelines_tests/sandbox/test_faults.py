"""Fault knobs of both sandboxes, over real loopback HTTP: set over /_sandbox/faults, felt by API routes only."""

import time
from dataclasses import dataclass
from typing import Callable

import httpx
import pytest

from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.sandbox.faults import Faults
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = PROJECT_ROOT / "data" / "sandbox" / "catalogue.yaml"
KNOBS = {"latency_ms", "error_5xx_rate", "burst_429", "retry_after_seconds", "drop_rate", "lose_writes",
         "lost_answer_status", "path_filter", "seed"}
DEFAULTS = Faults().as_dict()


@dataclass
class Target:
    """One running sandbox: its HTTP client, its knobs, one cheap API call, and how many API calls it served."""

    name: str
    http: httpx.Client
    faults: Faults
    api_call: Callable[[], httpx.Response]
    served: Callable[[], int]
    control_paths: tuple[str, ...]
    error_503_body: dict
    is_throttle_body: Callable[[dict], bool]  # each API answers 429 in its own error shape


def _mirakl_target():
    # OR11 allows one call a minute; scaled down so that call frequency never answers for the faults.
    sim = MarketplaceSim(MarketplaceSettings(code="faults_fr", api_key="faults-key", rate_limit_scale=1e-6))
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-faults")
    http = httpx.Client(base_url=server.url, timeout=10)
    target = Target(
        name="mirakl", http=http, faults=sim.faults,
        api_call=lambda: http.get("/api/orders", headers={"Authorization": "faults-key"}),
        served=lambda: sim.calls["OR11"],
        control_paths=("/_sandbox/stats", "/_sandbox/orders", "/_sandbox/clock"),
        error_503_body={"status": 503, "message": "Service Unavailable"},
        is_throttle_body=lambda body: body.get("status") == 429 and "Too Many Requests" in body.get("message", ""),
    )
    return target, server


def _shopify_target():
    reference_file("shopify/admin-2026-07.schema.graphql")
    from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
    from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings

    store = ShopifyStore.from_catalogue_file(CATALOGUE, StoreSettings(access_token="shpat_faults"))
    server = serve_in_thread(create_shopify_app(store), name="shopify-faults")
    http = httpx.Client(base_url=server.url, timeout=10)
    path = f"/admin/api/{store.settings.api_version}/graphql.json"
    target = Target(
        name="shopify", http=http, faults=store.faults,
        api_call=lambda: http.post(path, json={"query": "{ shop { name } }"},
                                   headers={"X-Shopify-Access-Token": "shpat_faults"}),
        served=lambda: store.calls["shop"],
        control_paths=("/_sandbox/stats", "/_sandbox/orders", "/_sandbox/settings"),
        error_503_body={"errors": "Service Unavailable"},
        # Shopify's REST-style throttle answer: a string under "errors", no GraphQL body.
        is_throttle_body=lambda body: set(body) == {"errors"} and body["errors"].startswith("Exceeded"),
    )
    return target, server


@pytest.fixture(scope="module", params=["mirakl", "shopify"])
def running(request):
    target, server = {"mirakl": _mirakl_target, "shopify": _shopify_target}[request.param]()
    try:
        yield target
    finally:
        target.http.close()
        server.stop()


@pytest.fixture
def target(running) -> Target:
    """The module's sandbox with every knob back at its default, before and after the test."""
    running.faults.update(**DEFAULTS)
    assert running.api_call().status_code == 200
    yield running
    running.faults.update(**DEFAULTS)


def knobs(target: Target) -> dict:
    response = target.http.get("/_sandbox/faults")
    assert response.status_code == 200
    return response.json()


def set_knobs(target: Target, **values) -> dict:
    response = target.http.post("/_sandbox/faults", json=values)
    assert response.status_code == 200, response.text
    return response.json()


# ---- the control route ----------------------------------------------------------------------------


def test_get_lists_every_knob_at_its_default(target):
    assert knobs(target) == DEFAULTS
    assert set(DEFAULTS) == KNOBS


def test_post_changes_knobs_and_answers_the_new_set(target):
    answer = set_knobs(target, latency_ms=12.5, retry_after_seconds=4)
    assert answer == {**DEFAULTS, "latency_ms": 12.5, "retry_after_seconds": 4}
    assert knobs(target) == answer
    assert target.faults.latency_ms == 12.5 and target.faults.retry_after_seconds == 4


def test_post_coerces_values_to_the_knob_type(target):
    assert set_knobs(target, burst_429="2", error_5xx_rate=0)["burst_429"] == 2
    assert isinstance(target.faults.error_5xx_rate, float)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"latncy_ms": 50}, "latncy_ms"),  # a typo
        ({"_rng": 1}, "_rng"),  # private state is not a knob
        ({"latency_ms": 5, "colour": "red"}, "colour"),  # one unknown knob spoils the whole request
        ({"error_5xx_rate": "lots"}, "lots"),
    ],
    ids=["typo", "private", "mixed", "not a number"],
)
def test_post_rejects_unknown_knobs_and_bad_values_with_400(target, body, fragment):
    response = target.http.post("/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert knobs(target) == DEFAULTS  # nothing changed


def test_unknown_knob_error_lists_the_known_ones(target):
    message = target.http.post("/_sandbox/faults", json={"latency": 5}).json()["message"]
    assert all(name in message for name in KNOBS)


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]"], ids=["not JSON", "not an object"])
def test_post_rejects_a_body_that_is_not_a_json_object(target, content):
    response = target.http.post("/_sandbox/faults", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert knobs(target) == DEFAULTS


# ---- each fault, as a client sees it ---------------------------------------------------------------


def _elapsed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = call()
    return time.perf_counter() - start, response


def test_latency_is_added_to_api_responses_only(target):
    set_knobs(target, latency_ms=200)
    slow, response = _elapsed(target.api_call)
    assert response.status_code == 200
    assert slow >= 0.2
    quick, control = _elapsed(lambda: target.http.get(target.control_paths[0]))
    assert control.status_code == 200
    assert quick < 0.2
    set_knobs(target, latency_ms=0)
    assert _elapsed(target.api_call)[0] < 0.2


def test_burst_429_answers_exactly_n_requests_with_retry_after(target):
    served = target.served()
    set_knobs(target, burst_429=3, retry_after_seconds=7)
    for remaining in (2, 1, 0):
        response = target.api_call()
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.headers["content-type"] == "application/json"
        assert target.is_throttle_body(response.json()), response.text
        # Control routes do not use up the burst.
        assert target.http.get(target.control_paths[0]).status_code == 200
        assert knobs(target)["burst_429"] == remaining
    assert target.api_call().status_code == 200
    assert target.served() == served + 1  # the rejected requests never reached the API


def test_error_5xx_rate_1_answers_503_with_the_api_error_body(target):
    served = target.served()
    set_knobs(target, error_5xx_rate=1)
    for _ in range(5):
        response = target.api_call()
        assert response.status_code == 503
        assert response.json() == target.error_503_body
    assert target.served() == served
    set_knobs(target, error_5xx_rate=0)
    assert target.api_call().status_code == 200


def test_error_5xx_rate_is_a_share_replayed_by_its_seed(target):
    def statuses() -> list[int]:
        set_knobs(target, error_5xx_rate=0.5, seed=5)
        return [target.api_call().status_code for _ in range(40)]

    first = statuses()
    assert set(first) == {200, 503}
    assert 10 <= first.count(503) <= 30
    assert statuses() == first  # re-seeding replays the same fates


def test_drop_rate_1_drops_the_connection(target):
    served = target.served()
    set_knobs(target, drop_rate=1)
    for _ in range(3):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            target.api_call()
    assert target.served() == served
    set_knobs(target, drop_rate=0)
    assert target.api_call().status_code == 200  # the server survives dropped connections


def test_control_routes_are_never_fault_injected(target):
    set_knobs(target, error_5xx_rate=0.5, drop_rate=0.5, burst_429=2, latency_ms=300)
    for path in target.control_paths:
        elapsed, response = _elapsed(lambda: target.http.get(path))
        assert response.status_code == 200, (path, response.text)
        assert elapsed < 0.3, path
    assert knobs(target)["burst_429"] == 2
    # And the knobs can always be turned off, however faulty the API is.
    assert set_knobs(target, **DEFAULTS) == DEFAULTS
    assert target.api_call().status_code == 200


# ---- lost answers and targeted faults (Mirakl) ------------------------------------------------------------


@pytest.fixture
def mirakl_with_order():
    """A Mirakl sandbox (the module's Mirakl target) holding one order awaiting acceptance, line L-1-1."""
    target, server = _mirakl_target()
    order = {"order_id": "L-1", "lines": [{"sku": "S", "title": "T", "quantity": 1, "unit_price": "9.90"}]}
    created = target.http.post("/_sandbox/orders", json=order)
    try:
        assert created.status_code == 201, created.text
        yield target
    finally:
        target.http.close()
        server.stop()


def _accept(target: Target, line_id: str = "L-1-1") -> httpx.Response:
    return target.http.put("/api/orders/L-1/accept", headers={"Authorization": "faults-key"},
                           json={"order_lines": [{"accepted": True, "id": line_id}]})


def _state(target: Target) -> str:
    return target.http.get("/_sandbox/orders/L-1").json()["order_state"]


def test_lose_writes_applies_the_write_then_answers_a_gateway_error(mirakl_with_order):
    target = mirakl_with_order
    set_knobs(target, lose_writes=1)
    assert target.api_call().status_code == 200  # reads are never lost, and do not use the count up
    response = _accept(target)
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    assert _state(target) != "WAITING_ACCEPTANCE"  # applied all the same
    assert knobs(target)["lose_writes"] == 0
    again = _accept(target)  # what a client's retry meets
    assert again.status_code == 400 and again.json()["code"] == "ORDER_INVALID_STATE"


def test_lose_writes_with_status_0_drops_the_connection_after_applying(mirakl_with_order):
    target = mirakl_with_order
    set_knobs(target, lose_writes=1, lost_answer_status=0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _accept(target)
    assert _state(target) != "WAITING_ACCEPTANCE"


def test_path_filter_aims_the_faults_at_one_route(mirakl_with_order):
    target = mirakl_with_order
    set_knobs(target, burst_429=1, retry_after_seconds=3600, path_filter="/accept")
    assert target.api_call().status_code == 200  # OR11 untouched, the burst kept for OR21
    refused = _accept(target)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
    assert _state(target) == "WAITING_ACCEPTANCE"
    assert _accept(target).status_code == 204
