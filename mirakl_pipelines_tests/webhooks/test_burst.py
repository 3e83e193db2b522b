"""A burst of 1,000 deliveries (plus redeliveries racing their originals) loses none and stores each once."""

import asyncio
import random
import time

import httpx

from mirakl_pipelines_tests.webhooks.deliveries import encode, fulfilment_payload, headers

DELIVERIES = 1_000
REDELIVERIES = 100
CONCURRENCY = 10  # bounded like Shopify's parallel deliveries; a redelivery still races its original


async def _send_all(url: str, requests: list[tuple[bytes, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def send(body, hdrs):
            async with gate:
                return await client.post(url, content=body, headers=hdrs)

        return await asyncio.gather(*(send(body, hdrs) for body, hdrs in requests))


def test_a_burst_of_deliveries_with_interleaved_duplicates_loses_none(receiver):
    rng = random.Random(3)
    originals = []
    for n in range(DELIVERIES):
        body = encode(fulfilment_payload(fulfillment_id=10_000 + n, order_id=900_000 + n))
        originals.append((body, headers(body, topic=rng.choice(["fulfillments/create", "fulfillments/update"]),
                                        webhook_id=f"burst-{n}")))
    # Each redelivery lands right next to its original, so the two race for the same webhook id.
    requests = list(originals)
    for n in sorted(rng.sample(range(DELIVERIES), REDELIVERIES), reverse=True):
        requests.insert(n + 1, originals[n])

    started = time.perf_counter()
    responses = asyncio.run(_send_all(receiver.url, requests))
    elapsed = time.perf_counter() - started

    assert [r.status_code for r in responses if r.status_code != 200] == []
    outcomes = [r.json()["status"] for r in responses]
    assert (outcomes.count("stored"), outcomes.count("duplicate")) == (DELIVERIES, REDELIVERIES)
    entries = receiver.ledger.inbox_after(0, limit=10 * DELIVERIES)
    assert len(entries) == DELIVERIES
    assert sorted(e.webhook_id for e in entries) == sorted(f"burst-{n}" for n in range(DELIVERIES))
    by_id = {e.webhook_id: e for e in entries}
    for n in (0, 499, 999):
        assert by_id[f"burst-{n}"].payload["id"] == 10_000 + n
        assert by_id[f"burst-{n}"].shopify_order_id == str(900_000 + n)
    print(f"{len(requests)} deliveries in {elapsed:.2f}s ({len(requests) / elapsed:.0f}/s)")
