"""The Shopify store sandbox as an ASGI app: Admin GraphQL on the real path, plus control routes.

    POST /admin/api/{version}/graphql.json   X-Shopify-Access-Token required
    GET  /_sandbox/orders                     every order, internal view (no auth, no faults)
    GET  /_sandbox/orders.html                the same as a table for a browser (newest first)
    GET  /_sandbox/stats                      calls per root field, points spent, bucket, document cache
    GET|POST /_sandbox/settings               e.g. {"plan": "plus"}, {"restore_rate": 1000} or {"search_index_lag_seconds": 5};
                                              bulk operations: {"bulk_operation_seconds": 30},
                                              {"bulk_operation_failure": "TIMEOUT"}, {"bulk_changes_while_running": 5}
    GET|POST /_sandbox/webhooks               delivery faults, e.g. {"duplicate_rate": 0.2, "reorder": true,
                                              "late_redelivery_seconds": 5, "drop": true}; subscriptions and stats
    POST /_sandbox/webhooks/subscriptions     {"url", "secret", "topics": ["fulfillments/create", …], "name"?}
    GET  /_sandbox/invoices/{order name}.pdf  a PDF invoice for the order ("1001" or "%231001")
    GET  /_sandbox/bulk/{number}.jsonl        a completed bulk operation's result (its `url`), streamed
    GET|POST /_sandbox/faults                 handled by FaultMiddleware
"""

import json
import re
from decimal import Decimal

from graphql import GraphQLSchema, execute
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mirakl_pipelines.sandbox.faults import FaultMiddleware
from mirakl_pipelines.sandbox.orders_page import SHOPIFY_COLUMNS, orders_page
from mirakl_pipelines.sandbox.shopify.cost import MAX_QUERY_COST, actual_cost, fragments_of, requested_cost
from mirakl_pipelines.sandbox.shopify.documents import (
    DocumentCache,
    check_variables,
    floats_for_float_inputs,
    select_operation,
)
from mirakl_pipelines.sandbox.shopify.invoices import invoice_pdf
from mirakl_pipelines.sandbox.shopify.resolvers import RequestContext, ShopifyRoot, field_resolver
from mirakl_pipelines.sandbox.shopify.schema import shopify_schema
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

INVALID_TOKEN_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
_API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")

_document_caches: dict[int, DocumentCache] = {}


def document_cache(schema: GraphQLSchema) -> DocumentCache:
    """One cache per schema, shared by every store in the process (tests and benchmarks start many)."""
    return _document_caches.setdefault(id(schema), DocumentCache(schema))


def create_shopify_app(store: ShopifyStore):
    schema = shopify_schema()
    documents = document_cache(schema)

    async def graphql_endpoint(request: Request) -> Response:
        if request.headers.get("x-shopify-access-token") != store.settings.access_token:
            return JSONResponse(INVALID_TOKEN_BODY, status_code=401)
        version = request.path_params["version"]
        if not _API_VERSION.match(version):
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        try:
            body = json.loads(await request.body(), parse_float=Decimal)  # money stays exact
            query = body["query"]
            if not isinstance(query, str) or not isinstance(body.get("variables") or {}, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        return _json(*run_graphql(store, schema, documents, query, body.get("variables") or {},
                                  body.get("operationName"), version, base_url=str(request.base_url)))

    async def orders_view(request: Request) -> Response:
        return _json(store.orders())

    async def stats_view(request: Request) -> Response:
        return _json({**store.stats(), "document_cache": {"hits": documents.hits, "misses": documents.misses}})

    async def settings_view(request: Request) -> Response:
        if request.method == "POST":
            try:
                return _json(store.apply_settings(**json.loads(await request.body() or b"{}")))
            except (ValueError, TypeError) as e:
                return _json({"status": 400, "message": str(e)}, 400)
        return _json(store.settings_dict())

    def webhooks_state() -> dict:
        return {"faults": store.webhook_faults.as_dict(), "subscriptions": store.webhooks.subscriptions(),
                "stats": store.webhooks.stats()}

    async def webhooks_view(request: Request) -> Response:
        if request.method == "POST":
            try:
                store.webhook_faults.update(**json.loads(await request.body() or b"{}"))
            except (ValueError, TypeError) as e:
                return _json({"status": 400, "message": str(e)}, 400)
        return _json(webhooks_state())

    async def subscriptions_view(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            subscription = store.subscribe(body["url"], body["secret"], body["topics"], body.get("name"))
        except KeyError as e:
            return _json({"status": 400, "message": f"missing field {e.args[0]!r} (url, secret and topics are required)"}, 400)
        except (ValueError, TypeError) as e:
            return _json({"status": 400, "message": str(e)}, 400)
        return _json(subscription.public(), 201)

    async def invoice_view(request: Request) -> Response:
        name = request.path_params["order_name"]
        with store.lock:
            order = store.order_record_by_name(name)
            pdf = invoice_pdf(order, store.settings.shop_domain.split(".")[0]) if order else None
        if pdf is None:
            return _json({"errors": f"no order named {name!r} in the sandbox store"}, 404)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="invoice-{name.lstrip("#")}.pdf"'})

    async def bulk_result_view(request: Request) -> Response:
        # No access token: like Shopify's signed storage URLs, the address itself is the credential.
        with store.lock:
            store.bulk.advance(schema)
            path = store.bulk.result_file(request.path_params["number"])
        if path is None or not path.exists():
            return _json({"errors": "Not Found"}, 404)
        return FileResponse(path, media_type="application/jsonl")

    app = Starlette(routes=[
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/_sandbox/orders", orders_view, methods=["GET"]),
        Route("/_sandbox/orders.html", lambda request: HTMLResponse(
            orders_page("Sandbox Shopify store: orders", store.orders(), SHOPIFY_COLUMNS)), methods=["GET"]),
        Route("/_sandbox/stats", stats_view, methods=["GET"]),
        Route("/_sandbox/settings", settings_view, methods=["GET", "POST"]),
        Route("/_sandbox/webhooks", webhooks_view, methods=["GET", "POST"]),
        Route("/_sandbox/webhooks/subscriptions", subscriptions_view, methods=["POST"]),
        Route("/_sandbox/invoices/{order_name}.pdf", invoice_view, methods=["GET"]),
        Route("/_sandbox/bulk/{number}.jsonl", bulk_result_view, methods=["GET"]),
    ])
    return FaultMiddleware(
        app, store.faults, error_body=b'{"errors":"Service Unavailable"}',
        throttle_body=b'{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}',
    )


def run_graphql(store: ShopifyStore, schema: GraphQLSchema, documents: DocumentCache, query: str, variables: dict,
                operation_name: str | None, api_version: str, base_url: str = "") -> tuple[dict, int]:
    """(response body, HTTP status) for one GraphQL request, metered by the store's cost bucket."""
    with store.lock:
        store.requests += 1  # HTTP requests, as a client counts them; `calls` counts root fields (aliases included)
    prepared = documents.prepare(query)
    if prepared.errors:
        return _with_cost(store, {"errors": list(prepared.errors)}, 0, 0), 200
    operation = select_operation(prepared.document, operation_name)
    if isinstance(operation, dict):
        return _with_cost(store, {"errors": [operation]}, 0, 0), 200
    variable_errors = check_variables(schema, operation, variables)
    if variable_errors:
        return _with_cost(store, {"errors": variable_errors}, 0, 0), 200
    variables = floats_for_float_inputs(schema, operation, variables)
    fragments = fragments_of(prepared.document)
    requested = requested_cost(schema, operation, fragments, variables)
    if requested > MAX_QUERY_COST:
        return _with_cost(store, {"errors": [_max_cost_error(requested)]}, requested, None), 200
    if not store.bucket.try_take(requested):
        with store.lock:
            store.throttled += 1
        throttled = {"errors": [{"message": "Throttled",
                                 "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC}}]}
        return _with_cost(store, throttled, requested, None), store.settings.throttle_http_status
    context = RequestContext(store=store, api_version=api_version, base_url=base_url)
    with store.lock:
        result = execute(schema, prepared.document, root_value=ShopifyRoot(context), context_value=context,
                         variable_values=variables, operation_name=operation_name, field_resolver=field_resolver)
    spent = min(requested, actual_cost(schema, operation, fragments, variables, result.data))
    store.bucket.give_back(requested - spent)
    store.charge(spent)
    response: dict = {}
    if result.errors:
        response["errors"] = [error.formatted for error in result.errors]
    response["data"] = result.data
    return _with_cost(store, response, requested, spent), 200


def _with_cost(store: ShopifyStore, response: dict, requested: int, actual: int | None) -> dict:
    response["extensions"] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                       "throttleStatus": store.bucket.status()}}
    return response


def _max_cost_error(cost: int) -> dict:
    return {
        "message": (f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
                    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
                    "cost of a query is calculated.\n\n"
                    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
                    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"),
        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST},
    }


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)  # echoed variables only
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=_json_default, ensure_ascii=False), status_code=status,
                    media_type="application/json")
