"""Pydantic models of the Mirakl seller API payloads the project reads.

Mirakl adds fields and enum values without notice and marks fields required that are null in
practice (addresses before acceptance), so every model allows extra fields, keeps enums as plain
strings and makes almost everything optional. Money is always Decimal (parsed from the JSON
number's text, never through float).
"""

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

# States an order reaches only after OR24 (NOTES §3.4): it has shipped.
SHIPPED_STATES = frozenset({"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"})


class MiraklModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_lists_are_empty(cls, data: Any) -> Any:
        """The spec lets optional lists be null (order_taxes, fees, promotions…): read null as empty."""
        if isinstance(data, dict):
            lists = _list_fields(cls)
            if any(data.get(name) is None and name in data for name in lists):
                data = {k: ([] if v is None and k in lists else v) for k, v in data.items()}
        return data


@lru_cache(maxsize=None)
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, f in model.model_fields.items() if getattr(f.annotation, "__origin__", None) is list)


class BreakdownPart(MiraklModel):
    """One part of an amount with its own invoicing rules (only with Mirakl's advanced features)."""

    amount: Optional[Decimal] = None
    commissionable: Optional[bool] = None
    debitable_from_customer: Optional[bool] = None
    payable_to_shop: Optional[bool] = None


class AmountBreakdown(MiraklModel):
    parts: list[BreakdownPart] = Field(default_factory=list)


class Tax(MiraklModel):
    code: Optional[str] = None
    amount: Optional[Decimal] = None
    rate: Optional[Decimal] = None  # a percentage (17.5), not a fraction
    amount_breakdown: Optional[AmountBreakdown] = None
    tax_calculation_rule: Optional[str] = None  # PROPORTIONAL_TO_AMOUNT | NONE


class Fee(MiraklModel):
    code: Optional[str] = None
    amount: Optional[Decimal] = None


class PromotionConfiguration(MiraklModel):
    type: Optional[str] = None  # AMOUNT_OFF | FREE_ITEMS | PERCENTAGE_OFF | REDUCED_UNIT_PRICE
    internal_description: Optional[str] = None
    amount_off: Optional[Decimal] = None
    percentage_off: Optional[Decimal] = None
    free_items_quantity: Optional[int] = None
    reduced_unit_price: Optional[Decimal] = None


class Promotion(MiraklModel):
    id: Optional[str] = None
    deduced_amount: Optional[Decimal] = None  # this promotion's amount for this line
    apportioned: Optional[bool] = None
    offered_quantity: Optional[int] = None  # FREE_ITEMS only
    promo_code: Optional[str] = None
    configuration: Optional[PromotionConfiguration] = None


class OrderPromotions(MiraklModel):
    applied_promotions: list[Promotion] = Field(default_factory=list)
    total_deduced_amount: Optional[Decimal] = None


class CommissionTax(MiraklModel):
    code: Optional[str] = None
    amount: Optional[Decimal] = None
    rate: Optional[Decimal] = None


class Address(MiraklModel):
    civility: Optional[str] = None
    firstname: Optional[str] = None
    lastname: Optional[str] = None
    company: Optional[str] = None
    company_2: Optional[str] = None
    street_1: Optional[str] = None
    street_2: Optional[str] = None
    zip_code: Optional[str] = None
    city: Optional[str] = None
    state: Optional[str] = None
    country: Optional[str] = None
    country_iso_code: Optional[str] = None  # ISO-3166 alpha-3
    phone: Optional[str] = None
    phone_secondary: Optional[str] = None
    additional_info: Optional[str] = None


class Organization(MiraklModel):
    organization_id: Optional[str] = None
    name: Optional[str] = None
    identification_number: Optional[str] = None
    tax_identification_number: Optional[str] = None


class Customer(MiraklModel):
    customer_id: Optional[str] = None
    civility: Optional[str] = None
    firstname: Optional[str] = None
    lastname: Optional[str] = None
    locale: Optional[str] = None
    billing_address: Optional[Address] = None
    shipping_address: Optional[Address] = None
    organization: Optional[Organization] = None


class Channel(MiraklModel):
    code: Optional[str] = None
    label: Optional[str] = None


class AdditionalField(MiraklModel):
    code: str
    type: Optional[str] = None
    value: Any = None  # a string, or a list of strings for MULTIPLE_VALUES_LIST


class Refund(MiraklModel):
    id: Optional[str] = None
    amount: Optional[Decimal] = None
    shipping_amount: Optional[Decimal] = None
    commission_amount: Optional[Decimal] = None
    commission_total_amount: Optional[Decimal] = None
    quantity: Optional[int] = None
    reason_code: Optional[str] = None
    refund_state: Optional[str] = None
    created_date: Optional[datetime] = None


class Cancelation(MiraklModel):
    id: Optional[str] = None
    amount: Optional[Decimal] = None
    shipping_amount: Optional[Decimal] = None
    quantity: Optional[int] = None  # "informative only" (spec)
    reason_code: Optional[str] = None
    created_date: Optional[datetime] = None
    commission_amount: Optional[Decimal] = None
    commission_total_amount: Optional[Decimal] = None
    commission_taxes: list[CommissionTax] = Field(default_factory=list)
    fees: list[Fee] = Field(default_factory=list)
    taxes: list[Tax] = Field(default_factory=list)
    shipping_taxes: list[Tax] = Field(default_factory=list)


class OrderLine(MiraklModel):
    order_line_id: str
    order_line_index: Optional[int] = None
    order_line_state: Optional[str] = None
    order_line_state_reason_code: Optional[str] = None
    offer_id: Optional[int] = None
    offer_sku: Optional[str] = None
    product_sku: Optional[str] = None
    product_shop_sku: Optional[str] = None
    product_title: Optional[str] = None
    quantity: int = 0
    price_unit: Optional[Decimal] = None
    origin_unit_price: Optional[Decimal] = None
    price: Optional[Decimal] = None  # without shipping, after promotions
    price_amount_breakdown: Optional[AmountBreakdown] = None
    shipping_price: Optional[Decimal] = None
    shipping_price_amount_breakdown: Optional[AmountBreakdown] = None
    total_price: Optional[Decimal] = None  # price + shipping + fees
    fees: list[Fee] = Field(default_factory=list)
    promotions: list[Promotion] = Field(default_factory=list)
    commission_fee: Optional[Decimal] = None
    commission_vat: Optional[Decimal] = None
    commission_rate_vat: Optional[Decimal] = None
    total_commission: Optional[Decimal] = None
    commission_taxes: list[CommissionTax] = Field(default_factory=list)
    taxes: list[Tax] = Field(default_factory=list)
    shipping_taxes: list[Tax] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    cancelations: list[Cancelation] = Field(default_factory=list)
    can_refund: Optional[bool] = None
    created_date: Optional[datetime] = None
    last_updated_date: Optional[datetime] = None
    debited_date: Optional[datetime] = None
    shipped_date: Optional[datetime] = None

    @property
    def sku(self) -> Optional[str]:
        """The seller's SKU: what Shopify knows the variant by."""
        return self.offer_sku or self.product_shop_sku


class MiraklOrder(MiraklModel):
    order_id: str
    commercial_id: Optional[str] = None
    order_state: Optional[str] = None
    order_state_reason_code: Optional[str] = None
    order_tax_mode: Optional[str] = None  # TAX_INCLUDED | TAX_EXCLUDED
    currency_iso_code: Optional[str] = None
    created_date: Optional[datetime] = None
    last_updated_date: Optional[datetime] = None
    acceptance_decision_date: Optional[datetime] = None
    customer_debited_date: Optional[datetime] = None
    customer_directly_pays_seller: Optional[bool] = None
    shipping_deadline: Optional[datetime] = None
    leadtime_to_ship: Optional[int] = None
    can_cancel: Optional[bool] = None
    can_shop_ship: Optional[bool] = None
    channel: Optional[Channel] = None
    customer: Optional[Customer] = None
    customer_notification_email: Optional[str] = None
    order_lines: list[OrderLine] = Field(default_factory=list)
    order_taxes: list[Tax] = Field(default_factory=list)
    order_additional_fields: list[AdditionalField] = Field(default_factory=list)
    payment_type: Optional[str] = None
    payment_workflow: Optional[str] = None
    payment_duration: Optional[int] = None  # days, PAY_ON_DUE_DATE only
    promotions: Optional[OrderPromotions] = None
    transaction_number: Optional[str] = None
    price: Optional[Decimal] = None
    shipping_price: Optional[Decimal] = None
    total_price: Optional[Decimal] = None
    total_commission: Optional[Decimal] = None
    shipping_type_code: Optional[str] = None
    shipping_type_label: Optional[str] = None
    shipping_zone_code: Optional[str] = None
    shipping_zone_label: Optional[str] = None
    shipping_pudo_id: Optional[str] = None
    shipping_carrier_code: Optional[str] = None
    shipping_company: Optional[str] = None
    shipping_tracking: Optional[str] = None
    shipping_tracking_url: Optional[str] = None
    has_incident: Optional[bool] = None
    fully_refunded: Optional[bool] = None

    @property
    def shipping_address(self) -> Optional[Address]:
        return self.customer.shipping_address if self.customer else None

    @property
    def billing_address(self) -> Optional[Address]:
        return self.customer.billing_address if self.customer else None
