"""The demo store on loopback (sandbox/conftest.py's `catalogue_store`), tuned for inventory and bulk tests."""

import pytest

from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.sandbox.shopify.fixtures import Receiver


@pytest.fixture()
def shop(catalogue_store):
    """Bulk operations finish at once unless a test says otherwise; webhook retries are quick."""
    catalogue_store.store.apply_settings(bulk_operation_seconds=0.0)
    catalogue_store.store.webhook_settings.time_scale = 0.0001
    return catalogue_store


@pytest.fixture()
def receiver():
    """(Receiver, its URL) on loopback."""
    r = Receiver()
    server = serve_in_thread(r.app, name="webhook-receiver")
    yield r, f"{server.url}/hooks"
    server.stop()
