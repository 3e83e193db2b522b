"""Webhook receiver throughput: signed deliveries per second, response times, none lost, none stored twice.

The receiver is the real command (`mirakl-pipelines webhooks`, uvicorn, one process) on a SQLite ledger in
the work directory. A separate client process builds N real `fulfillments/create` bodies (orders and
fulfilments made by the sandbox store and its warehouse, serialised and signed as the sandbox store sends
them) and posts them with a fixed number in flight, plus a share sent again with the same webhook id right
after the original (Shopify's at-least-once delivery), so a redelivery can race its original. Afterwards
the inbox must hold exactly the N webhook ids.

    python -m mirakl_pipelines.bench.webhook_throughput spec.json result.json   (the client process)
"""

import asyncio
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import yaml

from mirakl_pipelines.bench.harness import (
    BenchError,
    catalogue_lines,
    child_env,
    inbox_entries,
    process_cpu_seconds,
    stop_process_group,
)
from mirakl_pipelines.bench.latency import percentile
from mirakl_pipelines.bench.report import BenchResult, Figure
from mirakl_pipelines.config import DEFAULT_CONFIG_PATH
from mirakl_pipelines.sandbox.server import free_port
from mirakl_pipelines.webhooks.app import HEALTH_PATH, WEBHOOK_PATH

TITLE = "Webhook receiver throughput"
SECRET_ENV = "BENCH_SHOPIFY_WEBHOOK_SECRET"  # the store's webhook_secret_env in the benchmark's config
TOPIC = "fulfillments/create"


# --- the client process ---------------------------------------------------------------------------

def _fulfilment_bodies(count: int, seed: int) -> tuple[list[bytes], str, str]:
    """`count` fulfillments/create bodies of as many sandbox orders (one parcel each); the shop domain and API version."""
    from mirakl_pipelines.demo import CATALOGUE
    from mirakl_pipelines.sandbox.shopify.order_create import order_create
    from mirakl_pipelines.sandbox.shopify.rest_payloads import fulfillment_payload
    from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
    from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
    from mirakl_pipelines.sandbox.shopify.webhooks import delivery_body

    store = ShopifyStore.from_catalogue_file(CATALOGUE)
    version = store.settings.api_version
    variants = [store.variant_by_sku(line["sku"])["id"] for line in catalogue_lines()]
    for n in range(count):
        lines = [{"variantId": variants[(n + k) % len(variants)], "quantity": 1 + (n + k) % 2} for k in range(1 + n % 3)]
        made = order_create(store, {"sourceIdentifier": f"decathlon_fr:BENCH-{n:06d}-A", "lineItems": lines},
                            {"inventoryBehaviour": "BYPASS"}, version)
        if made["userErrors"]:
            raise BenchError(f"the sandbox store refused bench order {n}: {made['userErrors']}")
    warehouse = Warehouse(store, seed=seed, delay_seconds=0, partial_share=0, unknown_carrier_share=0)
    shipments = warehouse.step(datetime.now(timezone.utc) + timedelta(seconds=1))
    if len(shipments) != count:
        raise BenchError(f"the sandbox warehouse fulfilled {len(shipments)} of {count} orders: {warehouse.stats()}")
    bodies = [delivery_body(fulfillment_payload(store, store.fulfillments[s.fulfillment_id])) for s in shipments]
    return bodies, store.settings.shop_domain, version


def _headers(body: bytes, secret: str, shop: str, version: str) -> dict[str, str]:
    """The headers the sandbox store sends, each delivery a webhook id of its own."""
    from mirakl_pipelines.sandbox.shopify.webhooks import delivery_headers, triggered_at_now

    return delivery_headers(TOPIC, body, secret, shop_domain=shop, api_version=version, webhook_id=str(uuid.uuid4()),
                            event_id=str(uuid.uuid4()), triggered_at=triggered_at_now())


def with_redeliveries(originals: list, share: float, seed: int) -> tuple[list, int]:
    """`originals` with round(share × n) of them sent a second time right after the first (racing it); and that number."""
    rng = random.Random(seed)
    again = set(rng.sample(range(len(originals)), round(share * len(originals))))
    requests = []
    for n, request in enumerate(originals):
        requests.append(request)
        if n in again:
            requests.append(request)
    return requests, len(again)


async def _send(url: str, requests: list[tuple[bytes, dict]], concurrency: int) -> tuple[list[dict], float]:
    """Post every request with `concurrency` in flight; per request: status, the receiver's outcome, seconds."""
    pending = iter(requests)
    results: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker() -> None:
            for body, headers in pending:  # one shared iterator: each request goes once
                began = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    status = response.status_code
                    outcome = response.json().get("status") if status == 200 else response.text[:200]
                except httpx.HTTPError as error:
                    status, outcome = None, f"{type(error).__name__}: {error}"
                results.append({"status": status, "outcome": outcome, "seconds": time.perf_counter() - began})

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results, time.perf_counter() - began


def run_client(spec: dict, secret: str) -> dict:
    prepared = time.perf_counter()
    bodies, shop, version = _fulfilment_bodies(spec["deliveries"], spec["seed"])
    originals = [(body, _headers(body, secret, shop, version)) for body in bodies]
    requests, redelivered = with_redeliveries(originals, spec["duplicate_share"], spec["seed"])
    prepare_seconds = time.perf_counter() - prepared
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    results, wall = asyncio.run(_send(spec["url"], requests, spec["concurrency"]))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "webhook_ids": [headers["X-Shopify-Webhook-Id"] for _, headers in originals],
        "redelivered": redelivered,
        "sent": len(requests),
        "wall_seconds": wall,
        "prepare_seconds": prepare_seconds,
        "cpu_seconds": cpu_after.ru_utime + cpu_after.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "body_bytes_median": sorted(len(b) for b in bodies)[len(bodies) // 2],
        "seconds": [r["seconds"] for r in results],
        "statuses": dict(Counter(str(r["status"]) for r in results)),
        "outcomes": dict(Counter(r["outcome"] for r in results if r["status"] == 200)),
        "errors": [r["outcome"] for r in results if r["status"] != 200][:5],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    result = run_client(spec, os.environ[SECRET_ENV])  # the secret comes by the environment, never a file
    Path(argv[1]).write_text(json.dumps(result))
    return 0


# --- the benchmark --------------------------------------------------------------------------------

def _write_config(workdir: Path) -> tuple[Path, str]:
    """The project's configuration, with the ledger in `workdir` and the store's secret in SECRET_ENV; the ledger URL."""
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    ledger_url = f"sqlite:///{workdir / 'ledger.sqlite'}"
    data["ledger_default_url"] = ledger_url
    data["shopify_stores"] = [{**data["shopify_stores"][0], "webhook_secret_env": SECRET_ENV}]
    path = workdir / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, ledger_url


def _wait_healthy(process: subprocess.Popen, base: str, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + HEALTH_PATH, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the webhook receiver did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def bench_webhooks(workdir: Path, deliveries: int = 5_000, concurrency: int = 16, duplicate_share: float = 0.05,
                   seed: int = 7) -> BenchResult:
    began = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    config, ledger_url = _write_config(workdir)
    env = child_env({SECRET_ENV: secrets.token_hex(16)})
    port = free_port()
    log_path = workdir / "receiver.log"
    log = open(log_path, "w")
    receiver = subprocess.Popen(
        [sys.executable, "-m", "mirakl_pipelines.cli", "webhooks", "--config", str(config), "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(receiver, base, log_path)
        spec_path, result_path = workdir / "client_spec.json", workdir / "client_result.json"
        spec_path.write_text(json.dumps({"url": base + WEBHOOK_PATH, "deliveries": deliveries, "concurrency": concurrency,
                                         "duplicate_share": duplicate_share, "seed": seed}))
        cpu_before = process_cpu_seconds(receiver.pid)
        done = subprocess.run([sys.executable, "-m", "mirakl_pipelines.bench.webhook_throughput", str(spec_path),
                               str(result_path)], env=env, capture_output=True, text=True, timeout=1800)
        receiver_cpu = process_cpu_seconds(receiver.pid) - cpu_before  # includes the idle wait while the client prepares
        if done.returncode != 0 or not result_path.exists():
            raise BenchError(f"the webhook client exited with {done.returncode}: {done.stderr[-4000:]}")
        if receiver.poll() is not None:
            raise BenchError(f"the webhook receiver exited with {receiver.returncode}: {log_path.read_text()[-3000:]}")
    finally:
        stop_process_group(receiver)
        log.close()
    result = json.loads(result_path.read_text())
    stored = [entry.webhook_id for entry in inbox_entries(ledger_url)]

    sent_ids = set(result["webhook_ids"])
    lost, unknown = sent_ids - set(stored), set(stored) - sent_ids
    non_200 = result["sent"] - result["statuses"].get("200", 0)
    answered_duplicate = result["outcomes"].get("duplicate", 0)
    seconds = result["seconds"]
    errors = f"; first errors: {result['errors']}" if result["errors"] else ""
    bench = f"8 webhooks, {deliveries:,} deliveries"
    figures = [
        Figure(bench, f"deliveries per second ({concurrency} in flight)", result["sent"] / result["wall_seconds"],
               "deliveries/s", precision=0),
        Figure(bench, "response time p50", percentile(seconds, 0.50) * 1000, "ms", precision=1),
        Figure(bench, "response time p99", percentile(seconds, 0.99) * 1000, "ms", precision=1),
        Figure(bench, "non-200 responses", non_200, "", "0", non_200 == 0, 0),
        Figure(bench, "inbox rows afterwards", len(stored), "", f"= {deliveries:,} ids sent",
               len(stored) == deliveries and not lost and not unknown, 0),
        Figure(bench, "redeliveries answered duplicate", answered_duplicate, "", f"= {result['redelivered']} resent",
               answered_duplicate == result["redelivered"], 0),
    ]
    notes = [
        f"`mirakl-pipelines webhooks` (uvicorn, one process) on a SQLite ledger; a separate client process posts "
        f"{deliveries:,} signed `{TOPIC}` deliveries (bodies of real sandbox fulfilments, median {result['body_bytes_median']:,} "
        f"bytes, headers and signature as the sandbox store sends them, each its own X-Shopify-Webhook-Id) plus "
        f"{result['redelivered']} redeliveries ({duplicate_share:.0%}, same webhook id, sent right after the original so "
        f"the two can race), {concurrency} in flight over keep-alive connections (httpx, asyncio).",
        f"{result['sent']:,} requests in {result['wall_seconds']:.2f} s; statuses {result['statuses']}; outcomes "
        f"{result['outcomes']}{errors}. Response times are measured by the client around each POST (its own event "
        f"loop included), max {max(seconds, default=math.nan) * 1000:.0f} ms.",
        f"inbox afterwards: {len(stored):,} rows, {len(set(stored)):,} distinct webhook ids; {len(lost)} sent id(s) missing, "
        f"{len(unknown)} stored id(s) never sent. The receiver process used {receiver_cpu:.1f} s of CPU "
        f"({receiver_cpu / max(result['sent'], 1) * 1000:.2f} ms a request; it also logs one JSON line per delivery), "
        f"the client {result['cpu_seconds']:.1f} s while sending: on a 2-core machine the two share the cores. "
        f"Preparing the bodies in the client took {result['prepare_seconds']:.1f} s, not timed.",
    ]
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
