"""Helpers of the sandbox store's inventory and bulk tests: recorded fixtures, replayed against the sandbox."""

import copy
import json
import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirakl_pipelines_tests.reference import reference_file

FIXTURE_PREFIX = "shopify/fixtures/harry-test-heelo.myshopify.com__2026-04__"


def fixture(name: str) -> dict:
    """A recorded Shopify exchange, e.g. fixture("products__inventory-quantity-contracts-2026-04")."""
    return json.loads(reference_file(f"{FIXTURE_PREFIX}{name}.json").read_text(encoding="utf-8"))


def with_ids(value, replacements: dict[str, str]):
    """A deep copy of recorded variables with the recording's ids replaced by the sandbox's."""
    text = json.dumps(copy.deepcopy(value))
    for recorded, ours in replacements.items():
        text = text.replace(recorded, ours)
    return json.loads(text)


class Receiver:
    """A webhook endpoint on loopback recording each delivery's topic and JSON body."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hooks", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self.lock:
            self.received.append((request.headers["x-shopify-topic"], body))
        return Response(status_code=200)

    def of_topic(self, topic: str, at_least: int = 1, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [body for t, body in self.received if t == topic]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.02)
