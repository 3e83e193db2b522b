"""The sandbox store seeded from the demo catalogue, served on loopback, for the store's own tests."""

import pytest

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.shopify.test_client_loopback import CATALOGUE


@pytest.fixture()
def catalogue_store():
    """A SandboxConnection to a fresh store (skips, saying why, without the Shopify SDL)."""
    reference_file("shopify/admin-2026-07.schema.graphql")
    store = ShopifyStore.from_catalogue_file(CATALOGUE)
    try:
        with running_store(store) as connection:
            yield connection
    finally:
        store.close()


def ok(body: dict) -> dict:
    """A GraphQL answer's data, asserting it carries no top-level error."""
    assert "errors" not in body, body.get("errors")
    return body["data"]
