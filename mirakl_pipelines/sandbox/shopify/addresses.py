"""MailingAddressInput → MailingAddress records, shared by orderCreate and orderUpdate, and orderUpdate's checks.

orderUpdate's address messages are the recorded ones (airhorns/shopify-draft-proxy
fixtures/conformance/…/2026-04/orders/orderUpdate-input-validation.json, not copied to shared/):
"Enter a last name", "Enter a ZIP code" and "State is not a valid state in United States" for a US
address. The wording for other countries ("postal code", "province") is not captured.
"""

import pycountry

from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

# Countries where Shopify asks for no postal code (a few a European seller meets; not captured: the list).
NO_POSTAL_CODE = frozenset({"AE", "HK", "IE", "QA"})


def mailing_address(store: ShopifyStore, address: dict | None) -> dict | None:
    """The stored MailingAddress of a MailingAddressInput (None for none)."""
    if not address:
        return None
    code = address.get("countryCode")
    country = pycountry.countries.get(alpha_2=code) if code else None
    address_id, _ = store.new_id("MailingAddress")
    first, last = address.get("firstName"), address.get("lastName")
    return {
        "id": address_id, "firstName": first, "lastName": last,
        "name": " ".join(part for part in (first, last) if part) or None,
        "company": address.get("company"), "address1": address.get("address1"), "address2": address.get("address2"),
        "city": address.get("city"), "zip": address.get("zip"), "provinceCode": address.get("provinceCode"),
        "province": address.get("province") or address.get("provinceCode"),
        "countryCodeV2": code, "country": country.name if country else address.get("country"),
        "phone": address.get("phone"), "coordinatesValidated": False, "latitude": None, "longitude": None,
        "formatted": [part for part in (address.get("address1"), address.get("address2"),
                                        " ".join(p for p in (address.get("zip"), address.get("city")) if p),
                                        country.name if country else None) if part],
    }


def fulfillment_order_destination(store: ShopifyStore, address: dict | None, email: str | None) -> dict | None:
    """A FulfillmentOrderDestination: where the fulfilment order ships (the order's shipping address)."""
    if not address:
        return None
    destination_id, _ = store.new_id("FulfillmentOrderDestination")
    return {"id": destination_id, **{key: address.get(key) for key in (
        "firstName", "lastName", "company", "address1", "address2", "city", "province", "zip", "phone")},
        "countryCode": address.get("countryCodeV2"), "email": email}


def address_errors(address: dict, path: list[str]) -> list[dict]:
    """orderUpdate's checks of a MailingAddressInput: [{field, message}] (UserError has no code)."""
    errors = []
    code = address.get("countryCode")
    is_us = code == "US"
    if not (address.get("lastName") or "").strip():
        errors.append({"field": path + ["lastName"], "message": "Enter a last name"})
    if code and code not in NO_POSTAL_CODE and not (address.get("zip") or "").strip():
        errors.append({"field": path + ["zip"], "message": "Enter a ZIP code" if is_us else "Enter a postal code"})
    province = address.get("provinceCode")
    subdivisions = pycountry.subdivisions.get(country_code=code) if code and province else None
    # Shopify writes most zone codes as the ISO suffix ("QC") and some as the whole code ("JP-13").
    known = {s.code.upper() for s in subdivisions or ()}
    if subdivisions and f"{code}-{province}".upper() not in known and province.upper() not in known:
        country = pycountry.countries.get(alpha_2=code)
        label = "state" if is_us else "province"
        errors.append({"field": path + ["province"],
                       "message": f"{label.capitalize()} is not a valid {label} in {country.name if country else code}"})
    return errors
