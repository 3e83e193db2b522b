"""The carriers a French Mirakl marketplace typically registers (SH21), sorted by label as SH21 is.

Codes are operator-defined, so they deliberately differ from the carriers' own names in places
(e.g. "COLISSIMO_FR"): a connector must map its carriers per marketplace, never guess.
"""


def default_carriers() -> list[dict]:
    carriers = [
        {"code": "CHRONOPOST", "label": "Chronopost", "standard_code": "CHRONOPOST",
         "tracking_url": "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={trackingId}"},
        {"code": "COLISSIMO_FR", "label": "Colissimo", "standard_code": "COLISSIMO",
         "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code={trackingId}"},
        {"code": "DHL", "label": "DHL Express", "standard_code": "DHL",
         "tracking_url": "https://www.dhl.com/fr-fr/home/tracking.html?tracking-id={trackingId}"},
        {"code": "DPD_FR", "label": "DPD France", "standard_code": "DPD",
         "tracking_url": "https://trace.dpd.fr/fr/trace/{trackingId}"},
        {"code": "GLS", "label": "GLS", "standard_code": "GLS",
         "tracking_url": "https://gls-group.com/FR/fr/suivi-colis?match={trackingId}"},
        {"code": "MONDIAL_RELAY", "label": "Mondial Relay", "standard_code": "MONDIAL_RELAY",
         "tracking_url": "https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition={trackingId}"},
        {"code": "TNT", "label": "TNT", "standard_code": "TNT",
         "tracking_url": "https://www.tnt.com/express/fr_fr/site/outils-expedition/suivi.html?cons={trackingId}"},
        {"code": "UPS", "label": "UPS", "standard_code": "UPS",
         "tracking_url": "https://www.ups.com/track?loc=fr_FR&tracknum={trackingId}"},
        # A registered carrier without a tracking page: OR23 then needs no tracking number.
        {"code": "LIVRAISON_VENDEUR", "label": "Livraison par le vendeur"},
    ]
    return sorted(carriers, key=lambda c: c["label"].casefold())


def tracking_url(carrier: dict, tracking_number: str | None) -> str | None:
    template = carrier.get("tracking_url")
    if not template or not tracking_number:
        return None
    return template.replace("{trackingId}", tracking_number)
