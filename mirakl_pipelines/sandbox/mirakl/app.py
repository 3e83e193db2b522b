"""The Mirakl seller API of one simulated marketplace, over HTTP (starlette), plus control routes.

Orders (OR11/OR21/OR23/OR24), documents (OR72/OR74), carriers (SH21), where the marketplace has
the multiple-shipments feature, shipments (ST01/ST11/ST23/ST24, see shipments.py), and offers and stock
(OF21, OF52/OF53/OF54, STO01/STO02/STO03, see offers.py).

API routes (`/api/...`) check, in this order: a request body's framing (a PUT with neither
Content-Length nor Transfer-Encoding gets 411, as real instances answer), the raw-key
`Authorization` header (401), `shop_id`, the operation's call frequency (429 + Retry-After),
then the operation itself.

Error bodies use the classic MMP shape `{"status", "message"}`. Errors of an operation also carry
Mirakl's error code (OR21 lists them; the spec does not say where they appear), both as a
`"code"` field and at the start of the message, so a client reading either finds it.

Control routes (`/_sandbox/...`) need no key and are never fault-injected; `/_sandbox/faults` is
served by FaultMiddleware.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mirakl_pipelines.sandbox.faults import FaultMiddleware
from mirakl_pipelines.sandbox.orders_page import MIRAKL_COLUMNS, orders_page
from mirakl_pipelines.sandbox.mirakl.documents import (
    BAD_METADATA, DocumentRequestError, parse_multipart, parse_order_documents,
)
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSim, MiraklApiError
from mirakl_pipelines.sandbox.mirakl.wire import from_json, iso, parse_datetime, to_json

MAX_UPLOAD_BYTES = 20 * 2**20  # OR74 bodies beyond this are refused whole (413)


def create_mirakl_app(sim: MarketplaceSim):
    """The ASGI app serving `sim`, wrapped in FaultMiddleware(sim.faults)."""
    api = _Api(sim)
    control = _Control(sim)
    routes = [
        Route("/api/orders", api.operation("OR11", api.list_orders), methods=["GET"]),
        Route("/api/orders/{order_id}/accept", api.operation("OR21", api.accept), methods=["PUT"]),
        Route("/api/orders/{order_id}/tracking", api.operation("OR23", api.tracking), methods=["PUT"]),
        Route("/api/orders/{order_id}/ship", api.operation("OR24", api.ship), methods=["PUT"]),
        Route("/api/shipping/carriers", api.operation("SH21", api.carriers), methods=["GET"]),
        Route("/api/orders/documents", api.operation("OR72", api.list_documents), methods=["GET"]),
        Route("/api/orders/{order_id}/documents", api.operation("OR74", api.upload_documents), methods=["POST"]),
        Route("/api/shipments", api.operation("ST01", api.create_shipments), methods=["POST"]),
        Route("/api/shipments", api.operation("ST11", api.list_shipments), methods=["GET"]),
        Route("/api/shipments/tracking", api.operation("ST23", api.shipments_tracking), methods=["POST"]),
        Route("/api/shipments/ship", api.operation("ST24", api.ship_shipments), methods=["PUT"]),
        Route("/_sandbox/orders", control.create_order, methods=["POST"]),
        Route("/_sandbox/orders", control.list_orders, methods=["GET"]),
        Route("/_sandbox/orders.html", lambda request: HTMLResponse(
            orders_page(f"Sandbox Mirakl marketplace {sim.settings.code}: orders", sim.orders(), MIRAKL_COLUMNS)),
            methods=["GET"]),
        Route("/_sandbox/orders/{order_id}", control.get_order, methods=["GET"]),
        Route("/_sandbox/orders/{order_id}/pay", control.event(sim.pay), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/fail_payment", control.event(sim.fail_payment), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/cancel", control.event(sim.cancel), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/documents/{document_id:int}", control.document, methods=["GET"]),
        Route("/_sandbox/settings", control.settings, methods=["GET", "POST"]),
        Route("/_sandbox/clock", control.clock, methods=["GET", "POST"]),
        Route("/_sandbox/stats", control.stats, methods=["GET"]),
    ]
    async def cancel_lines(request: Request) -> Response:
        """Body {"lines": {"<order_line_id>": <units>}, "reason_code": "34"?}: MarketplaceSim.cancel_lines."""
        try:
            body = from_json(await request.body(), "POST cancel_lines")
            if not isinstance(body, dict) or not isinstance(body.get("lines"), dict):
                raise ValueError('cancel_lines: expected {"lines": {"<order_line_id>": <units>}, "reason_code": "34"}')
        except ValueError as e:
            return error_response(400, str(e))
        try:
            return json_response(sim.cancel_lines(request.path_params["order_id"], body["lines"], body.get("reason_code", "34")))
        except KeyError as e:
            return error_response(404, e.args[0])
        except ValueError as e:
            return error_response(409, str(e))

    routes += [  # payment and cancellation events (state.py)
        Route("/_sandbox/orders/{order_id}/cancel_lines", cancel_lines, methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/receive", control.event(sim.receive), methods=["POST"]),
    ]
    routes += _offer_routes(api, sim)
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return FaultMiddleware(app, sim.faults)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(to_json(body), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, code: str | None = None, headers: dict | None = None) -> Response:
    body = {"status": status, "message": f"{code}: {message}" if code else message}
    if code:
        body["code"] = code
    return json_response(body, status, headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    # Unknown paths and wrong methods get the classic JSON body too, not starlette's plain text.
    return error_response(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")


class _Api:
    def __init__(self, sim: MarketplaceSim):
        self.sim = sim

    def operation(self, code: str, handler: Callable[[Request], Awaitable[Response]]):
        sim = self.sim

        async def endpoint(request: Request) -> Response:
            if request.method in {"PUT", "POST"} and not (
                "content-length" in request.headers or "transfer-encoding" in request.headers
            ):
                return error_response(411, "Length Required")
            if request.headers.get("authorization") != sim.settings.api_key:
                return error_response(401, "Unauthorized: send the shop API key, raw, in the Authorization header")
            shop_id = request.query_params.get("shop_id")
            if shop_id is not None:
                if not shop_id.isdigit():
                    return error_response(400, f"Invalid value {shop_id} for the parameter : shop_id (an integer)")
                if sim.settings.shop_id is not None and int(shop_id) != sim.settings.shop_id:
                    return error_response(403, f"Forbidden: this API key has no access to shop {shop_id}")
            # OR11: only a listing's first page counts against "once per minute"; later pages are free.
            counts = code != "OR11" or request.query_params.get("offset", "0") in {"", "0"}
            retry_after = sim.admit(code, counts_for_limit=counts)
            if retry_after is not None:
                return error_response(
                    429, f"Too Many Requests: {code} is limited by its maximum call frequency; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
            try:
                return await handler(request)
            except MiraklApiError as e:
                return error_response(e.status, e.message, e.code)

        return endpoint

    async def list_orders(self, request: Request) -> Response:
        return json_response(self.sim.list_orders(request.query_params))

    async def accept(self, request: Request) -> Response:
        self.sim.accept(request.path_params["order_id"], await _body(request))
        return Response(status_code=204)

    async def tracking(self, request: Request) -> Response:
        self.sim.update_tracking(request.path_params["order_id"], await _body(request))
        return Response(status_code=204)

    async def ship(self, request: Request) -> Response:
        self.sim.ship(request.path_params["order_id"])
        return Response(status_code=204)

    async def carriers(self, request: Request) -> Response:
        return json_response(self.sim.list_carriers())

    async def upload_documents(self, request: Request) -> Response:
        """OR74: multipart `files` + `order_documents` (XML or either JSON form); 200 listing documents in error."""
        order_id = request.path_params["order_id"]
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise MiraklApiError(413, "PAYLOAD_TOO_LARGE", f"The upload exceeds {MAX_UPLOAD_BYTES // 2**20} MB")
        try:
            parts = parse_multipart(request.headers.get("content-type", ""), body)
            metadata = [p for p in parts if p.name == "order_documents"]
            files = [p for p in parts if p.name == "files"]
            if len(metadata) != 1:
                raise DocumentRequestError(BAD_METADATA)
            if not files or any(not p.filename for p in files):
                raise DocumentRequestError("Bad Request: the 'files' part is required, one file part per document")
            entries = parse_order_documents(metadata[0].data.decode("utf-8", "replace"))
        except DocumentRequestError as e:
            raise MiraklApiError(400, "VALIDATION_ERROR", str(e)) from None
        return json_response(self.sim.upload_documents(order_id, entries, {p.filename: p.data for p in files}))

    async def list_documents(self, request: Request) -> Response:
        return json_response(self.sim.list_documents(request.query_params))

    async def create_shipments(self, request: Request) -> Response:
        return json_response(self.sim.shipments.create(await _body(request)), 201)

    async def list_shipments(self, request: Request) -> Response:
        return json_response(self.sim.shipments.list_shipments(request.query_params))

    async def shipments_tracking(self, request: Request) -> Response:
        return json_response(self.sim.shipments.update_tracking(await _body(request)))

    async def ship_shipments(self, request: Request) -> Response:
        return json_response(self.sim.shipments.ship(await _body(request)))


async def _body(request: Request):
    try:
        return from_json(await request.body(), f"{request.method} {request.url.path}")
    except ValueError as e:
        raise MiraklApiError(400, "VALIDATION_ERROR", str(e)) from None


class _Control:
    """Operator-side events and inspection for tests, the demo and the scenario driver."""

    def __init__(self, sim: MarketplaceSim):
        self.sim = sim

    async def create_order(self, request: Request) -> Response:
        """Body: build_order's keyword arguments as JSON (order_id and created optional), plus `never_pay`."""
        try:
            kwargs = from_json(await request.body(), "POST /_sandbox/orders")
            if not isinstance(kwargs, dict):
                raise ValueError("POST /_sandbox/orders: the body must be a JSON object of build_order arguments")
            never_pay = bool(kwargs.pop("never_pay", False))
            if not kwargs.get("order_id"):
                kwargs["order_id"] = self.sim.new_order_id()
            created = kwargs.get("created")
            kwargs["created"] = parse_datetime(created, "created") if created else self.sim.now()
            for name in ("shipping_price", "tax_rate", "commission_rate"):
                if isinstance(kwargs.get(name), str):
                    kwargs[name] = Decimal(kwargs[name])
            order = self.sim.add_order(build_order(**kwargs), never_pay=never_pay)
        except TypeError as e:  # an unknown keyword argument
            return error_response(400, f"POST /_sandbox/orders: {e}")
        except (ValueError, ArithmeticError) as e:
            return error_response(400, str(e))
        return json_response(order, 201)

    async def list_orders(self, request: Request) -> Response:
        return json_response({"orders": self.sim.orders()})

    async def get_order(self, request: Request) -> Response:
        """The full order, plus `documents` (OR74 uploads, metadata only) and `shipments` (ST01)."""
        order_id = request.path_params["order_id"]
        try:
            return json_response({**self.sim.get_order(order_id), "documents": self.sim.documents(order_id),
                                  "shipments": self.sim.shipments.of_order(order_id)})
        except KeyError as e:
            return error_response(404, e.args[0])

    async def document(self, request: Request) -> Response:
        """The bytes of one uploaded document, as they arrived."""
        try:
            meta, content = self.sim.document_content(request.path_params["order_id"], request.path_params["document_id"])
        except KeyError as e:
            return error_response(404, e.args[0])
        return Response(content, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{meta["file_name"]}"'})

    async def settings(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                knobs = from_json(await request.body(), "POST /_sandbox/settings")
                if not isinstance(knobs, dict):
                    raise ValueError('POST /_sandbox/settings: expected a JSON object such as {"reject_shipments": true}')
                return json_response(self.sim.apply_settings(**knobs))
            except ValueError as e:
                return error_response(400, str(e))
        return json_response(self.sim.runtime_settings())

    def event(self, action: Callable[[str], dict]):
        async def endpoint(request: Request) -> Response:
            try:
                return json_response(action(request.path_params["order_id"]))
            except KeyError as e:
                return error_response(404, e.args[0])
            except ValueError as e:
                return error_response(409, str(e))

        return endpoint

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = from_json(await request.body(), "POST /_sandbox/clock")
                seconds = body.get("advance_seconds") if isinstance(body, dict) else None
                if isinstance(seconds, bool) or not isinstance(seconds, (int, Decimal)) or seconds < 0:
                    raise ValueError(f'POST /_sandbox/clock: expected {{"advance_seconds": <number >= 0>}} (got {body!r})')
                self.sim.advance(timedelta(seconds=float(seconds)))
            except ValueError as e:
                return error_response(400, str(e))
        return json_response({"now": iso(self.sim.now())})

    async def stats(self, request: Request) -> Response:
        states: dict[str, int] = {}
        for order in self.sim.orders():
            states[order["order_state"]] = states.get(order["order_state"], 0) + 1
        return json_response({
            "calls": dict(self.sim.calls),
            "rejected_429": dict(self.sim.rejected),
            "orders_by_state": states,
            "offers": self.sim.offers.stats(),
            "now": iso(self.sim.now()),
        })


def _offer_routes(api: _Api, sim: MarketplaceSim) -> list[Route]:
    """Offers and stock (offers.py): OF21, OF52/OF53/OF54, STO01/STO02/STO03, and `/_sandbox/offers`."""
    book = sim.offers

    async def list_offers(request: Request) -> Response:
        return json_response(book.list_offers(request.query_params))

    async def start_export(request: Request) -> Response:
        return json_response(book.start_export(await _body(request)))

    async def export_status(request: Request) -> Response:
        return json_response(book.export_status(request.path_params["tracking_id"], str(request.base_url)))

    async def export_file(request: Request) -> Response:
        content, media_type = book.export_file(request.path_params["tracking_id"], request.query_params.get("file"))
        return Response(content, media_type=media_type)

    async def import_stock(request: Request) -> Response:
        """STO01: multipart `file` (CSV); 201, Location = the import's STO02 URL, {"import_id": "<string>"}."""
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise MiraklApiError(413, "PAYLOAD_TOO_LARGE", f"The upload exceeds {MAX_UPLOAD_BYTES // 2**20} MB")
        try:
            files = [p for p in parse_multipart(request.headers.get("content-type", ""), body) if p.name == "file"]
        except DocumentRequestError as e:
            raise MiraklApiError(400, "VALIDATION_ERROR", str(e)) from None
        if len(files) != 1:
            raise MiraklApiError(400, "VALIDATION_ERROR", "Bad Request: problem with form param 'file' (one CSV file part)")
        created = book.start_import(files[0].data)
        location = f"{str(request.base_url).rstrip('/')}/api/offers/stock/imports/{created['import_id']}/status"
        return json_response(created, 201, headers={"Location": location})

    async def import_status(request: Request) -> Response:
        return json_response(book.import_status(request.path_params["import_id"]))

    async def error_report(request: Request) -> Response:
        return Response(book.error_report(request.path_params["import_id"]), media_type="text/csv; charset=utf-8")

    async def control_offers(request: Request) -> Response:
        """GET: every offer (internal view). POST {"offers": [{"sku", "price"?, "quantity"?, …}]}: add or update."""
        if request.method == "POST":
            try:
                body = from_json(await request.body(), "POST /_sandbox/offers")
                entries = body.get("offers") if isinstance(body, dict) else None
                if not isinstance(entries, list):
                    raise ValueError('POST /_sandbox/offers: expected {"offers": [{"sku": ..., "price": ..., "quantity": ...}]}')
                return json_response({"offers": book.seed(entries)}, 201)
            except ValueError as e:
                return error_response(400, str(e))
        return json_response({"offers": book.offers()})

    return [
        Route("/api/offers", api.operation("OF21", list_offers), methods=["GET"]),
        Route("/api/offers/export/async", api.operation("OF52", start_export), methods=["POST"]),
        Route("/api/offers/export/async/status/{tracking_id}", api.operation("OF53", export_status), methods=["GET"]),
        Route("/api/offers/export/async/file/{tracking_id}", api.operation("OF54", export_file), methods=["GET"]),
        Route("/api/offers/stock/imports", api.operation("STO01", import_stock), methods=["POST"]),
        Route("/api/offers/stock/imports/{import_id}/status", api.operation("STO02", import_status), methods=["GET"]),
        Route("/api/offers/stock/imports/{import_id}/error_report", api.operation("STO03", error_report), methods=["GET"]),
        Route("/_sandbox/offers", control_offers, methods=["GET", "POST"]),
    ]

