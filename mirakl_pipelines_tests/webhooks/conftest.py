import pytest

from mirakl_pipelines_tests.webhooks.deliveries import start_receiver


@pytest.fixture
def receiver(tmp_path):
    """The webhook receiver on loopback with a fresh SQLite ledger, accepting SECRET only."""
    running, stop = start_receiver(tmp_path)
    try:
        yield running
    finally:
        stop()
