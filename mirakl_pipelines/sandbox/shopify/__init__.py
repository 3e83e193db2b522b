"""Simulator of a Shopify store's Admin GraphQL API (see app.py for the routes, store.py for the state)."""

from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings

__all__ = ["ShopifyStore", "StoreSettings", "create_shopify_app"]
