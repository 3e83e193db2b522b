"""The Admin GraphQL schema the sandbox executes, built once per process from the saved SDL.

The SDL (3.8 MB) is the contract and lives in ../shared/reference/; it is never copied into the
repo. Building it takes ~1.5 s, so the schema is cached at module level. Pickling the built schema
was measured slower to load (~1.9 s) than parsing without locations and building with
`assume_valid_sdl` (~1.4 s), so there is no disk cache.
"""

import os
import threading
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from graphql import GraphQLSchema, build_ast_schema, parse
from graphql.language import StringValueNode, IntValueNode, FloatValueNode

SDL_ENV_VAR = "MIRAKL_PIPELINES_SHOPIFY_SDL"
SDL_FILE_NAME = "admin-2026-07.schema.graphql"

_build_lock = threading.Lock()


def shopify_sdl_path() -> Path:
    """Where the Admin GraphQL SDL is: $MIRAKL_PIPELINES_SHOPIFY_SDL, else ../shared/reference/shopify/ beside the project."""
    override = os.environ.get(SDL_ENV_VAR)
    if override:
        return Path(override)
    project_root = Path(__file__).resolve().parents[3]
    return project_root.parent / "shared" / "reference" / "shopify" / SDL_FILE_NAME


def shopify_schema() -> GraphQLSchema:
    """The executable schema (built on first use, then shared by every store and thread)."""
    with _build_lock:
        return _build_schema(str(shopify_sdl_path()))


@lru_cache(maxsize=2)
def _build_schema(path: str) -> GraphQLSchema:
    sdl = Path(path)
    if not sdl.exists():
        raise FileNotFoundError(
            f"Shopify Admin GraphQL SDL not found at {sdl}: the sandbox needs ../shared/reference/shopify/{SDL_FILE_NAME} "
            f"beside the project, or ${SDL_ENV_VAR} pointing at a copy"
        )
    schema = build_ast_schema(parse(sdl.read_text(encoding="utf-8"), no_location=True), assume_valid_sdl=True)
    _make_decimal_scalar_exact(schema)
    return schema


def _make_decimal_scalar_exact(schema: GraphQLSchema) -> None:
    """Shopify's `Decimal` arrives as a string (or a JSON number); keep it as `Decimal`, never float.

    An empty string passes through unchanged: Shopify answers it with a userError
    (e.g. TAX_LINE_RATE_MISSING), not a GraphQL error.
    """
    decimal_type = schema.type_map["Decimal"]

    def parse_value(value):
        if value == "":
            return ""
        if isinstance(value, bool):
            raise ValueError(f"Decimal cannot represent a boolean: {value!r}")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"invalid Decimal value {value!r}") from None

    def parse_literal(node, _variables=None):
        if isinstance(node, (StringValueNode, IntValueNode, FloatValueNode)):
            return parse_value(node.value)
        raise ValueError("Decimal must be a string or a number")

    decimal_type.parse_value = parse_value
    decimal_type.parse_literal = parse_literal
    decimal_type.serialize = lambda value: str(value)
