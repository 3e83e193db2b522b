"""The Mirakl wire format: JSON with Decimal money as numbers, and ISO-8601 UTC date-times.

The standard `json` module can only write Decimals through float, which would lose the cents
this project cares about, so responses are written by a small encoder of our own.
"""

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def iso(moment: datetime) -> str:
    """Mirakl's date-time form: UTC, milliseconds, `Z` (e.g. 2019-04-02T14:58:22.460Z)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the sandbox only handles tz-aware UTC times")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(text: str, what: str) -> datetime:
    """Parse an ISO-8601 date-time (with `Z` or an offset); naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an ISO-8601 date-time (e.g. 2026-05-03T10:00:00.000Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_json(value: Any) -> bytes:
    """Serialise to JSON: Decimal as a number written from its exact text, datetime via `iso`."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode()


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write the non-finite amount {value} as JSON")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(json.dumps(value))  # only non-money values (e.g. rates given as floats by a caller)
    elif isinstance(value, datetime):
        out.append(_encode_string(iso(value)))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_encode_string(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def from_json(body: bytes, what: str) -> Any:
    """Parse a request body, money as Decimal; a clear ValueError when it is not JSON."""
    try:
        return json.loads(body or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{what}: the body is not valid JSON ({e})") from None
