import pytest

from mirakl_pipelines_tests.webhooks.deliveries import running_receiver


@pytest.fixture
def receiver(tmp_path):
    """The webhook receiver on loopback with a fresh SQLite ledger, accepting SECRET only."""
    with running_receiver(tmp_path) as running:
        yield running
