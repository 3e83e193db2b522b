"""Which Shopify SKU backs a Mirakl offer when the two SKUs differ (the offer-sku exceptions file).

By default a Mirakl offer's `offer-sku` is the Shopify variant's SKU. The optional mapping file lists the
exceptions, one offer per line, as CSV with this header::

    marketplace,offer_sku,shopify_sku
    *,DEC-TRAIL-42,ALP-TRAIL-42
    leroymerlin_fr,LM-HEAD-400,LUM-HEAD-400

- `marketplace` is a marketplace code, or `*` for every marketplace (the first line above); a
  marketplace's own line wins over a `*` line for the same offer_sku.
- One Shopify SKU may back several offers (list one line per offer). A Shopify SKU named in the file for a
  marketplace is published under its mapped offer SKUs only; list it as its own offer too to keep both.
- Blank lines and lines starting with `#` are ignored; values are trimmed; everything else is an error
  naming the file and the line.
"""

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

HEADER = ("marketplace", "offer_sku", "shopify_sku")
EVERY_MARKETPLACE = "*"
_MARKETPLACE_CODE = re.compile(r"^[a-z0-9_]+$")


class SkuMapError(ValueError):
    """The SKU mapping file is missing or invalid; the message names the file and the line."""


@dataclass(frozen=True)
class SkuMapping:
    marketplace: str  # a marketplace code or "*"
    offer_sku: str
    shopify_sku: str
    line: int  # line number in the file (the header is line 1), for messages


@dataclass(frozen=True)
class SkuMap:
    """One marketplace's exceptions: offer_sku -> the Shopify SKU whose stock it publishes."""

    offers: Mapping[str, str]
    source: str = "sku map"
    lines: Mapping[str, int] | None = None  # offer_sku -> line of the file, for findings

    def where(self, offer_sku: str) -> str:
        line = (self.lines or {}).get(offer_sku)
        return f"{self.source} line {line}" if line else self.source


@dataclass(frozen=True)
class SkuMapFile:
    """Every line of the mapping file, for all marketplaces."""

    mappings: tuple[SkuMapping, ...]
    source: str

    @classmethod
    def load(cls, path: str | Path) -> "SkuMapFile":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write, is not part of the header
        except OSError as e:
            raise SkuMapError(f"cannot read SKU mapping file {path}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise SkuMapError(f"SKU mapping file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "sku map") -> "SkuMapFile":
        problems: list[str] = []
        mappings: list[SkuMapping] = []
        seen: dict[tuple[str, str], SkuMapping] = {}
        header_seen = False
        reader = csv.reader(io.StringIO(text))
        for row in reader:
            line = reader.line_num
            values = [v.strip() for v in row]
            if not any(values) or values[0].startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                if tuple(v.lower() for v in values) != HEADER:
                    problems.append(f"line {line}: the first line must be the header {','.join(HEADER)} (got {','.join(row)!r})")
                    break
                continue
            if len(values) != len(HEADER):
                problems.append(f"line {line}: expected 3 values marketplace,offer_sku,shopify_sku, got {len(values)}: {row!r}")
                continue
            marketplace, offer_sku, shopify_sku = values
            if marketplace != EVERY_MARKETPLACE and not _MARKETPLACE_CODE.match(marketplace):
                problems.append(f"line {line}: marketplace {marketplace!r} is neither a marketplace code ([a-z0-9_]+) nor '*'")
                continue
            if not offer_sku or not shopify_sku:
                problems.append(f"line {line}: offer_sku and shopify_sku must both be given (got {row!r})")
                continue
            if any(c in value for value in (offer_sku, shopify_sku) for c in "\r\n"):
                problems.append(f"line {line}: a SKU spans several lines ({row!r}); SKUs are one line of text")
                continue
            mapping = SkuMapping(marketplace, offer_sku, shopify_sku, line)
            earlier = seen.get((marketplace, offer_sku))
            if earlier is not None:
                if earlier.shopify_sku != shopify_sku:
                    problems.append(
                        f"line {line}: offer {offer_sku!r} for {marketplace} is already mapped to "
                        f"{earlier.shopify_sku!r} on line {earlier.line}; an offer has one Shopify SKU"
                    )
                continue  # the same line twice says nothing new
            seen[(marketplace, offer_sku)] = mapping
            mappings.append(mapping)
        if not header_seen and not problems:
            problems.append(f"the file is empty: write at least the header {','.join(HEADER)}")
        if problems:
            raise SkuMapError(f"invalid SKU mapping file {source}:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(tuple(mappings), source)

    def for_marketplace(self, code: str) -> SkuMap:
        """The exceptions that apply to marketplace `code` (its own lines over the `*` lines)."""
        chosen: dict[str, SkuMapping] = {}
        for scope in (EVERY_MARKETPLACE, code):
            for m in self.mappings:
                if m.marketplace == scope:
                    chosen[m.offer_sku] = m
        return SkuMap(
            {sku: m.shopify_sku for sku, m in chosen.items()}, self.source, {sku: m.line for sku, m in chosen.items()}
        )


def marketplace_sku_map(settings, marketplace) -> Optional[SkuMap]:
    """The exceptions of a configured marketplace (`stock.sku_map_file`, resolved like every data path)."""
    path = marketplace.stock.sku_map_file
    return load_sku_map(settings.resolve_path(path), marketplace.code) if path else None


def load_sku_map(path: Optional[str | Path], marketplace: str) -> Optional[SkuMap]:
    """The marketplace's exceptions from `path` (already resolved), or None when no file is configured."""
    return None if path is None else SkuMapFile.load(path).for_marketplace(marketplace)


__all__ = ["SkuMap", "SkuMapError", "SkuMapFile", "SkuMapping", "load_sku_map", "marketplace_sku_map"]
