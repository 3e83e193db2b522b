"""Bulk query operations of the sandbox store (NOTES §6; fixtures `bulk-operations__*`, API 2026-04).

`bulkOperationRunQuery(query:)` checks the submitted query with the recorded validator messages, then the
operation goes CREATED → RUNNING → COMPLETED over `StoreSettings.bulk_operation_seconds` (captured: about a
second for a small query), or FAILED with `bulk_operation_failure` as its errorCode. Completing executes the
query for real: graphql-core over the same schema and resolvers as a request, with page sizes lifted (a bulk
query selects its connections without `first`), 5,000 root nodes per execution, and writes the result as
Shopify's JSONL: one object per line, nested connection nodes on lines of their own carrying `__parentId`
(the id of the enclosing connection node), each parent before its children. The file is served by the sandbox app at
`/_sandbox/bulk/{number}.jsonl`, the operation's `url`.

Up to five query operations may be unfinished at once per shop since 2026-01 (one before): the sixth is
refused with the captured OPERATION_IN_PROGRESS message listing the running ids. `groupObjects: true` is
accepted but the output stays flat (the connector never asks for grouping).
A knob applies `bulk_changes_while_running` random adjustments right after the data is read, before the
operation reports COMPLETED: the file is then older than the store ("quantities changing mid-push"), and the
adjustments publish their `inventory_levels/update` webhooks as any other change does.
"""

import copy
import json
import logging
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from graphql import (
    ArgumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    execute,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)

if TYPE_CHECKING:
    from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

log = logging.getLogger(__name__)

TERMINAL = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
MAX_CONNECTIONS = 5
MAX_NESTING_DEPTH = 2
FIVE_AT_ONCE_SINCE = "2026-01"
ERROR_CODES = ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT")
RESULT_PATH = "/_sandbox/bulk/{number}.jsonl"

# Captured validator messages (bulk-operation-run-query-validators).
INVALID_OPERATION_TYPE = "Invalid operation type. Only `query` operations are supported."
TOP_LEVEL_NODE = "Bulk queries cannot contain a top level `node` field."
NO_CONNECTION = "Bulk queries must contain at least one connection."
TOO_MANY_CONNECTIONS = f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
TOO_DEEP = f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_NESTING_DEPTH}."
CONNECTION_IN_LIST = "Queries that contain a connection field within a list field are not currently supported."
IN_PROGRESS = "A bulk query operation for this app and shop is already in progress: {ids}."


def _nodes_message(names: list[str]) -> str:
    return (f"All connection fields in a bulk query must select their contents using 'edges' > 'node', e.g: "
            f"'{names[0]} {{ edges {{ node {{'. Selecting via 'nodes' is not supported. "
            f"Invalid connection fields: {', '.join(repr(n) for n in names)}.")


def _parent_id_message(names: list[str]) -> str:
    return ("The parent 'node' field for a nested connection must select the 'id' field without an alias and must be "
            f"of 'ID' return type. Connection fields without 'id': {', '.join(names)}.")


def _invalid(message: str) -> dict:
    return {"field": ["query"], "message": message, "code": "INVALID"}


# --- validation -----------------------------------------------------------------------------------

def _fields(selection_set, fragments: dict):
    """Field nodes of a selection set, fragments flattened (with the type condition of inline ones, if any)."""
    for selection in (selection_set.selections if selection_set else ()):
        if isinstance(selection, FieldNode):
            yield selection, None
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            yield from ((f, condition or c) for f, c in _fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            fragment = fragments[selection.name.value]
            yield from ((f, fragment.type_condition.name.value) for f, _ in _fields(fragment.selection_set, fragments))


def _is_connection(type_) -> bool:
    return get_named_type(type_).name.endswith("Connection")


def _child(selection_set, name: str, fragments: dict) -> FieldNode | None:
    return next((f for f, _ in _fields(selection_set, fragments) if f.name.value == name), None)


class _Shape:
    def __init__(self):
        self.connections = 0
        self.max_depth = 0
        self.via_nodes: list[str] = []
        self.without_id: list[str] = []
        self.in_list = False


def _walk(schema: GraphQLSchema, selection_set, parent_type, fragments, shape: _Shape, depth: int, in_list: bool,
          parent_connection: str | None, parent_has_id: bool) -> None:
    for field, condition in _fields(selection_set, fragments):
        owner = schema.get_type(condition) if condition else parent_type
        definition = getattr(owner, "fields", {}).get(field.name.value)
        if definition is None:
            continue
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            continue
        if _is_connection(definition.type):
            shape.connections += 1
            shape.max_depth = max(shape.max_depth, depth)
            shape.in_list |= in_list
            if parent_connection is not None and not parent_has_id and parent_connection not in shape.without_id:
                shape.without_id.append(parent_connection)
            edges = _child(field.selection_set, "edges", fragments)
            node = _child(edges.selection_set, "node", fragments) if edges else None
            nodes = _child(field.selection_set, "nodes", fragments)
            if nodes is not None and node is None:
                shape.via_nodes.append(field.name.value)
            node_type = get_named_type(named.fields["nodes"].type) if "nodes" in named.fields else None
            for inner in (node, nodes):
                if inner is not None and node_type is not None:
                    has_id = any(f.name.value == "id" and f.alias is None
                                 for f, _ in _fields(inner.selection_set, fragments))
                    _walk(schema, inner.selection_set, node_type, fragments, shape, depth + 1, False,
                          field.name.value, has_id)
        else:
            listed = isinstance(definition.type, GraphQLList) or (
                isinstance(definition.type, GraphQLNonNull) and isinstance(definition.type.of_type, GraphQLList))
            _walk(schema, field.selection_set, named, fragments, shape, depth, in_list or listed, parent_connection,
                  parent_has_id)


def validate_bulk_query(schema: GraphQLSchema, text: str) -> list[dict]:
    """The userErrors Shopify gives for a bulk query (empty when it may run)."""
    try:
        document = parse(text)
    except GraphQLError as e:  # not captured: a syntax error's wording in a bulk query
        return [_invalid(f"Invalid bulk query: {e.message}")]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operations and operations[0].operation != OperationType.QUERY:
        return [_invalid(INVALID_OPERATION_TYPE)]
    problems = validate(schema, document)
    if problems or len(operations) != 1:  # not captured: the wording for a query the schema refuses
        detail = problems[0].message if problems else "a bulk query must hold exactly one operation"
        return [_invalid(f"Invalid bulk query: {detail}")]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = operations[0]
    errors = []
    if any(f.name.value == "node" for f, _ in _fields(operation.selection_set, fragments)):
        errors.append(_invalid(TOP_LEVEL_NODE))
    shape = _Shape()
    _walk(schema, operation.selection_set, schema.query_type, fragments, shape, 0, False, None, True)
    if shape.connections == 0:
        errors.append(_invalid(NO_CONNECTION))
    if shape.connections > MAX_CONNECTIONS:
        errors.append(_invalid(TOO_MANY_CONNECTIONS))
    if shape.max_depth > MAX_NESTING_DEPTH:
        errors.append(_invalid(TOO_DEEP))
    if shape.via_nodes:
        errors.append(_invalid(_nodes_message(shape.via_nodes)))
    if shape.without_id:
        errors.append(_invalid(_parent_id_message(shape.without_id)))
    if shape.in_list:
        errors.append(_invalid(CONNECTION_IN_LIST))
    return errors


# --- JSONL ----------------------------------------------------------------------------------------

class _Flattener:
    """Shopify's JSONL from an executed bulk query's data: one line per connection node."""

    def __init__(self, schema: GraphQLSchema, fragments: dict, write):
        self.schema = schema
        self.fragments = fragments
        self.write = write
        self.objects = 0
        self.roots = 0

    def root(self, operation: OperationDefinitionNode, data: dict) -> None:
        for field, _ in _fields(operation.selection_set, self.fragments):
            definition = self.schema.query_type.fields.get(field.name.value)
            if definition is not None and _is_connection(definition.type):
                self.connection(data.get(_key(field)), field, get_named_type(definition.type), None)

    def connection(self, value: dict | None, field: FieldNode, connection_type, parent_id: str | None) -> None:
        edges = _child(field.selection_set, "edges", self.fragments)
        node_field = _child(edges.selection_set, "node", self.fragments) if edges else None
        if not value or node_field is None:
            return
        node_type = get_named_type(connection_type.fields["nodes"].type)
        for edge in value.get(_key(edges)) or []:
            node = edge.get(_key(node_field))
            if node is None:
                continue
            nested: list[tuple] = []
            line = self.split(node, node_field.selection_set, node_type, nested)
            if parent_id is not None:
                line["__parentId"] = parent_id
            else:
                self.roots += 1
            self.objects += 1
            self.write(line)
            for child_value, child_field, child_type in nested:
                self.connection(child_value, child_field, child_type, node.get("id"))

    def split(self, value: dict, selection_set, parent_type, nested: list) -> dict:
        """`value` without its connections (queued in `nested`, to follow the line as children)."""
        line = {}
        for field, condition in _fields(selection_set, self.fragments):
            key = _key(field)
            if key not in value:
                continue
            owner = self.schema.get_type(condition) if condition else parent_type
            definition = getattr(owner, "fields", {}).get(field.name.value)
            child = value[key]
            if definition is None or child is None or is_leaf_type(get_named_type(definition.type)):
                line[key] = child
            elif _is_connection(definition.type):
                nested.append((child, field, get_named_type(definition.type)))
            elif isinstance(child, list):
                line[key] = [self.split(c, field.selection_set, get_named_type(definition.type), nested)
                             if isinstance(c, dict) else c for c in child]
            else:
                line[key] = self.split(child, field.selection_set, get_named_type(definition.type), nested)
        return line


def _key(field: FieldNode) -> str:
    return field.alias.value if field.alias else field.name.value


CHUNK = 5000  # root nodes per execution of a bulk query
_PAGE_INFO = "sandboxPageInfo"


def _chunk_of(document, operation: OperationDefinitionNode, root: FieldNode, after: str | None):
    """The document reduced to one root connection, CHUNK nodes after `after`, with its pageInfo under an alias."""
    arguments = [a for a in root.arguments if a.name.value not in ("first", "after", "last", "before")]
    arguments.append(ArgumentNode(name=NameNode(value="first"), value=IntValueNode(value=str(CHUNK))))
    if after is not None:
        arguments.append(ArgumentNode(name=NameNode(value="after"), value=StringValueNode(value=after)))
    page_fields = tuple(FieldNode(name=NameNode(value=n), arguments=(), directives=())
                        for n in ("hasNextPage", "endCursor"))
    page_info = FieldNode(alias=NameNode(value=_PAGE_INFO), name=NameNode(value="pageInfo"), arguments=(),
                          directives=(), selection_set=SelectionSetNode(selections=page_fields))
    field = copy.copy(root)
    field.arguments = tuple(arguments)
    field.selection_set = SelectionSetNode(selections=tuple(root.selection_set.selections) + (page_info,))
    chunk_operation = copy.copy(operation)
    chunk_operation.selection_set = SelectionSetNode(selections=(field,))
    chunk = copy.copy(document)
    chunk.definitions = tuple(chunk_operation if d is operation else d for d in document.definitions)
    return chunk


# --- the operations -------------------------------------------------------------------------------

class BulkOperations:
    """The store's bulk operations and their result files (a temporary directory, removed by `close`)."""

    def __init__(self, store: "ShopifyStore"):
        self.store = store
        self.operations: dict[str, dict] = {}
        self._directory: Path | None = None
        self._timers: list[threading.Timer] = []
        self._rng = random.Random(0)

    def run_query(self, schema: GraphQLSchema, query: str, api_version: str) -> dict:
        """bulkOperationRunQuery's payload {bulkOperation, userErrors}."""
        store = self.store
        with store.lock:
            self.advance(schema)
            errors = validate_bulk_query(schema, query)
            if errors:
                return {"bulkOperation": None, "userErrors": errors}
            running = [op["id"] for op in self.operations.values()
                       if op["type"] == "QUERY" and op["status"] not in TERMINAL]
            limit = MAX_CONNECTIONS if api_version >= FIVE_AT_ONCE_SINCE else 1
            if len(running) >= limit:
                refusal = {"field": None, "message": IN_PROGRESS.format(ids=", ".join(running)),
                           "code": "OPERATION_IN_PROGRESS"}
                return {"bulkOperation": None, "userErrors": [refusal]}
            from mirakl_pipelines.sandbox.shopify.store import utc_now_iso

            op_id, number = store.new_id("BulkOperation")
            operation = {"id": op_id, "status": "CREATED", "type": "QUERY", "errorCode": None,
                         "createdAt": utc_now_iso(), "completedAt": None, "objectCount": "0", "rootObjectCount": "0",
                         "fileSize": None, "partialDataUrl": None, "query": query,
                         "_path": RESULT_PATH.format(number=number), "_number": number, "_startedAt": store.clock(),
                         "_apiVersion": api_version}
            self.operations[op_id] = operation
        delay = store.settings.bulk_operation_seconds
        if delay > 0:  # finish on time even if nobody polls (bulk_operations/finish subscribers)
            timer = threading.Timer(delay, self._advance_quietly, args=(schema,))
            timer.daemon = True
            timer.start()
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        return {"bulkOperation": operation, "userErrors": []}

    def _advance_quietly(self, schema: GraphQLSchema) -> None:
        try:
            self.advance(schema)
        except Exception:  # a timer thread must not die loudly: the next read advances again
            log.exception("bulk operation advance failed")

    def advance(self, schema: GraphQLSchema) -> None:
        """Move unfinished operations along their clock: CREATED → RUNNING → COMPLETED (or FAILED)."""
        store = self.store
        with store.lock:
            now = store.clock()
            delay = store.settings.bulk_operation_seconds
            for operation in self.operations.values():
                if operation["status"] == "CANCELING":
                    self._finish(operation, "CANCELED")
                elif operation["status"] in ("CREATED", "RUNNING"):
                    elapsed = now - operation["_startedAt"]
                    if elapsed >= delay:
                        self._complete(schema, operation)
                    elif elapsed >= delay / 5:
                        operation["status"] = "RUNNING"

    def _complete(self, schema: GraphQLSchema, operation: dict) -> None:
        failure = self.store.settings.bulk_operation_failure
        if failure:
            if failure not in ERROR_CODES:
                raise ValueError(f"bulk_operation_failure {failure!r}: one of {ERROR_CODES} (or empty)")
            operation["errorCode"] = failure
            self._finish(operation, "FAILED")
            return
        try:
            self._execute(schema, operation)
        except Exception:
            log.exception("bulk operation %s failed in the sandbox", operation["id"])
            operation["errorCode"] = "INTERNAL_SERVER_ERROR"
            self._finish(operation, "FAILED")
            return
        self._change_quantities(self.store.settings.bulk_changes_while_running)
        self._finish(operation, "COMPLETED")

    def _finish(self, operation: dict, status: str) -> None:
        from mirakl_pipelines.sandbox.shopify.store import utc_now_iso

        operation["status"] = status
        operation["completedAt"] = utc_now_iso()
        self.store.publish("bulk_operations/finish", lambda: {
            "admin_graphql_api_id": operation["id"], "completed_at": operation["completedAt"],
            "created_at": operation["createdAt"], "error_code": (operation["errorCode"] or "").lower() or None,
            "status": status.lower(), "type": operation["type"].lower()})

    def _execute(self, schema: GraphQLSchema, operation: dict) -> None:
        """Run the query root connection by root connection, CHUNK root nodes at a time (a 100,000-variant result
        is never one Python structure), writing each chunk's lines as it comes."""
        from mirakl_pipelines.sandbox.shopify.resolvers import (
            RequestContext, ShopifyRoot, field_resolver, unbounded_pages)

        document = parse(operation["query"])
        context = RequestContext(store=self.store, api_version=operation["_apiVersion"])
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        op_node = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        path = self.directory / f"{operation['_number']}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            flattener = _Flattener(schema, fragments,
                                   lambda line: out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":"),
                                                                     default=str) + "\n"))
            for field, _ in _fields(op_node.selection_set, fragments):
                definition = schema.query_type.fields.get(field.name.value)
                if definition is None or not _is_connection(definition.type):
                    continue
                after = None
                while True:
                    chunk = _chunk_of(document, op_node, field, after)
                    with unbounded_pages():
                        result = execute(schema, chunk, root_value=ShopifyRoot(context), context_value=context,
                                         field_resolver=field_resolver)
                    if result.errors:
                        raise RuntimeError("; ".join(e.message for e in result.errors))
                    value = (result.data or {}).get(_key(field)) or {}
                    flattener.connection(value, field, get_named_type(definition.type), None)
                    page = value.get(_PAGE_INFO) or {}
                    if not page.get("hasNextPage"):
                        break
                    after = page["endCursor"]
        operation["objectCount"] = str(flattener.objects)
        operation["rootObjectCount"] = str(flattener.roots)
        operation["fileSize"] = str(path.stat().st_size)

    def _change_quantities(self, count: int) -> None:
        """`count` adjustments of `available` at random tracked levels, through the mutation's code path."""
        from mirakl_pipelines.sandbox.shopify.inventory import adjust_quantities

        store = self.store
        levels = [level for item_id, by_location in store.levels.items() if store.inventory_items[item_id]["tracked"]
                  for level in by_location.values()]
        for _ in range(count if levels else 0):
            level = self._rng.choice(levels)
            adjust_quantities(store, {"name": "available", "reason": "correction", "changes": [
                {"inventoryItemId": level["_itemId"], "locationId": level["_locationId"],
                 "delta": self._rng.choice([-3, -2, -1, 1, 2, 5]), "changeFromQuantity": None}]})

    def get(self, schema: GraphQLSchema, operation_id: str) -> dict | None:
        self.advance(schema)
        return self.operations.get(operation_id)

    def current(self, schema: GraphQLSchema, type_: str = "QUERY") -> dict | None:
        """The most recent operation of the type (currentBulkOperation)."""
        self.advance(schema)
        of_type = [op for op in self.operations.values() if op["type"] == type_]
        return of_type[-1] if of_type else None

    def cancel(self, schema: GraphQLSchema, operation_id: str) -> dict:
        """bulkOperationCancel: CANCELING (captured), CANCELED on the next read."""
        with self.store.lock:
            self.advance(schema)
            operation = self.operations.get(operation_id)
            if operation is None:  # not captured: the wording
                return {"bulkOperation": None,
                        "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}
            if operation["status"] in TERMINAL:  # not captured: the wording
                return {"bulkOperation": operation, "userErrors": [{"field": None, "message":
                        f"A bulk operation cannot be canceled when it is {operation['status'].lower()}"}]}
            operation["status"] = "CANCELING"
            return {"bulkOperation": operation, "userErrors": []}

    def result_file(self, number: str) -> Path | None:
        operation = next((op for op in self.operations.values() if op["_number"] == number), None)
        if operation is None or operation["status"] != "COMPLETED":
            return None
        return self.directory / f"{number}.jsonl"

    @property
    def directory(self) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="shopify-bulk-"))
        return self._directory

    def stats(self) -> dict:
        statuses: dict[str, int] = {}
        for operation in self.operations.values():
            statuses[operation["status"]] = statuses.get(operation["status"], 0) + 1
        return statuses

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
