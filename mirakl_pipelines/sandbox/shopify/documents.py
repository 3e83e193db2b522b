"""Parsing, validation and variable checking of GraphQL documents, with Shopify-shaped errors.

Parsed and validated documents are cached by their text: a client sends the same few documents
thousands of times, and the sandbox must never be what a benchmark measures.
"""

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    get_operation_ast,
    parse,
    print_ast,
    type_from_ast,
    validate,
)
from graphql.language import get_location
from graphql.utilities import coerce_input_value


@dataclass(frozen=True)
class PreparedDocument:
    document: DocumentNode | None
    errors: tuple[dict, ...]  # Shopify-shaped top-level errors; empty when the document is valid


class DocumentCache:
    """Text → parsed and validated document (bounded LRU, thread-safe)."""

    def __init__(self, schema: GraphQLSchema, max_entries: int = 512):
        self.schema = schema
        self.max_entries = max_entries
        self._entries: OrderedDict[str, PreparedDocument] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def prepare(self, text: str) -> PreparedDocument:
        with self._lock:
            cached = self._entries.get(text)
            if cached is not None:
                self._entries.move_to_end(text)
                self.hits += 1
                return cached
        prepared = self._prepare_uncached(text)
        with self._lock:
            self.misses += 1
            self._entries[text] = prepared
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return prepared

    def _prepare_uncached(self, text: str) -> PreparedDocument:
        try:
            document = parse(text)
        except GraphQLError as error:
            return PreparedDocument(None, (_syntax_error(error),))
        errors = validate(self.schema, document)
        if errors:
            return PreparedDocument(None, tuple(_validation_error(e, document) for e in errors))
        return PreparedDocument(document, ())


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | dict:
    """The operation to run, or a Shopify-shaped error when the name is ambiguous or unknown."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        if operation_name:
            message = f'No operation named "{operation_name}"'
        else:
            message = "An operation name is required when the document contains several operations"
        return {"message": message, "extensions": {"code": "OPERATION_NOT_FOUND"}}
    return operation


def check_variables(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict) -> list[dict]:
    """Coerce variables like Shopify does before executing: INVALID_VARIABLE errors with `value` and `problems`."""
    errors = []
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        var_type = type_from_ast(schema, definition.type)
        type_text = print_ast(definition.type)
        location = _location(definition)
        if name not in variables:
            if isinstance(var_type, GraphQLNonNull) and definition.default_value is None:
                errors.append({
                    "message": f"Variable ${name} of type {type_text} was provided invalid value",
                    "locations": location,
                    "extensions": {"code": "INVALID_VARIABLE", "value": None,
                                   "problems": [{"path": [], "explanation": "Expected value to not be null"}]},
                })
            continue
        value = variables[name]
        problems: list[dict] = []

        def on_error(path, _invalid, error, problems=problems):
            problems.append(_problem(list(path), error.message))

        coerce_input_value(_floats_for_float_inputs(value, var_type), var_type, on_error)
        if problems:
            where = ", ".join(".".join(str(p) for p in problem["path"]) for problem in problems if problem["path"])
            first = problems[0]["explanation"]
            message = f"Variable ${name} of type {type_text} was provided invalid value"
            if where:
                message += f" for {where} ({first})"
            errors.append({
                "message": message,
                "locations": location,
                "extensions": {"code": "INVALID_VARIABLE", "value": value, "problems": problems},
            })
    return errors


def floats_for_float_inputs(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict) -> dict:
    """Request JSON is read with Decimal numbers (money); GraphQL `Float` inputs still need floats."""
    converted = dict(variables)
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        if name in converted:
            converted[name] = _floats_for_float_inputs(converted[name], type_from_ast(schema, definition.type))
    return converted


def _floats_for_float_inputs(value, type_):
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if value is None:
        return None
    if isinstance(type_, GraphQLList):
        if isinstance(value, list):
            return [_floats_for_float_inputs(v, type_.of_type) for v in value]
        return _floats_for_float_inputs(value, type_.of_type)
    if isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
        return {
            key: _floats_for_float_inputs(v, type_.fields[key].type) if key in type_.fields else v
            for key, v in value.items()
        }
    if getattr(type_, "name", None) == "Float" and isinstance(value, Decimal):
        return float(value)
    return value


_NOT_DEFINED = re.compile(r"Field '(\w+)' is not defined by type '(\w+)'")
_REQUIRED_MISSING = re.compile(r"Field '(\w+)' of required type '([^']+)' was not provided")


def _problem(path: list, message: str) -> dict:
    """graphql-core's coercion messages rewritten to Shopify's `problems[].explanation` wording."""
    if m := _NOT_DEFINED.search(message):
        return {"path": path + [m.group(1)], "explanation": f"Field is not defined on {m.group(2)}"}
    if m := _REQUIRED_MISSING.search(message):
        return {"path": path + [m.group(1)], "explanation": "Expected value to not be null"}
    if "not to be null" in message:
        return {"path": path, "explanation": "Expected value to not be null"}
    return {"path": path, "explanation": message.rstrip(".")}


def _location(node) -> list[dict]:
    if node.loc is None:
        return []
    loc = get_location(node.loc.source, node.loc.start)
    return [{"line": loc.line, "column": loc.column}]


def _error_locations(error: GraphQLError) -> list[dict]:
    return [{"line": loc.line, "column": loc.column} for loc in (error.locations or [])]


def _syntax_error(error: GraphQLError) -> dict:
    # Shopify (graphql-ruby) words parse errors as "syntax error, unexpected …"; the detail is graphql-core's.
    detail = error.message.removeprefix("Syntax Error: ")
    return {"message": f"syntax error, {detail}", "locations": _error_locations(error),
            "extensions": {"code": "syntaxError"}}


_UNDEFINED_FIELD = re.compile(r"Cannot query field '(\w+)' on type '(\w+)'")
_MISSING_ARGUMENT = re.compile(r"Field '(\w+)' argument '(\w+)' of type '[^']+' is required, but it was not provided")
_UNKNOWN_ARGUMENT = re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'")
_UNDEFINED_TYPE = re.compile(r"Unknown type '(\w+)'")
_BAD_LITERAL = re.compile(r"Expected value of type '([^']+)', found (.+?);? ")


def _validation_error(error: GraphQLError, document: DocumentNode) -> dict:
    """A graphql-core validation error in the shape and with the codes Shopify (graphql-ruby) uses."""
    message = error.message
    extensions: dict = {"code": "GRAPHQL_VALIDATION_FAILED"}
    if m := _UNDEFINED_FIELD.search(message):
        field, type_name = m.groups()
        message = f"Field '{field}' doesn't exist on type '{type_name}'"
        extensions = {"code": "undefinedField", "typeName": type_name, "fieldName": field}
    elif m := _MISSING_ARGUMENT.search(message):
        field, argument = m.groups()
        message = f"Field '{field}' is missing required arguments: {argument}"
        extensions = {"code": "missingRequiredArguments", "className": "Field", "name": field, "arguments": argument}
    elif m := _UNKNOWN_ARGUMENT.search(message):
        argument, type_name, field = m.groups()
        message = f"Field '{field}' doesn't accept argument '{argument}'"
        extensions = {"code": "argumentNotAccepted", "name": field, "typeName": "Field", "argumentName": argument}
    elif m := _UNDEFINED_TYPE.search(message):
        message = f"{m.group(1)} isn't a defined input type"
        extensions = {"code": "variableRequiresValidType", "typeName": m.group(1)}
    elif _BAD_LITERAL.search(message):
        extensions = {"code": "argumentLiteralsIncompatible", "typeName": "Field"}
    result = {"message": message, "locations": _error_locations(error)}
    path = _operation_path(error, document)
    if path:
        result["path"] = path
    result["extensions"] = extensions
    return result


def _operation_path(error: GraphQLError, document: DocumentNode) -> list[str]:
    """Shopify prefixes validation paths with the operation ("query Name"); graphql-core gives none, so name the operation only."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or not error.nodes:
        return []
    operation = operations[0]
    label = operation.operation.value + (f" {operation.name.value}" if operation.name else "")
    return [label]
