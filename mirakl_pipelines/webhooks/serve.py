"""Run the receiver from the configuration file: secrets from the environment, ledger from the config."""

import logging
import os
from typing import Mapping

from mirakl_pipelines.config import ConfigError, Settings

PREVIOUS_SUFFIX = "_PREVIOUS"  # <webhook_secret_env>_PREVIOUS holds the old secret during a rotation


def webhook_secrets(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every store's current secret and, when set, its previous one; a store without a secret is an error."""
    secrets: list[str] = []
    for store in settings.shopify_stores:
        current = environ.get(store.webhook_secret_env)
        if not current:
            raise ConfigError(
                f"shopify_stores {store.name!r}: environment variable {store.webhook_secret_env} "
                "(webhook_secret_env) is not set; the receiver cannot verify deliveries without it"
            )
        previous = environ.get(store.webhook_secret_env + PREVIOUS_SUFFIX)
        secrets += [s for s in (current, previous) if s and s not in secrets]
    return secrets


def serve(settings: Settings, *, host: str, port: int) -> int:
    import uvicorn

    from mirakl_pipelines.webhooks.app import create_webhook_app

    secrets = webhook_secrets(settings)  # before anything starts: a missing secret is a configuration error
    # With webhooks.dagster_graphql_url, each stored fulfilment starts its push run at once (the sensor stays the net).
    app = create_webhook_app(settings.ledger_url(), secrets, dagster_graphql_url=settings.webhooks.dagster_graphql_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    return 0
