"""The STO01 stock import file we send, and the STO03 error report Mirakl sends back.

STO01 (spec, `POST /api/offers/stock/imports`, part `file`): CSV, UTF-8, `;`-separated, header
`"offer-sku";"quantity";"warehouse-code";"update-delete"`, one line per offer. We publish a global quantity, so
`warehouse-code` is empty ("If warehouse-code is not provided, the quantity provided for the offer-sku will be
considered as a global one") and `update-delete` is `update`. Every field is quoted (quotes doubled), so a SKU
holding `;` or `"` survives; a SKU holding a line break is refused, because it would shift the line numbers
the error report refers to.

STO03 (spec): "The first column contains the line number in error. The second column contains the error
reason." Line numbers count the file we sent with its header as line 1, so line n is the (n−1)th offer line,
`sent_skus[n - 2]` — an assumption (Mirakl does not say; it matches the OF01 report's example, where data
starts at line 2).
"""

import csv
import io
import re
from dataclasses import dataclass
from itertools import repeat
from typing import Optional, Sequence

import pandas as pd

HEADER = ("offer-sku", "quantity", "warehouse-code", "update-delete")
_INT = re.compile(r"^[ \t]*[0-9]+[ \t]*$")  # ASCII: int() refuses some characters `\s` and `\d` accept
_HEADER_WORD = re.compile(r"^[A-Za-z][A-Za-z _-]{0,39}$")
NO_REASON = "(the error report gives no reason)"


class StockFileError(ValueError):
    """A stock file cannot be written or read; the message names the line or the SKU."""


def stock_import_csv(lines: pd.DataFrame) -> bytes:
    """The STO01 file for `lines` (offer_sku, quantity), in the order given (`changed_lines` sorts them)."""
    skus = pd.array(lines["offer_sku"], dtype="string")
    quantities = pd.array(lines["quantity"], dtype="Int64")
    missing = pd.isna(skus) | pd.isna(quantities)
    if missing.any():
        raise StockFileError(f"stock lines {list(missing.nonzero()[0][:10])} lack an offer SKU or a quantity")
    sku_series = pd.Series(skus, dtype="string")
    quantities = quantities.to_numpy(dtype="int64")
    problems = [f"{sku!r}: {what}" for what, mask in (
        ("empty offer SKU", sku_series.eq("").to_numpy(dtype=bool)),
        ("a line break in the offer SKU", sku_series.str.contains(r"[\r\n]").to_numpy(dtype=bool)),
        ("negative quantity", quantities < 0),
        ("listed twice", sku_series.duplicated().to_numpy(dtype=bool)),
    ) for sku in sku_series[mask]]
    if problems:
        raise StockFileError("cannot write the stock file: " + "; ".join(problems[:10]))
    skus = sku_series.tolist()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(zip(skus, quantities.tolist(), repeat(""), repeat("update")))
    return out.getvalue().encode("utf-8")


def parse_stock_import_csv(data: bytes) -> list[tuple[str, int]]:
    """(offer-sku, quantity) of each line of an STO01 file as `stock_import_csv` writes it; StockFileError otherwise."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";")
    header = next(reader, None)
    if header is None or tuple(header) != HEADER:
        raise StockFileError(f"line 1: expected the header {';'.join(HEADER)}, got {header!r}")
    out: list[tuple[str, int]] = []
    for row in reader:
        if len(row) != len(HEADER) or not _INT.match(row[1]) or row[2] or row[3] not in ("", "update"):
            raise StockFileError(f"line {reader.line_num}: not an offer-sku;quantity;;update line: {row!r}")
        out.append((row[0], int(row[1])))
    return out


@dataclass(frozen=True)
class StockLineError:
    """One line of the stock file Mirakl refused (or a record of its report that could not be read)."""

    line_number: Optional[int]  # in the file sent, header = 1; None when the report's record is unreadable
    offer_sku: Optional[str]  # None when the line number is not an offer line of the file sent
    reason: str


def parse_error_report(data: bytes, sent_skus: Sequence[str]) -> list[StockLineError]:
    """Every record of an STO03 report, in order, as a StockLineError (see the module docstring for line numbers).

    Tolerant: a BOM, `;` or `,` as delimiter, a header row (whose `offer-sku`/`error-line`/`error-message`
    columns are used when named), quoted reasons spanning lines. A record whose line number cannot be read
    becomes an entry naming it rather than an exception, so the others are never lost.
    """
    text = data.decode("utf-8-sig", errors="replace")
    delimiter = max((";", ","), key=lambda d: _score(text, d))  # `;` wins a tie: it is Mirakl's delimiter
    records = _records(text, delimiter)
    line_col, reason_col, sku_col = 0, 1, None
    if records and _is_header(records[0][1]):
        line_col, reason_col, sku_col = _columns(records[0][1])
        records = records[1:]
    out: list[StockLineError] = []
    for start, fields in records:
        if fields is None or len(fields) <= line_col or not _INT.match(fields[line_col]):
            shown = fields if fields is not None else "(unparseable CSV)"
            out.append(StockLineError(None, None, f"error report record at line {start} has no readable line "
                                                  f"number: {shown!r}"))
            continue
        number = int(fields[line_col])
        reason = (fields[reason_col].strip() if len(fields) > reason_col else "") or NO_REASON
        sku = fields[sku_col] if sku_col is not None and len(fields) > sku_col and fields[sku_col] else None
        if sku is None and 2 <= number <= len(sent_skus) + 1:
            sku = sent_skus[number - 2]
        elif sku is None:
            reason += f" (line {number} is not an offer line of the file sent, which had {len(sent_skus)})"
        out.append(StockLineError(number, sku, reason))
    return out


def _records(text: str, delimiter: str) -> list[tuple[int, Optional[list[str]]]]:
    """(first physical line, fields) of each non-blank record; fields None where the csv module gave up."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, Optional[list[str]]]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return records
        except csv.Error:  # e.g. a field over the csv module's size limit: name it, read on
            records.append((start, None))
            start = reader.line_num + 1
            continue
        if any(field.strip() for field in row):
            records.append((start, row))
        start = reader.line_num + 1


def _score(text: str, delimiter: str) -> tuple[int, int]:
    """(records starting with a line number, records of several fields) when `text` is split on `delimiter`."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if len(row) >= 2]
    except csv.Error:
        return -1, -1
    return sum(1 for row in rows if _INT.match(row[0])), len(rows)


def _is_header(fields: Optional[list[str]]) -> bool:
    return bool(fields) and len(fields) >= 2 and all(_HEADER_WORD.match(f.strip()) for f in fields if f.strip())


def _columns(header: list[str]) -> tuple[int, int, Optional[int]]:
    """Indexes of the line number, the reason and the offer SKU in a named header (spec order by default)."""
    names = [h.strip().lower().replace("_", "-") for h in header]
    line_col = next((i for i, n in enumerate(names) if "line" in n), 0)
    reason_col = next(
        (i for i, n in enumerate(names) if i != line_col and any(w in n for w in ("message", "reason", "error"))),
        1 if line_col == 0 else 0,
    )
    sku_col = next((i for i, n in enumerate(names) if n in ("offer-sku", "sku", "shop-sku")), None)
    return line_col, reason_col, sku_col


__all__ = [
    "HEADER", "StockFileError", "StockLineError", "parse_error_report", "parse_stock_import_csv", "stock_import_csv",
]
