"""Shopify Admin GraphQL client: typed errors, cost-bucket pacing, bounded retries, exactly-once orderCreate.

Every request names an operation from `operations/` (one .graphql document each). Failure handling:

- THROTTLED (HTTP 200 + errors[].extensions.code) and HTTP 429: nothing was executed, so wait
  ((requested − available)/restoreRate, or Retry-After, or 1 s) and resend, at most `max_retries` times.
- 5xx, timeouts, dropped connections: queries and `@idempotent` mutations are resent with exponential
  backoff + jitter (tenacity), at most `max_retries` times. A non-idempotent mutation is resent only
  when the request provably never left (connect errors); otherwise the outcome is unknown and
  `ShopifyAmbiguousWrite` is raised. `create_order` resolves that case itself, by reading the order
  back through its unique order reference metafield (see there and `ensure_order_ref_definition`). The
  mutations in RESEND_SAFE_MUTATIONS are resent like queries: Shopify itself makes a second one
  harmless (each entry says how), and their methods read the "already done" answer as success.
- 401/403 and ACCESS_DENIED → ShopifyAuthError; other top-level errors → ShopifyGraphQLError;
  a mutation's non-empty `userErrors` (or `<x>UserErrors`) → ShopifyUserError.

JSON is read with `parse_float=Decimal`; Decimal/datetime values in variables are sent as strings.
The access token is sent in a header and never logged.
"""

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import httpx
import tenacity

from mirakl_pipelines.shopify.errors import (
    ShopifyAmbiguousWrite,
    ShopifyAuthError,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyNotFound,
    ShopifyServerError,
    ShopifySetupError,
    ShopifyThrottled,
    ShopifyUserError,
    describe_errors,
)
from mirakl_pipelines.shopify.models import (
    ORDER_REF_KEY,
    ORDER_REF_NAMESPACE,
    ORDER_REF_TYPE,
    ORDER_REF_TYPES,
    Fulfilment,
    FulfilmentHold,
    FulfilmentHoldResult,
    FulfilmentOrder,
    FulfilmentOrderLine,
    OrderFulfilmentState,
    OrderPayment,
    ShopifyOrderRef,
    Variant,
    mirakl_line_id,
    order_ref_of,
    parse_shopify_time,
    quantities_by_mirakl_line,
)
from mirakl_pipelines.shopify.operations import OperationInfo, batched_operation, load_operation, operation_info
from mirakl_pipelines.shopify.throttle import CostThrottle, parse_cost

log = logging.getLogger(__name__)

USER_AGENT = "mirakl-pipelines/0.1 (+https://github.com/mirakl-pipelines)"
VARIANT_BATCH_SIZE = 50  # SKUs per productVariants search (`sku:"A" OR sku:"B" …`)
PAGE_SIZE_LIMIT = 250  # Shopify's maximum `first`
BACKOFF_MAX_SECONDS = 30.0
FULFILMENT_ORDER_PAGE_SIZE = 20  # a Mirakl order has one to a few; splits by holds add one each
HOLD_HANDLE_MAX_LENGTH = 64  # FulfillmentOrderHoldInput.handle: "This field cannot exceed 64 characters."
ORDER_REF_BATCH_SIZE = 25  # orderByIdentifier aliases per request: ≤ 25 points, a short document
# Stores whose order reference definition was checked by this process (ensure_order_ref_definition), by endpoint.
_order_ref_ready: set[str] = set()
_order_ref_lock = threading.Lock()

# Mutations without @idempotent whose resend after an unknown outcome cannot do anything twice, and why.
RESEND_SAFE_MUTATIONS = {
    "OrderUpdate": "it sets fields to the values given: applied twice, the order ends the same",
    "OrderMarkAsPaid": "Shopify refuses a second payment once nothing is outstanding ('Order cannot be marked as paid.')",
    "FulfillmentOrderHold": "a handle is unique per app and fulfilment order: a second hold is refused "
                            "(DUPLICATE_FULFILLMENT_HOLD_HANDLE, or FULFILLMENT_ORDER_NOT_SPLITTABLE for line items)",
    "FulfillmentOrderReleaseHold": "released holds are gone: naming them again releases nothing more",
    "MetafieldDefinitionUpdate": "it sets the capability to the value given: applied twice, the definition ends the same",
}


class _Transient(Exception):
    """One failed attempt that may deserve a resend; `ambiguous` when the request may have been executed."""

    def __init__(self, error: ShopifyServerError, *, ambiguous: bool):
        super().__init__(error.message)
        self.error = error
        self.ambiguous = ambiguous


class _Throttled(Exception):
    def __init__(self, error: ShopifyThrottled, delay: float):
        super().__init__(error.message)
        self.error = error
        self.delay = delay


class _OrderStillAbsent(Exception):
    """orderCreate's fate was unknown and the look-up found no order: safe to send again."""

    def __init__(self, error: ShopifyAmbiguousWrite):
        super().__init__(error.message)
        self.error = error


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # GraphQL Decimal/Money scalars are strings: no float rounding on the wire
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to Shopify: {value!r}")


def search_value(value: str) -> str:
    """Quote a value for Shopify search syntax (`sku:"A B"`), escaping backslashes and quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _retry_after(response: httpx.Response) -> Optional[float]:
    header = response.headers.get("retry-after")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


class ShopifyClient:
    def __init__(
        self,
        shop_url: str,
        access_token: str,
        *,
        api_version: str = "2026-07",
        timeout: float = 30.0,
        max_retries: int = 5,
        transport: Optional[httpx.BaseTransport] = None,
        backoff_base: float = 0.5,
        throttle: Optional[CostThrottle] = None,
        sleep: Optional[Callable[[float], None]] = None,
        variant_batch_size: int = VARIANT_BATCH_SIZE,
    ):
        if not access_token:
            raise ValueError("ShopifyClient needs an access token (X-Shopify-Access-Token)")
        if not 1 <= variant_batch_size <= PAGE_SIZE_LIMIT:
            raise ValueError(f"variant_batch_size must be 1..{PAGE_SIZE_LIMIT}, got {variant_batch_size}")
        base = shop_url.rstrip("/")
        if "://" not in base:
            base = f"https://{base}"
        self.endpoint = f"{base}/admin/api/{api_version}/graphql.json"
        self.api_version = api_version
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.variant_batch_size = variant_batch_size
        self.throttle = throttle or CostThrottle(sleep=sleep or time.sleep)
        self._sleep = sleep or self.throttle.sleep
        self.calls: Counter = Counter()  # HTTP requests per operation, retries included
        self.throttled: Counter = Counter()  # THROTTLED / 429 refusals per operation
        self.cost_spent = 0
        self.ambiguous_skus: dict[str, list[str]] = {}  # SKU → ids of the variants that share it
        self._variants: dict[str, Optional[Variant]] = {}  # per-instance cache; None = absent or ambiguous
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={
                "X-Shopify-Access-Token": access_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def __repr__(self) -> str:  # no token here, ever
        return f"ShopifyClient({self.endpoint!r})"

    @property
    def throttle_wait_seconds(self) -> float:
        return self.throttle.waited_seconds

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ShopifyClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ generic execution

    def execute(self, operation: str, variables: Optional[dict] = None, *, document: Optional[str] = None) -> dict:
        """Run the named operation and return its `data`; raise a ShopifyError subclass otherwise.

        `document` replaces the operation's text by a variant of it (batched_operation), same name and kind."""
        info = operation_info(operation)
        body = json.dumps(
            {"query": document or load_operation(operation), "variables": variables or {}, "operationName": operation},
            default=_json_default,
        ).encode()
        throttled_times = 0
        while True:
            try:
                payload = self._post_with_retries(info, body)
            except _Throttled as throttled:
                throttled_times += 1
                self.throttled[operation] += 1
                if throttled_times > self.max_retries:
                    raise throttled.error from None
                log.info("Shopify %s throttled (%d); retrying", operation, throttled_times)
                self.throttle.wait(throttled.delay)  # the bucket estimate itself is waited off by acquire()
                continue
            return self._data_or_raise(info, payload)

    def paginate(self, operation: str, variables: dict, connection_path: Sequence[str],
                 on_page: Optional[Callable[[dict], None]] = None) -> Iterator[dict]:
        """Yield every node of the connection at `connection_path` in `data`, following pageInfo.endCursor.

        The operation must declare `$after: String` and select `pageInfo { hasNextPage endCursor }`.
        `on_page` sees each page's whole `data` (for fields beside the connection).
        """
        after: Optional[str] = None
        while True:
            data = self.execute(operation, {**variables, "after": after})
            if on_page is not None:
                on_page(data)
            connection: Any = data
            for key in connection_path:
                connection = (connection or {}).get(key)
            if connection is None:
                return
            if "nodes" in connection:
                yield from connection["nodes"]
            else:
                yield from (edge["node"] for edge in connection.get("edges", []))
            page_info = connection.get("pageInfo") or {}
            if not page_info.get("hasNextPage"):
                return
            cursor = page_info.get("endCursor")
            if not cursor or cursor == after:
                raise ShopifyError(operation, f"pagination of {'.'.join(connection_path)} did not advance "
                                              f"(hasNextPage with endCursor {cursor!r})")
            after = cursor

    def _post_with_retries(self, info: OperationInfo, body: bytes) -> dict:
        resend_safe = info.safe_to_resend or info.name in RESEND_SAFE_MUTATIONS
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=self.backoff_base, max=BACKOFF_MAX_SECONDS,
                                                  jitter=self.backoff_base),
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, _Transient) and (resend_safe or not e.ambiguous)),
            sleep=self._sleep,
            before_sleep=lambda state: log.warning(
                "Shopify %s attempt %d failed (%s); retrying", info.name, state.attempt_number,
                state.outcome.exception() if state.outcome else "?"),
            reraise=True,
        )
        try:
            return retrying(self._post_once, info, body)
        except _Transient as failure:
            if failure.ambiguous and not resend_safe:
                raise ShopifyAmbiguousWrite(
                    info.name, f"outcome unknown, not resent (non-idempotent mutation): {failure.error.message}"
                ) from None
            raise failure.error from None

    def _post_once(self, info: OperationInfo, body: bytes) -> dict:
        """One HTTP exchange, after pacing. Returns the decoded body of a 200 answer that was not THROTTLED."""
        self.throttle.acquire(info.name)
        try:
            return self._exchange(info, body)
        finally:
            self.throttle.settle()  # answered or failed: no longer in flight

    def _exchange(self, info: OperationInfo, body: bytes) -> dict:
        operation = info.name
        self.calls[operation] += 1
        try:
            response = self._http.post(self.endpoint, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # The request never reached the server: resending is safe even for a mutation.
            raise _Transient(ShopifyServerError(operation, f"cannot connect: {e!r}"), ambiguous=False) from e
        except httpx.TransportError as e:
            raise _Transient(ShopifyServerError(operation, f"no answer: {e!r}"), ambiguous=True) from e

        status = response.status_code
        if status in (401, 403):
            raise ShopifyAuthError(operation, f"HTTP {status}: check the access token and its scopes",
                                   status_code=status)
        if status == 429:
            payload = self._decode(operation, response, required=False) or {}
            cost = parse_cost(payload.get("extensions"))
            self.throttle.observe(operation, cost)
            raise _Throttled(ShopifyThrottled(operation, "HTTP 429 Too Many Requests", status_code=429),
                             self.throttle.refusal_wait(cost, _retry_after(response)))
        if status >= 500:
            raise _Transient(ShopifyServerError(operation, f"HTTP {status}: {response.text[:200]}",
                                                status_code=status), ambiguous=True)
        payload = self._decode(operation, response, required=True)
        if status >= 400:
            if payload.get("errors"):
                raise ShopifyGraphQLError(operation, payload["errors"], status_code=status)
            raise ShopifyError(operation, f"HTTP {status}: {response.text[:200]}", status_code=status)

        cost = parse_cost(payload.get("extensions"))
        self.throttle.observe(operation, cost)
        if cost and cost.get("actualQueryCost") is not None:
            self.cost_spent += int(cost["actualQueryCost"])
        errors = payload.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            raise _Throttled(ShopifyThrottled(operation, describe_errors(errors), status_code=status),
                             self.throttle.refusal_wait(cost, None))
        return payload

    @staticmethod
    def _decode(operation: str, response: httpx.Response, *, required: bool) -> Optional[dict]:
        try:
            payload = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            if not required:
                return None
            raise ShopifyServerError(operation, f"HTTP {response.status_code} with a body that is not a JSON "
                                                f"object: {response.text[:200]!r}", status_code=response.status_code)
        return payload

    @staticmethod
    def _data_or_raise(info: OperationInfo, payload: dict) -> dict:
        errors = payload.get("errors") or []
        data = payload.get("data")
        if errors:
            if any((e.get("extensions") or {}).get("code") == "ACCESS_DENIED" for e in errors):
                raise ShopifyAuthError(info.name, describe_errors(errors))
            raise ShopifyGraphQLError(info.name, errors, data=data)
        if not isinstance(data, dict):
            raise ShopifyServerError(info.name, "answer has neither data nor errors")
        if info.kind == "mutation":
            for root in data.values():
                if not isinstance(root, dict):
                    continue
                for key, value in root.items():
                    if (key == "userErrors" or key.endswith("UserErrors")) and value:
                        raise ShopifyUserError(info.name, value, data=root)
        return data

    # ------------------------------------------------------------------ orders

    def find_orders_by_source_identifier(self, source_identifier: str) -> list[ShopifyOrderRef]:
        """Orders whose sourceIdentifier equals `source_identifier` exactly, oldest first.

        A search: Shopify's index lags writes by seconds, so an order created just now may be missing. Fine
        for an operator's question; never for deciding whether to create an order (use `orders_by_ref`)."""
        if not source_identifier:
            raise ValueError("find_orders_by_source_identifier needs a non-empty source identifier")
        nodes = self.paginate(
            "FindOrdersBySourceIdentifier",
            {"query": f"source_identifier:{search_value(source_identifier)}", "first": 10},
            ("orders",),
        )
        # Search is token-based, not exact: keep only true matches.
        return [_order_ref("FindOrdersBySourceIdentifier", node) for node in nodes
                if node.get("sourceIdentifier") == source_identifier]

    def fulfilments_of_orders_updated_since(self, since: datetime, *, source_name: str | None = None) -> list[Fulfilment]:
        """Fulfilments of the orders updated after `since` (optionally only orders of `source_name`)."""
        query = f"updated_at:>'{since.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        if source_name:
            query += f" source_name:{search_value(source_name)}"
        fulfilments = []
        for order in self.paginate("FulfilmentsOfOrdersUpdatedSince", {"query": query, "first": 50}, ("orders",)):
            fulfilments += [_fulfilment(order["id"], node) for node in order.get("fulfillments") or []]
        return fulfilments

    # ------------------------------------------------------------------ exactly-once orderCreate

    def ensure_order_ref_definition(self) -> None:
        """Make sure the store has the order reference definition with unique values (once per store and process).

        Without it `orderByIdentifier` cannot find orders by reference and Shopify would accept two orders
        with the same one. Creates it (type `id`) when absent ("already exists", TAKEN, from a concurrent run is
        fine); accepts an existing `id` or `single_line_text_field` definition and turns unique values on when it
        lacks them; raises ShopifySetupError, naming the store and what to do, when that is refused (Shopify
        allows it only while no order carries the field) or when the definition has another type.
        ShopifyError subclasses for the rest (nothing is cached then: the next import checks again).
        """
        with _order_ref_lock:
            if self.endpoint in _order_ref_ready:
                return
            definition = self._order_ref_definition() or self._create_order_ref_definition()
            type_name = ((definition.get("type") or {}).get("name"))
            where = f"{ORDER_REF_NAMESPACE}.{ORDER_REF_KEY} (order metafield definition) in store {self.endpoint}"
            if type_name not in ORDER_REF_TYPES:
                raise ShopifySetupError("MetafieldDefinitionByIdentifier", (
                    f"{where} has type {type_name!r}; the connector needs {' or '.join(sorted(ORDER_REF_TYPES))}: "
                    "delete that definition in Shopify admin (Settings > Custom data > Orders) and run the import again"))
            if not ((definition.get("capabilities") or {}).get("uniqueValues") or {}).get("enabled"):
                self._enable_unique_order_refs(where)
            _order_ref_ready.add(self.endpoint)

    def _order_ref_definition(self) -> Optional[dict]:
        data = self.execute("MetafieldDefinitionByIdentifier", {"identifier": {
            "ownerType": "ORDER", "namespace": ORDER_REF_NAMESPACE, "key": ORDER_REF_KEY}})
        return data.get("metafieldDefinition")

    def _create_order_ref_definition(self) -> dict:
        try:
            data = self.execute("MetafieldDefinitionCreate", {"definition": {
                "name": "Mirakl order reference", "namespace": ORDER_REF_NAMESPACE, "key": ORDER_REF_KEY,
                "ownerType": "ORDER", "type": ORDER_REF_TYPE,
                "description": "<marketplace>:<Mirakl order id>, set by mirakl-pipelines: one Shopify order per Mirakl order",
                "capabilities": {"uniqueValues": {"enabled": True}},
            }})
        except (ShopifyUserError, ShopifyAmbiguousWrite) as failed:
            # TAKEN: created meanwhile (another run); an unknown outcome: read what is there.
            if isinstance(failed, ShopifyUserError) and "TAKEN" not in failed.codes:
                raise
            existing = self._order_ref_definition()
            if existing is None:
                raise
            return existing
        return data["metafieldDefinitionCreate"]["createdDefinition"]

    def _enable_unique_order_refs(self, where: str) -> None:
        try:
            self.execute("MetafieldDefinitionUpdate", {"definition": {
                "namespace": ORDER_REF_NAMESPACE, "key": ORDER_REF_KEY, "ownerType": "ORDER",
                "capabilities": {"uniqueValues": {"enabled": True}}}})
        except ShopifyUserError as refused:
            raise ShopifySetupError("MetafieldDefinitionUpdate", (
                f"{where} does not have unique values and Shopify refused to turn them on ({refused.message}): "
                "Shopify allows it only while no order carries the field. Delete the definition and its values "
                "(Settings > Custom data > Orders), or remove the field from the orders that carry it, then run "
                "the import again; until then orders cannot be imported exactly once")) from refused

    def order_by_ref(self, order_ref: str) -> Optional[ShopifyOrderRef]:
        """The order whose unique order reference metafield is `order_ref`, read directly (no search index)."""
        return self.orders_by_ref([order_ref]).get(order_ref)

    def orders_by_ref(self, order_refs: Iterable[str]) -> dict[str, ShopifyOrderRef]:
        """Orders by order reference, for many at once: Shopify reads one per `orderByIdentifier`, so each request
        asks for up to ORDER_REF_BATCH_SIZE of them under aliases. Absent references are left out."""
        wanted = list(dict.fromkeys(ref for ref in order_refs if ref))
        found: dict[str, ShopifyOrderRef] = {}
        for start in range(0, len(wanted), ORDER_REF_BATCH_SIZE):
            batch = wanted[start:start + ORDER_REF_BATCH_SIZE]
            variables = {f"identifier{i}": {"customId": {"namespace": ORDER_REF_NAMESPACE, "key": ORDER_REF_KEY,
                                                         "value": ref}}
                         for i, ref in enumerate(batch)}
            data = self.execute("OrderByIdentifier", variables, document=batched_operation("OrderByIdentifier", len(batch)))
            for i, ref in enumerate(batch):
                node = data.get(f"r{i}")
                if node:
                    found[ref] = _order_ref("OrderByIdentifier", node)
        return found

    def create_order(self, order: dict, options: Optional[dict] = None) -> ShopifyOrderRef:
        """orderCreate, at most once per order reference (`order_ref_metafield` in `order["metafields"]`).

        orderCreate is not idempotent. Call `ensure_order_ref_definition` first: the reference is then unique in
        the store and readable at once. When the outcome of a create is unknown (timeout, dropped connection,
        5xx), the order is read back by reference: found → returned (no second create); absent → sent again
        (bounded by max_retries, with backoff). When Shopify refuses the reference as taken (a concurrent run
        created the order), the existing order is returned too. Without a reference an unknown outcome cannot be
        checked and ShopifyAmbiguousWrite is raised. Other userErrors → ShopifyUserError (never retried).
        """
        order_ref = order_ref_of(order)
        variables = {"order": order, "options": options}
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=self.backoff_base, max=BACKOFF_MAX_SECONDS,
                                                  jitter=self.backoff_base),
            retry=tenacity.retry_if_exception_type(_OrderStillAbsent),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        data = self.execute("OrderCreate", variables)
                    except ShopifyAmbiguousWrite as unknown:
                        if not order_ref:
                            raise
                        existing = self._look_up_after(order_ref, unknown)
                        if existing is None:
                            log.warning("orderCreate for %s: outcome unknown, order absent; sending again", order_ref)
                            raise _OrderStillAbsent(unknown) from unknown
                        log.warning("orderCreate for %s: outcome unknown, found %s; not sending again",
                                    order_ref, existing.id)
                        return existing
                    except ShopifyUserError as refused:
                        existing = self._look_up_after(order_ref, refused) if _refuses_metafield(refused) else None
                        if existing is None:
                            raise
                        log.warning("orderCreate for %s: the reference is taken by %s (created by another run); "
                                    "linking it", order_ref, existing.id)
                        return existing
                    created = data["orderCreate"].get("order")
                    if not created:
                        raise ShopifyServerError("OrderCreate", "orderCreate returned neither an order nor userErrors")
                    return _order_ref("OrderCreate", created)
        except _OrderStillAbsent as still_absent:
            raise still_absent.error from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _look_up_after(self, order_ref: Optional[str], failure: ShopifyError) -> Optional[ShopifyOrderRef]:
        if not order_ref:
            return None
        try:
            return self.order_by_ref(order_ref)
        except ShopifyError as lookup_failed:
            raise ShopifyAmbiguousWrite(
                "OrderCreate", f"{failure.message} for {order_ref}, and the look-up failed ({lookup_failed.message}): "
                               "reconcile before resending") from lookup_failed

    # ------------------------------------------------------------------ payment, fulfilment orders, holds, addresses

    def mark_order_paid(self, order_id: str) -> OrderPayment:
        """orderMarkAsPaid: record the order's outstanding amount as paid (Shopify's manual payment), at most once.

        Returns `newly_paid=True` when this call recorded the payment, `newly_paid=False` when Shopify had
        nothing outstanding (it answers "Order cannot be marked as paid." with the order): an order already
        paid is not an error. Resent when its fate is unknown (RESEND_SAFE_MUTATIONS): if the lost attempt
        went through, the resend finds nothing outstanding and the answer is `newly_paid=False`.
        Raises ShopifyUserError for any other refusal (an unknown order; money outstanding but refused),
        ShopifyError subclasses for the rest.
        """
        try:
            data = self.execute("OrderMarkAsPaid", {"input": {"id": order_id}})
        except ShopifyUserError as refused:
            order = (refused.data or {}).get("order")
            if order and _shop_amount("OrderMarkAsPaid", order.get("totalOutstandingSet")) == 0:
                return OrderPayment(order["id"], newly_paid=False, financial_status=order.get("displayFinancialStatus"))
            raise
        order = data["orderMarkAsPaid"].get("order")
        if not order:
            raise ShopifyServerError("OrderMarkAsPaid", "orderMarkAsPaid returned neither an order nor userErrors")
        return OrderPayment(order["id"], newly_paid=True, financial_status=order.get("displayFinancialStatus"))

    def order_fulfilment_state(self, order_id: str) -> OrderFulfilmentState:
        """The order's financial status, outstanding amount and every fulfilment order (ShopifyNotFound if no such order)."""
        pages: list[dict] = []
        nodes = list(self.paginate("OrderFulfilmentOrders", {"id": order_id, "first": FULFILMENT_ORDER_PAGE_SIZE},
                                   ("order", "fulfillmentOrders"), on_page=pages.append))
        order = pages[0].get("order") if pages else None
        if not order:
            raise ShopifyNotFound("OrderFulfilmentOrders", f"no order {order_id}")
        outstanding = order.get("totalOutstandingSet") or {}
        return OrderFulfilmentState(
            order_id=order["id"], financial_status=order.get("displayFinancialStatus"),
            outstanding=_shop_amount("OrderFulfilmentOrders", outstanding),
            currency=(outstanding.get("shopMoney") or {}).get("currencyCode") or "",
            cancelled_at=parse_shopify_time(order.get("cancelledAt")),
            fulfilment_orders=tuple(_fulfilment_order("OrderFulfilmentOrders", node, order["id"]) for node in nodes),
        )

    def fulfilment_orders(self, order_id: str) -> list[FulfilmentOrder]:
        """Every fulfilment order of the order, closed ones included (ShopifyNotFound if no such order)."""
        return list(self.order_fulfilment_state(order_id).fulfilment_orders)

    def fulfilment_order(self, fulfilment_order_id: str) -> FulfilmentOrder:
        """One fulfilment order (ShopifyNotFound if no such fulfilment order)."""
        node = self.execute("FulfilmentOrderById", {"id": fulfilment_order_id}).get("fulfillmentOrder")
        if not node:
            raise ShopifyNotFound("FulfilmentOrderById", f"no fulfilment order {fulfilment_order_id}")
        return _fulfilment_order("FulfilmentOrderById", node)

    def hold_fulfilment_order(self, fulfilment_order_id: str, *, reason: str, notes: Optional[str], handle: str,
                              lines: Optional[dict[str, int]] = None) -> FulfilmentHoldResult:
        """fulfillmentOrderHold: stop a fulfilment order (or `lines`: fulfilment order line id → units) from shipping.

        `reason` is a FulfillmentHoldReason (e.g. "OTHER", "INCORRECT_ADDRESS"). With `lines`, Shopify splits:
        the fulfilment order keeps the held units and goes ON_HOLD, the rest moves to a new OPEN fulfilment
        order (`remaining_fulfilment_order_id`). `handle` (unique per app and fulfilment order, ≤ 64
        characters) makes the call idempotent: when Shopify says a hold with this handle is already there
        (DUPLICATE_FULFILLMENT_HOLD_HANDLE, or FULFILLMENT_ORDER_NOT_SPLITTABLE for `lines` on a fulfilment
        order held since), the existing hold is read back and returned with `already_held=True`; the same
        happens after a resend whose first attempt went through (RESEND_SAFE_MUTATIONS).
        Raises ValueError for a missing handle or empty/non-positive `lines`, ShopifyUserError for any other
        refusal (a closed fulfilment order, quantities above what remains, the 10-hold limit…).
        """
        if not handle or len(handle) > HOLD_HANDLE_MAX_LENGTH:
            raise ValueError(f"a hold needs a handle of 1..{HOLD_HANDLE_MAX_LENGTH} characters: it is what makes a "
                             f"resend harmless; got {handle!r}")
        hold: dict[str, Any] = {"reason": reason, "reasonNotes": notes, "handle": handle, "notifyMerchant": False}
        if lines is not None:
            if not lines or any(quantity <= 0 for quantity in lines.values()):
                raise ValueError(f"hold lines must name fulfilment order lines with positive quantities, got {lines!r}"
                                 " (None holds the whole fulfilment order)")
            hold["fulfillmentOrderLineItems"] = [{"id": line_id, "quantity": q} for line_id, q in lines.items()]
        try:
            data = self.execute("FulfillmentOrderHold", {"id": fulfilment_order_id, "fulfillmentHold": hold})
        except ShopifyUserError as refused:
            if not {"DUPLICATE_FULFILLMENT_HOLD_HANDLE", "FULFILLMENT_ORDER_NOT_SPLITTABLE"} & set(refused.codes):
                raise
            existing = next((h for h in self.fulfilment_order(fulfilment_order_id).holds if h.handle == handle), None)
            if existing is None:
                raise  # held by someone else: line items cannot be held separately now
            return FulfilmentHoldResult(fulfilment_order_id, existing, already_held=True)
        payload = data["fulfillmentOrderHold"]
        try:
            return FulfilmentHoldResult(payload["fulfillmentOrder"]["id"], _fulfilment_hold(payload["fulfillmentHold"]),
                                        (payload.get("remainingFulfillmentOrder") or {}).get("id"))
        except (KeyError, TypeError) as e:
            raise ShopifyError("FulfillmentOrderHold", f"answer without the hold it placed: {e!r}") from e

    def release_fulfilment_hold(self, fulfilment_order_id: str, hold_ids: Iterable[str]) -> FulfilmentOrder:
        """fulfillmentOrderReleaseHold of the named holds; the fulfilment order after it (OPEN again once none is left).

        Ids are required: without them Shopify releases every hold, other apps' too. Releasing holds already
        released is harmless (Shopify ignores ids that are not on the fulfilment order), so it is resent when
        its fate is unknown. Raises ValueError without ids, ShopifyUserError for an unknown fulfilment order.
        """
        hold_ids = list(dict.fromkeys(hold_ids))
        if not hold_ids:
            raise ValueError("name the holds to release: without ids Shopify releases every hold on the fulfilment order")
        data = self.execute("FulfillmentOrderReleaseHold", {"id": fulfilment_order_id, "holdIds": hold_ids})
        node = data["fulfillmentOrderReleaseHold"].get("fulfillmentOrder")
        if not node:
            raise ShopifyServerError("FulfillmentOrderReleaseHold", "answer with neither a fulfilment order nor userErrors")
        return _fulfilment_order("FulfillmentOrderReleaseHold", node)

    def update_order_addresses(self, order_id: str, *, shipping_address: Optional[dict] = None,
                               billing_address: Optional[dict] = None) -> bool:
        """orderUpdate of the shipping address (a MailingAddressInput dict: firstName, lastName, address1, zip,
        city, countryCode, phone in E.164…), e.g. once the marketplace reveals it after the import.

        Returns whether everything given was applied. Shopify cannot change an order's billing address after
        orderCreate (OrderInput has no billingAddress in Admin API 2026-07): a `billing_address` is left out,
        logged, and the answer is False; the shipping address is still set. Nothing to send sends nothing.
        Setting the same address twice leaves the same order, so it is resent when its fate is unknown.
        Raises ShopifyUserError when Shopify refuses the address (e.g. "Enter a last name").
        """
        if shipping_address is not None:
            self.execute("OrderUpdate", {"input": {"id": order_id, "shippingAddress": shipping_address}})
        if billing_address is not None:
            log.warning("order %s: Shopify cannot change an order's billing address after its creation (no "
                        "billingAddress in orderUpdate's OrderInput); the new one is not applied", order_id)
            return False
        return True

    # ------------------------------------------------------------------ variants

    def variants_by_sku(self, skus: Iterable[str]) -> dict[str, Variant]:
        """Variants by exact SKU, looked up in batches of `variant_batch_size` and cached per client.

        Unknown SKUs are absent from the result. A SKU carried by several variants is ambiguous: it is
        absent too, logged, and listed in `self.ambiguous_skus` (sku → variant ids) so the caller can
        queue it for an operator. Blank SKUs are never looked up. The cache (hits and misses) lives as
        long as the client: use a new client per run to see catalogue changes.
        """
        wanted = list(dict.fromkeys(s for s in skus if s and s.strip()))
        missing = [s for s in wanted if s not in self._variants]
        for start in range(0, len(missing), self.variant_batch_size):
            self._load_variants(missing[start:start + self.variant_batch_size])
        return {s: v for s in wanted if (v := self._variants.get(s)) is not None}

    def _load_variants(self, batch: list[str]) -> None:
        in_batch = set(batch)
        found: dict[str, list[Variant]] = defaultdict(list)
        query = " OR ".join(f"sku:{search_value(sku)}" for sku in batch)
        for node in self.paginate("VariantsBySku", {"query": query, "first": len(batch)}, ("productVariants",)):
            if node.get("sku") in in_batch:  # search may match more loosely than equality
                found[node["sku"]].append(_variant(node))
        for sku in batch:
            matches = found.get(sku, [])
            if len(matches) > 1:
                self.ambiguous_skus[sku] = [v.id for v in matches]
                log.warning("SKU %r is carried by %d Shopify variants (%s): not used", sku, len(matches),
                            ", ".join(v.id for v in matches))
            self._variants[sku] = matches[0] if len(matches) == 1 else None


def _refuses_metafield(refused: ShopifyUserError) -> bool:
    """Whether a userError names the order's metafields: with a unique definition, a reference already taken."""
    return any("metafields" in (e.get("field") or ()) for e in refused.user_errors)


def _order_ref(operation: str, node: dict) -> ShopifyOrderRef:
    try:
        created_at = node.get("createdAt")
        return ShopifyOrderRef(
            id=node["id"],
            legacy_id=str(node["legacyResourceId"]),
            name=node["name"],
            source_identifier=node.get("sourceIdentifier"),
            created_at=datetime.fromisoformat(created_at) if created_at else None,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ShopifyError(operation, f"order {node.get('id', '<no id>')} in the answer is malformed: {e!r}") from e


def _fulfilment(order_id: str, node: dict) -> Fulfilment:
    tracking = node.get("trackingInfo") or []
    numbers = tuple(t["number"] for t in tracking if t.get("number"))
    urls = tuple(t["url"] for t in tracking if t.get("url"))
    lines = quantities_by_mirakl_line(((item.get("lineItem") or {}).get("customAttributes"), item["quantity"])
                                      for item in (node.get("fulfillmentLineItems") or {}).get("nodes", []))
    return Fulfilment(
        fulfilment_id=node["id"], created_at=parse_shopify_time(node.get("createdAt")), lines=lines,
        tracking_company=tracking[0].get("company") if tracking else None,
        tracking_number=numbers[0] if numbers else None, tracking_url=urls[0] if urls else None,
        tracking_numbers=numbers, tracking_urls=urls,
        status=node.get("status") or "SUCCESS", order_id=order_id, name=node.get("name"),
        updated_at=parse_shopify_time(node.get("updatedAt")),
    )


def _fulfilment_order(operation: str, node: dict, order_id: Optional[str] = None) -> FulfilmentOrder:
    try:
        line_items = node.get("lineItems") or {}
        if (line_items.get("pageInfo") or {}).get("hasNextPage"):
            raise ShopifyError(operation, f"fulfilment order {node['id']} has more lines than one page: not all read")
        lines = tuple(FulfilmentOrderLine(
            id=item["id"], line_item_id=item["lineItem"]["id"],
            mirakl_line_id=mirakl_line_id(item["lineItem"].get("customAttributes")),
            total_quantity=int(item["totalQuantity"]), remaining_quantity=int(item["remainingQuantity"]),
        ) for item in line_items.get("nodes") or [])
        return FulfilmentOrder(id=node["id"], status=node["status"], line_items=lines,
                               holds=tuple(_fulfilment_hold(h) for h in node.get("fulfillmentHolds") or []),
                               order_id=node.get("orderId") or order_id)
    except (KeyError, TypeError, ValueError) as e:
        raise ShopifyError(operation, f"fulfilment order {node.get('id', '<no id>')} in the answer is malformed: "
                                      f"{e!r}") from e


def _fulfilment_hold(node: dict) -> FulfilmentHold:
    return FulfilmentHold(id=node["id"], handle=node.get("handle"), reason=node["reason"],
                          reason_notes=node.get("reasonNotes"))


def _shop_amount(operation: str, money_bag: Optional[dict]) -> Decimal:
    try:
        return Decimal(str(money_bag["shopMoney"]["amount"]))
    except (KeyError, TypeError, ArithmeticError) as e:
        raise ShopifyError(operation, f"money in the answer is malformed: {money_bag!r}") from e


def _variant(node: dict) -> Variant:
    try:
        inventory_item = node.get("inventoryItem") or {}
        price = node.get("price")
        return Variant(
            id=node["id"],
            sku=node["sku"],
            title=node.get("title"),
            product_title=(node.get("product") or {}).get("title"),
            price=Decimal(str(price)) if price is not None else None,
            available=node.get("inventoryQuantity"),
            tracked=bool(inventory_item.get("tracked", True)),
            inventory_policy=node.get("inventoryPolicy") or "DENY",
            inventory_item_id=inventory_item.get("id"),
        )
    except (KeyError, TypeError, ArithmeticError) as e:
        raise ShopifyError("VariantsBySku", f"variant {node.get('id', '<no id>')} in the answer is malformed: "
                                            f"{e!r}") from e
