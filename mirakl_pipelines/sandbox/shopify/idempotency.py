"""`@idempotent(key:)` on the mutations that require it since 2026-04 (NOTES §0, §3.5, §9.4).

- No directive on the field → a top-level error, `data.<field>: null` (captured text and code BAD_REQUEST).
- A key seen before with the same mutation and input → the first answer again, nothing done twice.
- A key seen before with another mutation or input → IDEMPOTENCY_KEY_PARAMETER_MISMATCH (the code is the
  SDL's; the message follows NOTES' quotation, the full captured text is not recorded).
Keys are kept for the store's life (Shopify's retention window is not documented in the reference).
"""

import json
from typing import Callable

from graphql import GraphQLError, GraphQLResolveInfo
from graphql.execution.values import get_directive_values

MISSING_DIRECTIVE = "The @idempotent directive is required for this mutation but was not provided."
KEY_MISMATCH = "The same idempotency key cannot be used with different operation parameters."


def idempotency_key(info: GraphQLResolveInfo) -> str:
    """The key of the field's @idempotent directive, or the captured BAD_REQUEST error."""
    directive = info.schema.get_directive("idempotent")
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values) if directive else None
    if not values or not values.get("key"):
        raise GraphQLError(MISSING_DIRECTIVE, info.field_nodes[0], extensions={"code": "BAD_REQUEST"})
    return values["key"]


def run_once(store, key: str, mutation: str, request: dict, run: Callable[[], dict], result_field: str) -> dict:
    """`run()`'s payload, or the payload stored for `key` when the same request came before; `result_field` is the
    payload's object field (null in a refusal)."""
    fingerprint = (mutation, json.dumps(request, sort_keys=True, default=str))
    with store.lock:
        seen = store.idempotency.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                return {result_field: None,
                        "userErrors": [{"field": None, "message": KEY_MISMATCH,
                                        "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"}]}
            return seen[1]
        payload = run()
        store.idempotency[key] = (fingerprint, payload)
        return payload
