"""Mirakl's official seller OpenAPI spec, as every contract and property test reads it.

The spec's schemas are used as published, with two adjustments derived from the spec itself:
- nulls: the spec's own examples carry nulls on optional fields (order_state_reason_code, quote_id…)
  and its descriptions say required fields such as customer.shipping_address are "Null before
  shipping (or acceptance…)"; so a property may be null when it is optional or its description
  says so. Required fields without such a note must be present and non-null.
- enums: the spec writes enums in descriptions ("Enum: `"A"`, `"B"`"); they are made real `enum`s
  (deprecated values included), so an unknown state or tax mode fails validation.

Tests that need the file skip, saying why, where ../shared/ is absent (see reference.py).
"""

import copy
import json
import re
from functools import lru_cache

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mirakl_pipelines_tests.reference import reference_file

SPEC_FILE = "mirakl/mirakl-mmp-seller-openapi.json"
SPEC_URI = "urn:mirakl:mmp-seller-openapi"
# The classic MMP error body (NOTES §2.6a): the spec declares no 4xx for most operations.
CLASSIC_ERROR = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"type": "integer"}, "message": {"type": "string", "minLength": 1}, "code": {"type": "string"}},
}
_ENUM = re.compile(r"`\"([A-Za-z0-9_]+)\"`")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def enum_values(description: str) -> list[str] | None:
    """The values of an "Enum: `"A"`, `"B"`" note in a description (deprecated values included), or None."""
    if "Enum:" not in description:
        return None
    return _ENUM.findall(description[description.index("Enum:"):]) or None


def prepare(schema: dict) -> None:
    """Apply the two documented adjustments to one object schema, in place."""
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        description = prop.get("description", "")
        values = enum_values(description) if prop.get("type") == "string" else None
        if values:
            prop["enum"] = values
        nullable = name not in required or re.search(r"\bnull\b", description, re.IGNORECASE)
        if not nullable:
            continue
        if "$ref" in prop:
            ref = prop.pop("$ref")
            prop["anyOf"] = [{"$ref": ref}, {"type": "null"}]
        elif isinstance(prop.get("type"), str):
            prop["type"] = [prop["type"], "null"]
            if "enum" in prop:
                prop["enum"] = prop["enum"] + [None]


def load_spec() -> dict:
    """The spec as published (shared, do not modify; skips the calling test where ../shared/ is absent)."""
    return _load(str(reference_file(SPEC_FILE)))


def prepared_spec() -> dict:
    """The spec with every component schema adjusted (shared, do not modify)."""
    path = reference_file(SPEC_FILE)  # skip first: the cache must never hide an absent file
    return _prepared(str(path))


def registry() -> Registry:
    return _registry(str(reference_file(SPEC_FILE)))


def format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(_RFC3339.match(value)))
    return checker


def schema_ref(component: str) -> dict:
    """A schema pointing at one component of the prepared spec, e.g. schema_ref("OR11_Response_200")."""
    return {"$ref": f"{SPEC_URI}#/components/schemas/{component}"}


def validation_errors(schema: dict, instance) -> list[str]:
    """What is wrong with `instance` against `schema` (resolved in the prepared spec), worst paths first."""
    validator = Draft202012Validator(schema, registry=registry(), format_checker=format_checker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def validate(schema: dict, instance) -> None:
    errors = validation_errors(schema, instance)
    assert not errors, "\n".join(errors[:10])


@lru_cache(maxsize=1)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def _prepared(path: str) -> dict:
    prepared = copy.deepcopy(_load(path))
    for schema in prepared["components"]["schemas"].values():
        prepare(schema)
    return prepared


@lru_cache(maxsize=1)
def _registry(path: str) -> Registry:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(_prepared(path), default_specification=DRAFT202012))


def declared_content(operation: str, method: str, path: str, response) -> dict | None:
    """Check a sandbox response's status against the spec's declared responses of (method, path): an error
    (>= 400, undeclared) must be the classic body; a success must be declared. Returns the declared content
    (media type → {schema}) of a success with a body, None for an error or an empty success (then checked here)."""
    declared = load_spec()["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)
    if response.status_code >= 400:
        assert status not in declared, f"{operation} declares {status}: validate against its schema instead"
        validate(CLASSIC_ERROR, response.json())
        assert response.json()["status"] == response.status_code
        return None
    assert status in declared, f"{operation} answered {status}, which the spec does not declare ({sorted(declared)})"
    content = declared[status].get("content")
    if content is None:
        assert response.content == b"", f"{operation} {status} must have no body"
    return content
