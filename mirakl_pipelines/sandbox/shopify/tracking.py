"""Tracking companies of the sandbox store: the names Shopify knows, their tracking URLs, their numbers.

Company names are spelled exactly as in the SDL's `FulfillmentTrackingInfo.company` list
(capitalisation matters). For a listed company Shopify builds the tracking URL itself when none is
given; the sandbox does the same for the carriers a French shop uses. Number formats follow each
carrier's public format, so the demo's tracking numbers look like real ones.
"""

import random
import string

# (company, tracking URL template with {number}): the French mix the sandbox warehouse ships with.
FRENCH_CARRIERS: list[tuple[str, str]] = [
    ("Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"),
    ("Chronopost", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={number}"),
    ("DPD", "https://trace.dpd.fr/fr/trace/{number}"),
    ("GLS", "https://gls-group.com/FR/fr/suivi-colis?match={number}"),
    ("UPS", "https://www.ups.com/track?loc=fr_FR&tracknum={number}"),
    ("DHL Express", "https://www.dhl.com/fr-fr/home/tracking.html?tracking-id={number}"),
    ("Mondial Relay", "https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition={number}"),
]
# How often each is used by a typical French web shop (relative weights).
FRENCH_CARRIER_WEIGHTS = {"Colissimo": 35, "Mondial Relay": 15, "Chronopost": 15, "DPD": 10, "GLS": 10,
                          "UPS": 8, "DHL Express": 7}
# Carriers no marketplace mapping knows: the connector must raise an exception for them, not guess.
UNMAPPED_CARRIERS: list[tuple[str, str]] = [
    ("Coursier Express Lyon", "https://coursier-express-lyon.fr/suivi/{number}"),
]

# Shopify builds tracking URLs for listed companies; these are the ones the sandbox can build.
KNOWN_TRACKING_URLS = dict(FRENCH_CARRIERS) | {
    "La Poste Colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code={number}",
    "Colis Privé": "https://www.colisprive.com/moncolis/pages/detailColis.aspx?numColis={number}",
    "TNT": "https://www.tnt.com/express/fr_fr/site/outils-expedition/suivi.html?cons={number}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={number}",
}


def shopify_tracking_url(company: str | None, number: str | None) -> str | None:
    """The URL Shopify would build for a listed company, else None."""
    template = KNOWN_TRACKING_URLS.get(company or "")
    return template.format(number=number) if template and number else None


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


_NUMBER_FORMATS = {
    "Colissimo": lambda rng: rng.choice(["6A", "6C", "8R"]) + _digits(rng, 11),
    "Chronopost": lambda rng: "XW" + _digits(rng, 9) + "FR",
    "DPD": lambda rng: "250" + _digits(rng, 11),
    "GLS": lambda rng: _digits(rng, 11),
    "UPS": lambda rng: "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)) + _digits(rng, 10),
    "DHL Express": lambda rng: _digits(rng, 10),
    "Mondial Relay": lambda rng: _digits(rng, 8),
    "Coursier Express Lyon": lambda rng: "CEL-" + _digits(rng, 6),
}


def tracking_number(company: str, rng: random.Random) -> str:
    """A tracking number in the carrier's format (12 alphanumerics for a carrier without a known format)."""
    make = _NUMBER_FORMATS.get(company)
    if make is None:
        return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    return make(rng)
