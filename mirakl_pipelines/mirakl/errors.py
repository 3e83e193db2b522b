"""Typed errors of the Mirakl seller API, and the parser that turns an error response into one.

Mirakl answers errors in three shapes (NOTES §2.6): the classic ``{"status", "message"}``, the newer
``{"errors": [{"code", "field", "message"}]}``, or plain text. ``parse_error`` accepts all three and
picks the exception class from the status code, so callers branch on types, never on strings.
"""

import json
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Optional

import httpx

_CURRENT_STATUS = re.compile(r"Current status is\s*:?\s*'?([A-Z_]+)")
_INVALID_STATE_CODES = {"ORDER_INVALID_STATE"}
_MAX_MESSAGE_CHARS = 500


class MiraklError(Exception):
    """Base of every Mirakl client error: which operation, what status, what Mirakl said."""

    def __init__(
        self,
        operation: str,
        status: Optional[int],
        message: str,
        *,
        code: Optional[str] = None,
        body: str = "",
        errors: Optional[list[dict[str, Any]]] = None,
    ):
        self.operation = operation
        self.status = status
        self.message = message
        self.code = code
        self.body = body
        self.errors = errors or []
        # Set by the client when an earlier attempt of this same call got no usable answer (5xx, timeout, dropped
        # connection) and may have been applied: a 400 "wrong state" then may well be our own call's effect.
        self.after_unanswered_attempt = False
        super().__init__(self._describe())

    def _describe(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        code = f" [{self.code}]" if self.code else ""
        message = self.message if len(self.message) <= _MAX_MESSAGE_CHARS else self.message[:_MAX_MESSAGE_CHARS] + "…"
        return f"Mirakl {self.operation} failed ({status}){code}: {message}"


class MiraklAuthError(MiraklError):
    """401/403: the API key is wrong, revoked, or lacks the role the operation needs."""


class MiraklNotFound(MiraklError):
    """404: unknown order, offer, import…"""


class MiraklBadRequest(MiraklError):
    """A 4xx other than 401/403/404/429: the request is wrong and retrying it will not help."""


class MiraklInvalidState(MiraklBadRequest):
    """The order is not in a state that allows the operation (OR21 twice, OR24 outside SHIPPING)."""

    @property
    def current_status(self) -> Optional[str]:
        """The state Mirakl reports in "Current status is …", when it says so."""
        match = _CURRENT_STATUS.search(self.message) or _CURRENT_STATUS.search(self.body)
        return match.group(1) if match else None


class MiraklRateLimited(MiraklError):
    """429 still answered after the retries (or a Retry-After longer than the caller will wait)."""

    def __init__(self, *args: Any, retry_after: Optional[float] = None, **kwargs: Any):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class MiraklServerError(MiraklError):
    """5xx, timeout or broken connection, still failing after the retries. ``status`` is None without a response."""


class MiraklResponseError(MiraklError):
    """A 2xx whose body is not what the contract promises (not JSON, no 'orders' list…)."""


class MiraklOutcomeUnknown(MiraklError):
    """A write that is not idempotent (ST01) reached Mirakl but no usable answer came back (timeout, dropped
    connection, 5xx, unreadable 2xx): it may have taken effect. Never resent automatically, and not a
    MiraklServerError, so no generic retry resends it: look first (ST11), then send what is missing."""


class CallBudgetExceeded(MiraklError):
    """Calling now would break the operation's documented maximum call frequency by more than ``max_wait``.

    Nothing was sent (or, for its subclass MiraklRetryLater, Mirakl refused the call): callers leave the work
    for their next run."""

    def __init__(self, operation: str, wait: float, max_wait: float, key: str):
        self.wait = wait
        self.max_wait = max_wait
        self.key = key
        super().__init__(
            operation,
            None,
            f"the call budget {key!r} allows the next call in {wait:.1f} s, more than max_wait={max_wait:.1f} s; "
            "nothing was sent",
        )


class MiraklRetryLater(CallBudgetExceeded, MiraklRateLimited):
    """A 429 whose Retry-After is longer than the caller waits (``max_wait``): nothing was applied, and retrying
    sooner is pointless. A CallBudgetExceeded, so every caller that leaves a refused slot for its next run
    does the same here; ``retry_after`` is Mirakl's figure (API seconds), ``wait`` the client's (scaled)."""

    def __init__(self, operation: str, *, retry_after: float, wait: float, max_wait: float, key: str,
                 api_max_wait: float, body: str = ""):
        self.retry_after = retry_after
        self.wait = wait
        self.max_wait = max_wait
        self.key = key
        MiraklError.__init__(
            self, operation, 429,
            f"Mirakl asked to wait {retry_after:.0f} s (Retry-After) before calling {operation} again "
            f"({key!r}), longer than this caller waits ({api_max_wait:.0f} s); nothing was applied, "
            "left for the next run",
            body=body,
        )


def parse_retry_after(value: Optional[str], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class MiraklDocumentRejected(MiraklError):
    """OR74 answered 200 but listed documents in error (Mirakl reports per-document errors inside a 200)."""

    @property
    def already_uploaded(self) -> bool:
        """Every error says the file name is already on the order: an earlier attempt went through."""
        return bool(self.errors) and all(e.get("code") == "valid_order_document.file_name.duplicate" for e in self.errors)


def parse_error(operation: str, response: httpx.Response) -> MiraklError:
    """Build the typed error for a non-2xx response, whatever the body shape."""
    status = response.status_code
    body = response.text
    message, code, errors = _read_body(body)
    if not message:
        message = response.reason_phrase or f"HTTP {status}"
    kwargs: dict[str, Any] = {"code": code, "body": body, "errors": errors}

    if status in (401, 403):
        return MiraklAuthError(operation, status, message, **kwargs)
    if status == 404:
        return MiraklNotFound(operation, status, message, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return MiraklRateLimited(operation, status, message, retry_after=retry_after, **kwargs)
    if 400 <= status < 500:
        codes = {code} | {e.get("code") for e in errors}
        if codes & _INVALID_STATE_CODES or _CURRENT_STATUS.search(message):
            return MiraklInvalidState(operation, status, message, **kwargs)
        return MiraklBadRequest(operation, status, message, **kwargs)
    if status >= 500:
        return MiraklServerError(operation, status, message, **kwargs)
    return MiraklError(operation, status, message, **kwargs)


def _read_body(body: str) -> tuple[str, Optional[str], list[dict[str, Any]]]:
    """(message, code, field errors) from an error body; the raw text when it is not a known JSON shape."""
    text = body.strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return text, None, []
    if isinstance(data, dict):
        raw_errors = data.get("errors")
        if isinstance(raw_errors, list) and raw_errors:
            errors = [e if isinstance(e, dict) else {"message": str(e)} for e in raw_errors]
            message = "; ".join(_describe_field_error(e) for e in errors)
            code = next((str(e["code"]) for e in errors if e.get("code")), None)
            return message, code, errors
        if data.get("message") is not None:
            code = data.get("code")
            return str(data["message"]), (str(code) if code is not None else None), []
    return text, None, []


def _describe_field_error(error: dict[str, Any]) -> str:
    parts = [str(error.get("message") or error.get("code") or "error")]
    if error.get("field"):
        parts.insert(0, f"{error['field']}:")
    if error.get("code") and error.get("message"):
        parts.append(f"({error['code']})")
    return " ".join(parts)
