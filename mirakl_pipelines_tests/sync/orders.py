"""Realistic Mirakl orders and Shopify variants for the sync tests, built the way OR11 returns them."""

import copy
from decimal import Decimal
from typing import Any

from mirakl_pipelines.config import MarketplaceConfig, ShopifyStoreConfig
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.shopify.models import Variant

D = Decimal

SHIPPING_ADDRESS = {
    "civility": "Mme",
    "firstname": "Zoé",
    "lastname": "Lefèvre-Müller",
    "street_1": "12 rue de l'Église",
    "street_2": "Bâtiment B",
    "zip_code": "69002",
    "city": "Lyon",
    "country": "France",
    "country_iso_code": "FRA",
    "phone": "+33 6 12 34 56 78",
    "additional_info": "Code porte 4721",
}

BILLING_ADDRESS = {
    "firstname": "Zoé",
    "lastname": "Lefèvre-Müller",
    "street_1": "3 place Bellecour",
    "zip_code": "69002",
    "city": "Lyon",
    "country": "France",
    "country_iso_code": "FRA",
}


def tax_included_order() -> dict[str, Any]:
    """Two lines (2 × 89.90 + 1 × 39.95) plus 4.95 shipping, French VAT inside the prices.

    The headlamp's tax comes without a rate, as some marketplaces send it: the rate is derived.
    """
    return {
        "order_id": "Order_00010-A",
        "commercial_id": "Order_00010",
        "order_state": "SHIPPING",
        "order_tax_mode": "TAX_INCLUDED",
        "currency_iso_code": "EUR",
        "created_date": "2026-03-14T09:30:00Z",
        "last_updated_date": "2026-03-14T10:02:11.460Z",
        "customer_debited_date": "2026-03-14T10:02:11Z",
        "shipping_deadline": "2026-03-17T23:59:59Z",
        "channel": {"code": "FR", "label": "Site FR"},
        "customer_notification_email": "a1b2c3@relay.marketplace.example",
        "customer": {
            "customer_id": "C-991",
            "firstname": "Zoé",
            "lastname": "Lefèvre-Müller",
            "shipping_address": dict(SHIPPING_ADDRESS),
            "billing_address": dict(BILLING_ADDRESS),
        },
        "price": D("219.75"),
        "shipping_price": D("4.95"),
        "total_price": D("224.70"),
        "total_commission": D("26.37"),
        "shipping_type_code": "STD",
        "shipping_type_label": "Livraison standard",
        "shipping_zone_code": "FR-METRO",
        "order_lines": [
            {
                "order_line_id": "Order_00010-A-1",
                "order_line_state": "SHIPPING",
                "offer_sku": "ALP-TRAIL-42",
                "product_title": "Chaussure de trail",
                "quantity": 2,
                "price_unit": D("89.90"),
                "price": D("179.80"),
                "shipping_price": D("4.95"),
                "total_price": D("184.75"),
                "total_commission": D("21.58"),
                "taxes": [{"code": "TVA", "amount": D("29.97"), "rate": D("20")}],
                "shipping_taxes": [{"code": "TVA", "amount": D("0.83"), "rate": D("20")}],
            },
            {
                "order_line_id": "Order_00010-A-2",
                "order_line_state": "SHIPPING",
                "offer_sku": "LUM-HEAD-400",
                "product_title": "Lampe frontale 400 lm",
                "quantity": 1,
                "price_unit": D("39.95"),
                "price": D("39.95"),
                "shipping_price": D("0"),
                "total_price": D("39.95"),
                "total_commission": D("4.79"),
                "taxes": [{"code": "TVA", "amount": D("6.66")}],
                "shipping_taxes": [],
            },
        ],
    }


def tax_excluded_order() -> dict[str, Any]:
    """The same basket with prices before tax (TAX_EXCLUDED): taxes come on top of total_price."""
    data = tax_included_order()
    data["order_tax_mode"] = "TAX_EXCLUDED"
    first, second = data["order_lines"]
    first.update(price_unit=D("74.92"), price=D("149.84"), shipping_price=D("4.13"), total_price=D("153.97"))
    first["taxes"] = [{"code": "TVA", "amount": D("29.97"), "rate": D("20")}]
    first["shipping_taxes"] = [{"code": "TVA", "amount": D("0.83"), "rate": D("20")}]
    second.update(price_unit=D("33.29"), price=D("33.29"), total_price=D("33.29"))
    second["taxes"] = [{"code": "TVA", "amount": D("6.66")}]
    data.update(price=D("183.13"), shipping_price=D("4.13"), total_price=D("187.26"))
    return data


def order(base: dict[str, Any] | None = None, **changes: Any) -> MiraklOrder:
    """A MiraklOrder from `base` (the tax-included order by default) with top-level fields replaced."""
    data = copy.deepcopy(base if base is not None else tax_included_order())
    data.update(changes)
    return MiraklOrder.model_validate(data)


def variants(**available: int) -> dict[str, Variant]:
    """Variants of the sandbox catalogue keyed by SKU; `available` overrides stock (SKU with _ for -)."""
    stock = {"ALP-TRAIL-42": 40, "ALP-TRAIL-44": 3, "LUM-HEAD-400": 120, "ALP-MERINO-L": 0}
    stock.update({sku.replace("_", "-"): units for sku, units in available.items()})
    return {
        sku: Variant(id=f"gid://shopify/ProductVariant/{1000 + i}", sku=sku, available=units, price=D("10"))
        for i, (sku, units) in enumerate(sorted(stock.items()))
    }


def marketplace(**changes: Any) -> MarketplaceConfig:
    data = {
        "code": "decathlon_fr",
        "name": "Decathlon FR",
        "base_url": "https://marketplace-decathlon-eu.mirakl.net",
        "api_key_env": "MIRAKL_DECATHLON_FR_API_KEY",
        "orders": {"states": ["SHIPPING"], "tags": ["mirakl", "decathlon"]},
    }
    data.update(changes)
    return MarketplaceConfig.model_validate(data)


def store(currency: str = "EUR") -> ShopifyStoreConfig:
    return ShopifyStoreConfig(name="main", shop_url="https://example-brand.myshopify.com", currency=currency)
