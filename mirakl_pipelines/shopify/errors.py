"""Typed failures of the Shopify Admin GraphQL client.

Callers branch on the class, never on message text: an auth problem stops a run, a user error is a
data problem for the exception queue, a throttle or server error is worth a later retry, and an
ambiguous write must be reconciled (was the order created or not?) before anything is resent.
"""

from typing import Any, Optional


class ShopifyError(Exception):
    """Base class: `.operation` is the GraphQL operation name, `.message` a readable reason."""

    def __init__(self, operation: str, message: str, *, status_code: Optional[int] = None):
        self.operation = operation
        self.message = message
        self.status_code = status_code
        super().__init__(f"Shopify {operation}: {message}")


class ShopifyAuthError(ShopifyError):
    """HTTP 401/403 or a top-level ACCESS_DENIED error: bad token or a missing access scope."""


class ShopifyGraphQLError(ShopifyError):
    """Top-level `errors` (validation, INVALID_VARIABLE, MAX_COST_EXCEEDED, BAD_REQUEST, …)."""

    def __init__(self, operation: str, errors: list[dict], *, status_code: Optional[int] = None,
                 data: Optional[dict] = None):
        self.errors = errors
        self.data = data
        super().__init__(operation, describe_errors(errors), status_code=status_code)

    @property
    def codes(self) -> list[str]:
        return [str((e.get("extensions") or {}).get("code")) for e in self.errors]


class ShopifyUserError(ShopifyError):
    """A mutation answered with `userErrors` (or `<x>UserErrors`): the input was refused.

    `.user_errors` is `[{"field": [...] | None, "message": str, "code": str | None}]`;
    `.data` is the mutation payload as returned (it may carry partial results).
    """

    def __init__(self, operation: str, user_errors: list[dict], *, data: Optional[dict] = None):
        self.user_errors = [
            {"field": e.get("field"), "message": e.get("message"), "code": e.get("code")} for e in user_errors
        ]
        self.data = data
        super().__init__(operation, "; ".join(_describe_user_error(e) for e in self.user_errors))

    @property
    def codes(self) -> list[Optional[str]]:
        return [e["code"] for e in self.user_errors]


class ShopifyNotFound(ShopifyError):
    """The answer names no such resource (e.g. `order(id:)` is null): a wrong id, or one deleted in Shopify."""


class ShopifyThrottled(ShopifyError):
    """Still THROTTLED (200 + THROTTLED, or HTTP 429) after the allowed retries."""


class ShopifyServerError(ShopifyError):
    """5xx answers, unreadable bodies or transport failures (timeouts, dropped connections) after retries."""


class ShopifyAmbiguousWrite(ShopifyServerError):
    """A non-idempotent mutation may or may not have been applied: the request left, no answer came back.

    Never resend blindly; reconcile first (for orderCreate: look the order up by its unique order reference).
    """


class ShopifySetupError(ShopifyError):
    """The store lacks something the connector needs and cannot set up itself (e.g. a unique order reference
    definition): the message names the store and what an operator must do."""


def describe_errors(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        path = error.get("path")
        text = str(error.get("message", error))
        if path:
            text += f" (at {'.'.join(str(p) for p in path)})"
        parts.append(f"[{code}] {text}" if code else text)
    return "; ".join(parts) or "unspecified error"


def _describe_user_error(error: dict[str, Any]) -> str:
    field = error.get("field")
    where = ".".join(str(f) for f in field) if field else "input"
    code = f" [{error['code']}]" if error.get("code") else ""
    return f"{where}: {error.get('message')}{code}"
