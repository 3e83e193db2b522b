"""A scripted Mirakl stand-in over real loopback HTTP, for client behaviour the sandbox cannot be asked for.

Each test sets `stub.handler(request_record) -> (status, body, headers)`; every request the server
receives is recorded with its raw headers and body. The app sits behind the project's FaultMiddleware,
so 5xx, 429 bursts and dropped connections are the same real faults the sandbox injects.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from starlette.requests import Request
from starlette.responses import Response

from mirakl_pipelines.sandbox.faults import FaultMiddleware, Faults
from mirakl_pipelines.sandbox.server import serve_in_thread


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stub:
    url: str = ""
    faults: Faults = field(default_factory=Faults)
    requests: list[Recorded] = field(default_factory=list)
    handler: Callable[[Recorded], tuple[int, Any, dict[str, str]]] = lambda r: (204, None, {})

    def by_path(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


def _app(stub: Stub):
    async def app(scope, receive, send):
        request = Request(scope, receive)
        body = await request.body()
        record = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        stub.requests.append(record)
        status, payload, headers = stub.handler(record)
        if payload is None:
            content = b""
        elif isinstance(payload, (bytes, str)):
            content = payload
        else:
            content = json.dumps(payload)
        await Response(content, status_code=status, headers=headers, media_type="application/json")(
            scope, receive, send
        )

    return app


@pytest.fixture
def stub():
    stub = Stub()
    server = serve_in_thread(FaultMiddleware(_app(stub), stub.faults), name="mirakl-stub")
    stub.url = server.url
    yield stub
    server.stop()


class RecordingSleep:
    """time.sleep that remembers what it was asked to wait (to prove Retry-After and budgets are honoured)."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def recording_sleep():
    return RecordingSleep()
