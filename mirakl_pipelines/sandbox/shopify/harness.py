"""Run a sandbox store on loopback and talk to it: for tests, the demo and benchmarks.

    with running_store(store) as sandbox:
        body = sandbox.graphql(QUERY, {"q": "sku:ALP-TRAIL-42"})
"""

import contextlib
import json
from decimal import Decimal
from typing import Iterator

import httpx

from mirakl_pipelines.sandbox.server import RunningServer, serve_in_thread
from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore


class SandboxConnection:
    def __init__(self, store: ShopifyStore, server: RunningServer, http: httpx.Client):
        self.store = store
        self.server = server
        self.http = http

    @property
    def url(self) -> str:
        return self.server.url

    def graphql_path(self, api_version: str | None = None) -> str:
        return f"/admin/api/{api_version or self.store.settings.api_version}/graphql.json"

    def post(self, query: str, variables: dict | None = None, operation_name: str | None = None,
             api_version: str | None = None, token: str | None = None) -> httpx.Response:
        body = {"query": query, "variables": variables or {}}
        if operation_name:
            body["operationName"] = operation_name
        headers = {"X-Shopify-Access-Token": token if token is not None else self.store.settings.access_token}
        return self.http.post(self.graphql_path(api_version), json=body, headers=headers)

    def graphql(self, query: str, variables: dict | None = None, operation_name: str | None = None,
                api_version: str | None = None) -> dict:
        """The response body (money read as Decimal where the response carries JSON numbers)."""
        response = self.post(query, variables, operation_name, api_version)
        return json.loads(response.content, parse_float=Decimal)


@contextlib.contextmanager
def running_store(store: ShopifyStore) -> Iterator[SandboxConnection]:
    server = serve_in_thread(create_shopify_app(store), name="shopify-sandbox")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield SandboxConnection(store, server, http)
    finally:
        server.stop()
