"""Shared fixtures of the Shopify client tests."""

import pytest
from graphql import GraphQLSchema, build_ast_schema, parse

from mirakl_pipelines_tests.reference import reference_file


@pytest.fixture(scope="session")
def admin_schema() -> GraphQLSchema:
    """The Admin GraphQL 2026-07 schema from the saved SDL (3.8 MB: built once per test session/worker)."""
    sdl = reference_file("shopify/admin-2026-07.schema.graphql")
    return build_ast_schema(parse(sdl.read_text(encoding="utf-8"), no_location=True), assume_valid_sdl=True)
