"""Shopify's calculated query cost and the leaky bucket that meters it.

Cost rules used here (the sandbox's approximation, documented):
- scalar and enum fields: 0; an object (or a list of objects, or an interface/union) field: 1 plus its selections;
- a connection (type named `…Connection`): 2 + ⌈√size⌉ × (1 + cost of the node's selections), size = `first`
  or `last` (1 when absent); `pageInfo` is free. The commonly quoted "2 + first × child" rule is not what
  Shopify charges today: the captured FulfillmentOrder read in fixtures/…fulfillment-multi-tracking-info.json
  (`merchantRequests(first: 10)`, `lineItems(first: 20) { … lineItem { … } }`) was requested at 25 points, which
  the linear rule prices at 58 and this rule at exactly 25 (its orderCreate: captured 39, this rule 41). With
  the linear rule the connector's own OrderFulfillmentOrders document would cost 25,303 > 1,000 and be refused.
- a mutation root field: 10 plus the cost of its payload's selections (the payload object itself is free);
- fragments are summed (an upper bound when type conditions exclude each other).
The actual cost walks the response instead: null objects are free and connections count returned nodes.
It is capped at the requested cost; the difference is refunded to the bucket, as Shopify does.
"""

import math
import threading
from typing import Callable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MUTATION_COST = 10
CONNECTION_COST = 2
MAX_QUERY_COST = 1000
_STATIC = object()  # marker: no response data, compute the requested (worst-case) cost


def requested_cost(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict, variables: dict) -> int:
    return _operation_cost(schema, operation, fragments, variables, _STATIC)


def actual_cost(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict, variables: dict,
                data: dict | None) -> int:
    return _operation_cost(schema, operation, fragments, variables, data or {})


def fragments_of(document) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operation_cost(schema, operation, fragments, variables, data) -> int:
    is_mutation = operation.operation == OperationType.MUTATION
    root = schema.mutation_type if is_mutation else schema.query_type
    walker = _CostWalker(fragments, variables)
    total = 0
    for field_node, field_def in walker.fields(operation.selection_set, root):
        value = data if data is _STATIC else data.get(_key(field_node), None)
        if is_mutation:
            if data is not _STATIC and value is None:
                continue
            total += MUTATION_COST + walker.selection_cost(field_node.selection_set, get_named_type(field_def.type), value)
        else:
            total += walker.field_cost(field_node, field_def, value)
    return total


class _CostWalker:
    def __init__(self, fragments: dict, variables: dict):
        self.fragments = fragments
        self.variables = variables

    def fields(self, selection_set: SelectionSetNode | None, parent_type):
        """(field node, field definition) pairs, fragments flattened; introspection fields skipped."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                field_def = getattr(parent_type, "fields", {}).get(name)
                if field_def is not None:
                    yield selection, field_def
            elif isinstance(selection, InlineFragmentNode):
                yield from self.fields(selection.selection_set, parent_type)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    yield from self.fields(fragment.selection_set, parent_type)

    def field_cost(self, field_node: FieldNode, field_def, value) -> int:
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            return 0
        static = value is _STATIC
        if not static and value is None:
            return 0
        if named.name.endswith("Connection"):
            return CONNECTION_COST + self._connection_nodes_cost(field_node, named, value)
        if not static and isinstance(value, list):
            return sum(1 + self.selection_cost(field_node.selection_set, named, item) for item in value if item is not None)
        return 1 + self.selection_cost(field_node.selection_set, named, value)

    def selection_cost(self, selection_set, parent_type, value) -> int:
        total = 0
        for field_node, field_def in self.fields(selection_set, parent_type):
            child = value if value is _STATIC else (value or {}).get(_key(field_node))
            total += self.field_cost(field_node, field_def, child)
        return total

    def _connection_nodes_cost(self, field_node: FieldNode, connection_type, value) -> int:
        node_type = get_named_type(connection_type.fields["nodes"].type) if "nodes" in connection_type.fields else None
        if value is _STATIC:
            size = math.ceil(math.sqrt(self._size(field_node)))
            per_node = 0
            for child, _ in self.fields(field_node.selection_set, connection_type):
                per_node = max(per_node, self._node_selection_cost(child, connection_type, node_type, _STATIC))
            return size * per_node
        total = 0
        for child, _ in self.fields(field_node.selection_set, connection_type):
            items = value.get(_key(child)) or []
            if child.name.value in ("nodes", "edges"):
                total = max(total, sum(self._node_selection_cost(child, connection_type, node_type, item) for item in items))
        return total

    def _node_selection_cost(self, child: FieldNode, connection_type, node_type, item) -> int:
        """Cost of one node selected through `nodes { … }` or `edges { node { … } }`."""
        name = child.name.value
        if name == "nodes" and node_type is not None:
            return 1 + self.selection_cost(child.selection_set, node_type, item)
        if name == "edges":
            edge_type = get_named_type(connection_type.fields["edges"].type)
            cost = 0
            for edge_field, edge_def in self.fields(child.selection_set, edge_type):
                if edge_field.name.value == "node":
                    node_value = item if item is _STATIC else (item or {}).get(_key(edge_field))
                    cost = 1 + self.selection_cost(edge_field.selection_set, get_named_type(edge_def.type), node_value)
            return cost
        return 0

    def _size(self, field_node: FieldNode) -> int:
        for argument in field_node.arguments:
            if argument.name.value in ("first", "last"):
                value = value_from_ast_untyped(argument.value, self.variables)
                if isinstance(value, int) and value > 0:
                    return value
        return 1


def _key(field_node: FieldNode) -> str:
    return field_node.alias.value if field_node.alias else field_node.name.value


class LeakyBucket:
    """Shopify's cost bucket: `maximum` points refilling at `restore_rate` points per second of `clock`."""

    def __init__(self, maximum: int, restore_rate: float, clock: Callable[[], float]):
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.clock = clock
        self._available = float(maximum)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._available = min(float(self.maximum), self._available + max(0.0, now - self._last) * self.restore_rate)
        self._last = now

    def try_take(self, points: int) -> bool:
        """Take `points` if available now; False (nothing taken) when the request must be throttled."""
        with self._lock:
            self._refill()
            if points > self._available:
                return False
            self._available -= points
            return True

    def give_back(self, points: int) -> None:
        with self._lock:
            self._available = min(float(self.maximum), self._available + points)

    def reconfigure(self, maximum: int | None = None, restore_rate: float | None = None) -> None:
        with self._lock:
            self._refill()
            if maximum is not None:
                self.maximum = maximum
                self._available = min(self._available, float(maximum))
            if restore_rate is not None:
                self.restore_rate = restore_rate

    def status(self) -> dict:
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": math.floor(self._available),
                "restoreRate": int(self.restore_rate) if float(self.restore_rate).is_integer() else self.restore_rate,
            }
