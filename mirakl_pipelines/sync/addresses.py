"""Mirakl address fields in the forms Shopify's `MailingAddressInput` accepts: E.164 phones and zone codes.

Both functions return None rather than guess; the caller then keeps the raw Mirakl text in the order
note, so a person (or the carrier) still sees what the customer typed.

Phones are parsed by `phonenumbers` (libphonenumber's metadata) with the address's country as the
default region, so national formats work. Only numbers libphonenumber calls *valid* (an allocated
range of a real numbering plan) are returned, not merely *possible* ones (right length): a carrier
calls or texts the number on the label, and a possible but unallocated number is almost always a
typo that E.164 would dress up as a checked number; the raw text in the note at least shows a person
what the customer typed.

Zone codes come from ISO 3166-2 as maintained in `pycountry`, turned into Shopify's codes by a small
per-country rule read from Shopify's public zone data (github.com/Shopify/worldwide,
db/data/regions/<CC>.yml): which ISO level is a zone, how the code is written, and the few codes
Shopify renames or lacks.
"""

import gettext
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Iterable, Mapping

import phonenumbers
import pycountry

__all__ = ["shopify_phone", "province_code", "supported_province_countries", "shopify_zone_codes"]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_Lookup = dict[str, set[str]]  # comparison key → the Shopify zone codes it names


def shopify_phone(raw: str | None, country_alpha2: str | None) -> str | None:
    """E.164 form of a Mirakl phone ("06 12 34 56 78" + FR → "+33612345678"), or None.

    National formats use `country_alpha2` as their region; international ones ("+44 (0)20 …",
    "0044 20 …") work whatever the region. An extension is dropped (E.164 has none). None when the
    text is empty or not a valid number; never raises.
    """
    if not raw or not raw.strip():
        return None
    region = (country_alpha2 or "").strip().upper() or None
    number = _valid_number(raw, region)
    if number is None:
        # "00" is the international prefix in most of the world but not everywhere (US: 011), and a
        # missing region cannot read it at all: "0044 20 …" still means +44.
        compact = raw.lstrip()
        if compact.startswith("00"):
            number = _valid_number("+" + compact[2:], region)
    if number is None:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if _E164.match(e164) else None


def _valid_number(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


@dataclass(frozen=True)
class _ZoneRule:
    """How Shopify writes one country's zones, relative to its ISO 3166-2 subdivisions."""

    full_code: bool = False  # Shopify writes "JP-13", not "13"
    renamed: Mapping[str, str] = field(default_factory=dict)  # ISO suffix → Shopify's code
    no_zone: frozenset[str] = frozenset()  # ISO suffixes Shopify has no zone for


_SUFFIX = _ZoneRule()  # the ISO suffix: "QC", "MI", "CA" for California
_FULL = _ZoneRule(full_code=True)

# Countries whose Shopify addresses carry a zone, each checked zone by zone against
# Shopify/worldwide db/data/regions/<CC>.yml (zones[].code); the tests hold those lists.
# Zones are the lowest ISO level (a province, not the region or community above it).
# Left out, so always None: countries without zones (FR, DE, BE, NL, AT, …); GB (ignore_zones:
# true, hide_provinces_from_addresses); MX and MY, whose Shopify codes are postal abbreviations
# ("AGS", "JHR") that ISO 3166-2 does not derive (ISO codes are only code_alternates there).
_SHOPIFY_ZONES: Mapping[str, _ZoneRule] = {
    "AE": _SUFFIX,  # AE.yml: emirates, "DU"
    "AR": _SUFFIX,  # AR.yml: provinces + CABA, "B", "C"
    "AU": _SUFFIX,  # AU.yml: states and territories, "NSW"
    "BR": _SUFFIX,  # BR.yml: states + DF, "SP"
    "CA": _SUFFIX,  # CA.yml: provinces and territories, "QC"
    "CL": _SUFFIX,  # CL.yml: regions, "RM"
    "CN": _ZoneRule(  # CN.yml: Xizang is "YZ" (ISO XZ as alternate); HK, MO, TW are countries in Shopify
        renamed={"XZ": "YZ"}, no_zone=frozenset({"HK", "MO", "TW"})
    ),
    "CO": _SUFFIX,  # CO.yml: departments + DC, "ANT"
    "ES": _SUFFIX,  # ES.yml: the 50 provinces + Ceuta, Melilla, "M", "B"
    "ID": _ZoneRule(no_zone=frozenset({"PD", "PE", "PS", "PT"})),  # ID.yml: no zones yet for the 2022 Papua provinces
    "IE": _SUFFIX,  # IE.yml: counties, "D"
    "IN": _ZoneRule(  # IN.yml: Odisha is "OR" (OD alternate); Dadra/Daman still two zones, not ISO's merged DH
        renamed={"OD": "OR"}, no_zone=frozenset({"DH"})
    ),
    "IT": _ZoneRule(  # IT.yml: provinces; Aosta is "AO" (iso_code IT-23); Sud Sardegna (SU) not yet supported
        renamed={"23": "AO"}, no_zone=frozenset({"SU"})
    ),
    "JP": _FULL,  # JP.yml: prefectures, "JP-13"
    "KR": _FULL,  # KR.yml: "KR-11"
    "NZ": _SUFFIX,  # NZ.yml: regions, "AUK"
    "PE": _FULL,  # PE.yml: "PE-LIM"
    "PH": _ZoneRule(full_code=True, no_zone=frozenset({"MGN", "MGS"})),  # PH.yml: "PH-CEB"; still one Maguindanao (PH-MAG)
    "PT": _FULL,  # PT.yml: districts + Azores/Madeira, "PT-11"
    "RO": _SUFFIX,  # RO.yml: counties + Bucharest, "B"
    "TH": _FULL,  # TH.yml: "TH-10"
    "US": _ZoneRule(no_zone=frozenset({"UM"})),  # US.yml: states, DC, territories; no Minor Outlying Islands
}

# Names are also matched in these translations of the ISO names (pycountry ships them): the
# languages Mirakl marketplaces' customers type in, so "Milan" or "Mailand" find Milano.
_NAME_LANGUAGES = ("fr", "de", "it", "es", "pt", "nl")

# Words around a name that say what kind of subdivision it is, not which one ("Co. Dublin",
# "Province of Milano", "Tokyo-to", "Gyeonggi-do", "Anhui Sheng", "Região Autónoma da Madeira");
# stripped, once before and once after, from the input and the ISO names alike.
_NOISE_BEFORE = ("province of", "provincia di", "provincia de", "provincia", "province", "prefecture of",
                 "state of", "county", "co", "regiao autonoma dos", "regiao autonoma da")
_NOISE_AFTER = ("prefecture", "province", "county", "state", "region autonome", "ken", "to", "fu", "do",
                "gwangyeoksi", "teukbyeolsi", "teukbyeoljachido", "sheng", "shi", "zizhiqu")


def province_code(state: str | None, country_alpha2: str) -> str | None:
    """Shopify's `provinceCode` for a Mirakl `state` ("Québec", "QC", "CA-QC" + CA → "QC"), or None.

    `state` may be an ISO 3166-2 code with or without the country prefix, Shopify's own code, or a
    name (ISO, or its French, German, Italian, Spanish, Portuguese or Dutch translation) in any case,
    with or without accents, hyphens or "Province of …"-style words. None when the country has no
    Shopify zones, the state is not a zone (an Italian region: Shopify wants the province), or the
    text matches no zone or several. Never raises.
    """
    country = _supported_country(country_alpha2)
    if not country or not isinstance(state, str) or not state.strip():
        return None
    by_code, by_name, by_translation = _zone_index(country)
    text = state.strip()
    name = _name_key(text)
    for table, key in ((by_code, _code_key(text, country)), (by_name, name), (by_translation, name)):
        found = table.get(key) if key else None
        if found:
            # Several zones for one text is a guess we do not make; the note keeps the text.
            return next(iter(found)) if len(found) == 1 else None
    return None


def supported_province_countries() -> frozenset[str]:
    """Countries for which `province_code` can return a code (ISO 3166-1 alpha-2)."""
    return frozenset(_SHOPIFY_ZONES)


def shopify_zone_codes(country_alpha2: str) -> frozenset[str]:
    """Every code `province_code` can return for that country (empty when it has no Shopify zones)."""
    country = _supported_country(country_alpha2)
    return frozenset(_zones(country).values()) if country else frozenset()


def _supported_country(country_alpha2: str | None) -> str | None:
    # Checked before the caches below, so arbitrary country text cannot grow them.
    country = country_alpha2.strip().upper() if isinstance(country_alpha2, str) else ""
    return country if country in _SHOPIFY_ZONES else None


@cache
def _zones(country: str) -> dict[str, str]:
    """ISO 3166-2 code → Shopify zone code, for every subdivision that is a zone or stands for one."""
    rule = _SHOPIFY_ZONES[country]
    subdivisions = list(pycountry.subdivisions.get(country_code=country) or [])
    children: dict[str, list[str]] = defaultdict(list)
    for subdivision in subdivisions:
        if subdivision.parent_code:
            children[subdivision.parent_code].append(subdivision.code)

    def shopify_code(iso_code: str) -> str | None:
        suffix = iso_code.split("-", 1)[1]
        if suffix in rule.no_zone:
            return None
        if suffix in rule.renamed:
            return rule.renamed[suffix]
        return iso_code if rule.full_code else suffix

    zones = {s.code: code for s in subdivisions if not children[s.code] and (code := shopify_code(s.code))}
    for parent, kids in children.items():
        # A level above the zones has no code, unless it holds a single zone ("Comunidad de Madrid"
        # is the province of Madrid, "Illes Balears" the province PM).
        if len(kids) == 1 and kids[0] in zones:
            zones[parent] = zones[kids[0]]
    return zones


@cache
def _zone_index(country: str) -> tuple[_Lookup, _Lookup, _Lookup]:
    """Lookup tables code → zones, ISO name → zones, translated name → zones (tried in that order)."""
    zones = _zones(country)
    by_code: _Lookup = defaultdict(set)
    by_name: _Lookup = defaultdict(set)
    by_translation: _Lookup = defaultdict(set)
    translations = [_translation(language) for language in _NAME_LANGUAGES]
    for iso_code, zone in zones.items():
        suffix = iso_code.split("-", 1)[1]
        for code in (suffix, zone.split("-", 1)[1] if zone.startswith(country + "-") else zone):
            by_code[code].add(zone)
        name = pycountry.subdivisions.get(code=iso_code).name
        for variant in _name_variants(name):
            by_name[_name_key(variant)].add(zone)
        for translation in translations:
            translated = translation.gettext(name)
            for variant in _name_variants(translated) if translated != name else ():
                by_translation[_name_key(variant)].add(zone)
    by_name.pop("", None)
    by_translation.pop("", None)
    return dict(by_code), dict(by_name), dict(by_translation)


@cache
def _translation(language: str) -> gettext.NullTranslations:
    return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=[language], fallback=True)


def _name_variants(name: str) -> Iterable[str]:
    """The names one ISO entry carries: "A Coruña [La Coruña]", "Madrid, Comunidad de", "Tokio; Tokyo"."""
    yield name
    for part in re.split(r"[;\[\]]", name):
        part = part.strip()
        if not part:
            continue
        yield part
        head, comma, tail = part.partition(",")
        if comma and tail.strip():
            yield f"{tail.strip()} {head.strip()}"  # "Comunidad de Madrid"


def _code_key(text: str, country: str) -> str:
    """Code form of the text ("it-mi", "IT MI", " MI " → "MI"), or "" when it cannot be a code."""
    key = re.sub(r"\s+", " ", text.upper())
    key = re.sub(rf"^{re.escape(country)}[-_ ]", "", key)
    return key if re.fullmatch(r"[A-Z0-9]{1,3}", key) else ""


def _name_key(text: str) -> str:
    """Comparison key of a name: accents, case, punctuation and kind-of-subdivision words ignored."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    words = re.sub(r"[\W_]+", " ", bare).split()
    for noise in _NOISE_BEFORE:
        noise_words = noise.split()
        if words[: len(noise_words)] == noise_words and len(words) > len(noise_words):
            words = words[len(noise_words):]
            break
    for noise in _NOISE_AFTER:
        noise_words = noise.split()
        if words[-len(noise_words):] == noise_words and len(words) > len(noise_words):
            words = words[: -len(noise_words)]
            break
    return " ".join(words)
