"""Dagster resources: the configuration, the ledger, the warehouse and the API clients.

Secrets are resolved by Dagster from environment variables (`dg.EnvVar`) named in the
configuration file; they never appear in the file, the run config or the logs.
"""

import os
from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg

from mirakl_pipelines.config import Settings, cached_settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.mirakl.budget import BACKGROUND, LIVE, BackgroundBudget, InMemoryBudget, OwnedBudget
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.shopify.client import ShopifyClient


class SettingsResource(dg.ConfigurableResource):
    """The marketplace configuration file (``$MIRAKL_PIPELINES_CONFIG`` or data/marketplaces.yaml)."""

    config_path: Optional[str] = None

    def load(self) -> Settings:
        return cached_settings(self.config_path)


class LedgerResource(dg.ConfigurableResource):
    """The ledger database: a SQLite file by default, PostgreSQL (postgresql+psycopg2://…) in production."""

    url: str

    @contextmanager
    def open(self) -> Iterator[Ledger]:
        ledger = Ledger.connect(self.url)
        try:
            yield ledger
        finally:
            ledger.close()


class WarehouseResource(dg.ConfigurableResource):
    """Where the parquet datasets for finance and replay are written (a local path)."""

    base_path: str


class MiraklResource(dg.ConfigurableResource):
    """Mirakl seller API clients, one per marketplace code."""

    api_keys: dict[str, str]
    rate_limit_scale: float = 1.0
    timeout_seconds: float = 30.0

    @contextmanager
    def client(self, settings: Settings, code: str, budget=None, max_wait: float = 120.0,
               priority: str = LIVE, owner: Optional[str] = None) -> Iterator[MiraklClient]:
        """A client for marketplace `code`; `max_wait` (API seconds) is how long a call may wait for its budget slot.

        `priority` BACKGROUND (backfills, close-outs) books the budget's slots behind live refreshes (mirakl.budget).
        `owner` (the run id) names the bookings, so a run that dies waiting for its slot can have it given back.
        """
        marketplace = settings.marketplace(code)
        if owner is not None and budget is not None:
            budget = OwnedBudget(budget, owner)
        if priority == BACKGROUND:
            budget = BackgroundBudget(budget if budget is not None else InMemoryBudget())
        elif priority != LIVE:
            raise ValueError(f"unknown Mirakl call priority {priority!r}; expected {LIVE!r} or {BACKGROUND!r}")
        if not self.api_keys.get(code):
            raise dg.Failure(f"no Mirakl API key for marketplace {code!r}: set the environment variable {marketplace.api_key_env}")
        client = MiraklClient(
            marketplace.base_url,
            self.api_keys[code],
            shop_id=marketplace.shop_id,
            persona=marketplace.call_frequency,
            budget=budget,
            rate_limit_scale=self.rate_limit_scale,
            max_wait=max_wait * self.rate_limit_scale,
            timeout=self.timeout_seconds,
            marketplace=code,
        )
        try:
            yield client
        finally:
            client.close()


class ShopifyResource(dg.ConfigurableResource):
    """Shopify Admin GraphQL clients, one per configured store."""

    access_tokens: dict[str, str]
    timeout_seconds: float = 30.0

    @contextmanager
    def client(self, settings: Settings, store_name: str) -> Iterator[ShopifyClient]:
        store = next(s for s in settings.shopify_stores if s.name == store_name)
        if not self.access_tokens.get(store_name):
            raise dg.Failure(f"no Shopify access token for store {store_name!r}: set the environment variable {store.access_token_env}")
        client = ShopifyClient(
            store.shop_url, self.access_tokens[store_name], api_version=store.api_version, timeout=self.timeout_seconds
        )
        try:
            yield client
        finally:
            client.close()


class InvoiceSourceResource(dg.ConfigurableResource):
    """Credentials for invoice sources behind authentication (an ERP's URL), per marketplace code."""

    authorizations: dict[str, str] = {}

    def headers(self, settings: Settings, code: str) -> dict[str, str]:
        env = settings.marketplace(code).fulfilments.invoice.authorization_env
        if env is None:
            return {}
        if not self.authorizations.get(code):
            raise dg.Failure(f"no Authorization for the invoice source of marketplace {code!r}: set the environment variable {env}")
        return {"Authorization": self.authorizations[code]}


def ledger_url(settings: Settings):
    """The ledger URL for the resource: an EnvVar when its environment variable is set, so a password in it is
    resolved at launch and never shown; else the default file."""
    if os.environ.get(settings.ledger_url_env):
        return dg.EnvVar(settings.ledger_url_env)
    return settings.ledger_url()


def build_resources(settings: Settings, config_path: Optional[str] = None, rate_limit_scale: float = 1.0) -> dict:
    """Resources for `settings`, with every secret read from the environment variable the file names."""
    return {
        "settings": SettingsResource(config_path=config_path),
        "ledger": LedgerResource(url=ledger_url(settings)),
        "warehouse": WarehouseResource(base_path=str(settings.resolve_path(settings.warehouse_path))),
        "mirakl": MiraklResource(
            api_keys={m.code: dg.EnvVar(m.api_key_env) for m in settings.marketplaces},
            rate_limit_scale=rate_limit_scale,
        ),
        "shopify": ShopifyResource(access_tokens={s.name: dg.EnvVar(s.access_token_env) for s in settings.shopify_stores}),
        "invoices": InvoiceSourceResource(authorizations={
            m.code: dg.EnvVar(m.fulfilments.invoice.authorization_env)
            for m in settings.marketplaces if m.fulfilments.invoice.authorization_env
        }),
    }
