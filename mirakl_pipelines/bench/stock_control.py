"""What the stock benchmarks need inside the sandbox process: a large catalogue seeded in place, and a control
app to change inventory and read the marketplaces' stock imports with their timings.

- `seed_stock_catalogue(sandbox, skus)`: `skus` variants (BENCH-000000 …, ten per product), each stocked at every
  location of the store (the demo's three), and an offer per SKU on the given marketplaces. Built as one dict in
  this process (seconds), never as 100,000 HTTP calls.
- `serve_stock_control(sandbox)`: a small app next to the simulators (no auth: loopback, benchmark only):
    GET  /locations                       the store's locations (id, legacy id, name, active)
    POST /inventory/adjust                {"changes": [{"sku", "location", "delta"}]} through the store's inventory
                                          code path (webhooks included); {"at": epoch seconds after the last change}
    POST /floor/step                      one shop-floor event (demo.ShopFloor): the event, its epoch time and the
                                          SKU's `available` per location before and after
    GET  /stock_imports/{code}?lines=1    the marketplace's STO01 imports: id, epoch sent, epoch done (sent +
                                          the sandbox's WAITING + RUNNING delays: from then its quantities are what
                                          any read sees), status, line count, and with lines=1 each line's SKU/quantity
    GET  /offer_skus/{code}               the SKUs the marketplace has offers for
"""

import random
import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mirakl_pipelines.sandbox.server import RunningServer, serve_in_thread
from mirakl_pipelines.sandbox.shopify.shop_floor import ShopFloor

BENCH_SKU = "BENCH-{:06d}"
VARIANTS_PER_PRODUCT = 10
STALE_OFFER_QUANTITY = 10  # what Mirakl believes before the first push (as in the demo)


def bench_sku(index: int) -> str:
    return BENCH_SKU.format(index)


def seed_stock_catalogue(sandbox, skus: int, marketplaces: list[str], seed: int = 7) -> None:
    """`skus` variants × every store location (0–50 units each, deterministic for `seed`), and their offers."""
    store = sandbox.store
    locations = [loc["name"] for loc in store.locations.values()]
    rng = random.Random(f"{seed}|stock-bench")
    products = [{"title": f"Bench product {p:05d}", "vendor": "Bench", "variants": [
        {"sku": bench_sku(i), "title": f"V{i % VARIANTS_PER_PRODUCT}", "price": "10.00",
         "stock": {name: rng.randint(0, 50) for name in locations}}
        for i in range(p * VARIANTS_PER_PRODUCT, min((p + 1) * VARIANTS_PER_PRODUCT, skus))]}
        for p in range((skus + VARIANTS_PER_PRODUCT - 1) // VARIANTS_PER_PRODUCT)]
    store.seed_catalogue({"products": products})
    entries = [{"sku": bench_sku(i), "price": "10.00", "quantity": STALE_OFFER_QUANTITY} for i in range(skus)]
    for code in marketplaces:
        sandbox.sims[code].offers.seed(entries)


def _available(store, sku: str) -> dict[str, int]:
    """`available` of `sku` per location name, where it is stocked."""
    with store.lock:
        item_id = store.variant_by_sku_record(sku)["inventoryItem"]["id"]
        return {store.locations[loc]["name"]: level["quantities"]["available"]
                for loc, level in store.levels[item_id].items()}


def _imports(sim, with_lines: bool) -> list[dict]:
    book = sim.offers
    book.tick()
    settings = sim.settings
    out = []
    with sim._lock:
        for stock_import in book._imports.values():
            done = stock_import.created + settings.stock_import_waiting + settings.stock_import_running
            row = {"import_id": stock_import.import_id, "sent": stock_import.created.timestamp(),
                   "done": done.timestamp(), "status": stock_import.status, "lines": len(stock_import.lines)}
            if with_lines:
                column = {name: stock_import.header.index(name) for name in ("offer-sku", "quantity")
                          if name in stock_import.header}
                row["stock"] = [[values[column["offer-sku"]], values[column["quantity"]]]
                                for _, values in stock_import.lines if len(values) > max(column.values(), default=0)]
            out.append(row)
    return out


def stock_control_app(sandbox, seed: int = 7) -> Starlette:
    store = sandbox.store
    floor = ShopFloor(store, seed=seed)
    floor_lock = threading.Lock()

    async def locations(request: Request) -> JSONResponse:
        with store.lock:
            return JSONResponse([{"id": loc["id"], "legacy_id": loc["legacyResourceId"], "name": loc["name"],
                                  "active": loc["isActive"]} for loc in store.locations.values()])

    async def adjust(request: Request) -> JSONResponse:
        body = await request.json()
        for change in body["changes"]:
            store.adjust_inventory(change["sku"], change["location"], int(change["delta"]), reason="correction")
        return JSONResponse({"at": time.time(), "changes": len(body["changes"])})

    def step() -> dict:
        with floor_lock:
            number = len(floor.events)
            # The floor draws its SKU itself: read every tracked SKU's levels first (a few dozen in the demo catalogue).
            before = {sku: _available(store, sku) for sku in floor._skus()}
            event = floor.step()
            at = time.time()
            if event is None:
                return {"event": None}
            return {"event": {"kind": event.kind, "sku": event.sku, "location": event.location, "delta": event.delta,
                              "number": number},
                    "at": at, "before": before[event.sku], "after": _available(store, event.sku)}

    async def floor_step(request: Request) -> JSONResponse:
        return JSONResponse(step())

    async def stock_imports(request: Request) -> JSONResponse:
        code = request.path_params["code"]
        return JSONResponse(_imports(sandbox.sims[code], request.query_params.get("lines") == "1"))

    async def offer_skus(request: Request) -> JSONResponse:
        return JSONResponse(sorted(sandbox.sims[request.path_params["code"]].offers.quantities()))

    return Starlette(routes=[
        Route("/locations", locations, methods=["GET"]),
        Route("/inventory/adjust", adjust, methods=["POST"]),
        Route("/floor/step", floor_step, methods=["POST"]),
        Route("/stock_imports/{code}", stock_imports, methods=["GET"]),
        Route("/offer_skus/{code}", offer_skus, methods=["GET"]),
    ])


def serve_stock_control(sandbox, seed: int = 7) -> RunningServer:
    return serve_in_thread(stock_control_app(sandbox, seed), name="stock-control")
