"""Which Mirakl carrier a Shopify fulfilment is sent with (OR23), per marketplace.

Carrier codes are operator-defined and differ per marketplace (NOTES §3.8), so nothing is guessed:
a Shopify tracking company is looked up in ``data/carriers.yaml`` (the marketplace's section, then
``default``) and the code found must be in the marketplace's SH21 list. Otherwise the fulfilment is
sent as an unregistered carrier (name + URL) when the marketplace accepts that, or it becomes an
exception whose reason is the exact line to add to the file.
"""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Protocol, Sequence

import yaml

from mirakl_pipelines.config import read_yaml_file

DEFAULT_SECTION = "default"
KINDS = ("registered", "unregistered", "unknown")
_SECTION_NAME = re.compile(r"^[a-z0-9_]+$")
_CARRIER_CODE = re.compile(r"^[A-Za-z0-9_.-]+$")
TRACKING_ID_PLACEHOLDER = "{trackingId}"  # SH21 tracking_url templates


class CarrierMapError(ValueError):
    """The carrier mapping file is missing or invalid; the message names the file, the section and the entry."""


class CarrierLike(Protocol):
    """An SH21 carrier (mirakl.client.Carrier, or the sandbox's dicts wrapped alike)."""

    code: str
    label: str
    tracking_url: Optional[str]


def normalise_company(name: str) -> str:
    """Comparison key of a carrier name: accents, case, spaces and punctuation ignored ("DHL Express" = "dhl-express")."""
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", letters.casefold())


@dataclass(frozen=True)
class CarrierChoice:
    """How one fulfilment's carrier goes to Mirakl.

    - registered: ``carrier_code`` from the map, present in SH21; Mirakl computes the tracking URL
      from ``tracking_url_template``;
    - unregistered: ``carrier_name`` (+ ``carrier_url``) sent as they are;
    - unknown: not sent; ``reason`` says what to add to the mapping file (``yaml_line``).
    """

    kind: str
    marketplace: str
    company: Optional[str]
    carrier_code: Optional[str] = None
    carrier_label: Optional[str] = None
    tracking_url_template: Optional[str] = None
    carrier_name: Optional[str] = None
    carrier_url: Optional[str] = None
    reason: Optional[str] = None  # why unknown; for unregistered, why the map was not used
    yaml_line: Optional[str] = None  # unknown only: the section and entry to add to data/carriers.yaml

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown carrier choice kind {self.kind!r}; expected one of {KINDS}")

    @property
    def shippable(self) -> bool:
        return self.kind != "unknown"

    def tracking_url_for(self, tracking_number: Optional[str]) -> Optional[str]:
        """The URL the customer will see: Mirakl's template for a registered carrier, ours otherwise."""
        if self.kind == "registered":
            if not self.tracking_url_template or not tracking_number:
                return None
            return self.tracking_url_template.replace(TRACKING_ID_PLACEHOLDER, tracking_number)
        return self.carrier_url if self.kind == "unregistered" else None

    @property
    def needs_tracking_number(self) -> bool:
        """A registered carrier whose URL needs the number makes it mandatory in OR23 (NOTES §3.3)."""
        return self.kind == "registered" and TRACKING_ID_PLACEHOLDER in (self.tracking_url_template or "")


@dataclass(frozen=True)
class CarrierMap:
    """Shopify tracking company -> Mirakl carrier_code, per marketplace section (keys normalised)."""

    sections: Mapping[str, Mapping[str, str]]  # section -> normalised company -> carrier code
    source: str = "data/carriers.yaml"

    @classmethod
    def load(cls, path: str | Path) -> "CarrierMap":
        path = Path(path)
        return cls.from_data(read_yaml_file(path, "carrier mapping file", CarrierMapError), str(path))

    @classmethod
    def from_data(cls, data: object, source: str = "data/carriers.yaml") -> "CarrierMap":
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise CarrierMapError(
                f"carrier mapping file {source}: expected a mapping of marketplace code -> "
                f"{{Shopify tracking company: Mirakl carrier_code}}, got {type(data).__name__}"
            )
        sections: dict[str, dict[str, str]] = {}
        problems: list[str] = []
        for section, entries in data.items():
            if not isinstance(section, str) or not _SECTION_NAME.match(section):
                problems.append(f"section {section!r}: a marketplace code ([a-z0-9_]+) or '{DEFAULT_SECTION}' is expected")
                continue
            if entries is None:
                entries = {}
            if not isinstance(entries, dict):
                problems.append(f"section {section}: expected 'Shopify company: CARRIER_CODE' entries, got {type(entries).__name__}")
                continue
            seen: dict[str, tuple[str, str]] = {}
            for company, code in entries.items():
                where = f"section {section}, entry {company!r}"
                if not isinstance(company, str) or not normalise_company(company):
                    problems.append(f"{where}: the Shopify tracking company must be a non-empty name")
                    continue
                if not isinstance(code, str) or not _CARRIER_CODE.match(code):
                    problems.append(f"{where}: the Mirakl carrier_code must be a code from SH21 such as COLISSIMO_FR (got {code!r})")
                    continue
                key = normalise_company(company)
                if key in seen and seen[key][1] != code:
                    other, other_code = seen[key]
                    problems.append(
                        f"{where}: same name as {other!r} once case, spaces and punctuation are ignored, "
                        f"but mapped to {code} instead of {other_code}"
                    )
                    continue
                seen[key] = (company, code)
            sections[section] = {key: code for key, (_, code) in seen.items()}
        if problems:
            raise CarrierMapError(f"invalid carrier mapping file {source}:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(sections, source)

    def code_for(self, company: str, marketplace_code: str) -> Optional[str]:
        """The mapped carrier_code (marketplace section first, then default), or None."""
        key = normalise_company(company)
        for section in (marketplace_code, DEFAULT_SECTION):
            code = self.sections.get(section, {}).get(key)
            if code is not None:
                return code
        return None

    def resolve(
        self,
        company: Optional[str],
        tracking_url: Optional[str],
        marketplace_code: str,
        sh21: Sequence[CarrierLike],
        accepts_unregistered: bool,
    ) -> CarrierChoice:
        """Decide how a fulfilment shipped by `company` is sent to `marketplace_code` (see CarrierChoice)."""
        company = (company or "").strip() or None
        by_code = {carrier.code: carrier for carrier in sh21}
        code = self.code_for(company, marketplace_code) if company else None

        if code is not None and code in by_code:
            carrier = by_code[code]
            return CarrierChoice(
                "registered", marketplace_code, company, carrier_code=code, carrier_label=carrier.label,
                tracking_url_template=carrier.tracking_url,
            )

        if code is not None:  # mapped, but the marketplace no longer lists the code: the map is stale
            reason = (
                f"carrier {company!r}: {self.source} maps it to {code} for marketplace {marketplace_code}, "
                f"but its carrier list (SH21) has no {code}; known codes: {_codes(sh21)}"
            )
        elif company is None:
            reason = f"the fulfilment has no tracking company, so no carrier can be sent to marketplace {marketplace_code}"
        else:
            reason = f"carrier {company!r} is not mapped for marketplace {marketplace_code} in {self.source}"

        if accepts_unregistered and company is not None:
            return CarrierChoice(
                "unregistered", marketplace_code, company, carrier_name=company, carrier_url=tracking_url or None,
                reason=reason + "; sent as an unregistered carrier",
            )

        yaml_line = _yaml_line(company, marketplace_code, sh21) if company else None
        if yaml_line:
            reason += f"; add under '{marketplace_code}:' in {self.source}: {yaml_line}"
        return CarrierChoice("unknown", marketplace_code, company, reason=reason, yaml_line=yaml_line)


def _codes(sh21: Iterable[CarrierLike]) -> str:
    return ", ".join(sorted(c.code for c in sh21)) or "(none)"


def _yaml_line(company: str, marketplace_code: str, sh21: Sequence[CarrierLike]) -> str:
    """The entry to add: with the SH21 code whose label or code matches the company, else a placeholder listing the codes."""
    key = normalise_company(company)
    match = next((c for c in sh21 if key in {normalise_company(c.label), normalise_company(c.code)}), None)
    code = match.code if match else f"<one of: {_codes(sh21)}>"
    return f"{_yaml_key(company)}: {code}"


def _yaml_key(company: str) -> str:
    """The company as a YAML key that loads back to itself (quoted when YAML would read it otherwise)."""
    try:
        plain_ok = yaml.safe_load(f"{company}: X") == {company: "X"}
    except yaml.YAMLError:
        plain_ok = False
    return company if plain_ok else yaml.safe_dump(company, default_style='"', allow_unicode=True).strip()


__all__ = ["CarrierChoice", "CarrierLike", "CarrierMap", "CarrierMapError", "normalise_company"]
