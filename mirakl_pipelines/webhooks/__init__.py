"""The Shopify webhook receiver: verifies HMAC, deduplicates, writes the ledger inbox."""

from mirakl_pipelines.webhooks.app import create_webhook_app
from mirakl_pipelines.webhooks.hmac import sign, verify
from mirakl_pipelines.webhooks.topics import DEFAULT_TOPICS, FULFILMENT_TOPICS

__all__ = ["DEFAULT_TOPICS", "FULFILMENT_TOPICS", "create_webhook_app", "sign", "verify"]
