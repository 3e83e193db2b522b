"""The GraphQL documents the client sends, one file per operation, named like the operation.

`load_operation("OrderCreate")` returns the text of `OrderCreate.graphql`. Documents are parsed once
to learn what the client must know about them (query or mutation; `@idempotent` or not) and to make
sure each file holds exactly the operation its name promises. `batched_operation` repeats a one-field
query under aliases, so one request reads many objects Shopify only serves one at a time.
"""

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from copy import deepcopy

from graphql import FieldNode, NameNode, OperationDefinitionNode, VariableNode, Visitor, parse, print_ast, visit
from graphql.error import GraphQLSyntaxError

PACKAGE = __name__


@dataclass(frozen=True)
class OperationInfo:
    name: str
    kind: str  # "query" | "mutation"
    idempotent: bool  # carries @idempotent(key:): Shopify replays the first result for a repeated key

    @property
    def safe_to_resend(self) -> bool:
        """Whether a request whose fate is unknown (timeout, dropped connection, 5xx) may simply be sent again."""
        return self.kind == "query" or self.idempotent


def operation_names() -> list[str]:
    return sorted(p.name.removesuffix(".graphql") for p in resources.files(PACKAGE).iterdir()
                  if p.name.endswith(".graphql"))


@lru_cache(maxsize=None)
def load_operation(name: str) -> str:
    resource = resources.files(PACKAGE) / f"{name}.graphql"
    if not resource.is_file():
        raise KeyError(f"no GraphQL operation {name!r}: expected {name}.graphql in {PACKAGE}; "
                       f"known: {', '.join(operation_names())}")
    return resource.read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def operation_info(name: str) -> OperationInfo:
    text = load_operation(name)
    try:
        document = parse(text)
    except GraphQLSyntaxError as e:
        raise ValueError(f"operation {name}.graphql does not parse: {e.message}") from e
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None or operations[0].name.value != name:
        found = [op.name.value if op.name else "<anonymous>" for op in operations]
        raise ValueError(f"{name}.graphql must define exactly one operation named {name}; found {found}")
    operation = operations[0]
    idempotent = any(
        directive.name.value == "idempotent"
        for selection in operation.selection_set.selections
        for directive in (selection.directives or ())
    )
    return OperationInfo(name=name, kind=operation.operation.value, idempotent=idempotent)


@lru_cache(maxsize=None)
def batched_operation(name: str, size: int) -> str:
    """`name`'s only root field `size` times in one document, under aliases r0…r{size-1}; copy i takes the
    operation's variables suffixed with i (`$identifier` → `$identifier0`, `$identifier1`, …)."""
    if size < 1:
        raise ValueError(f"a batch of {name} needs at least one item, got {size}")
    operation = _parsed_operation(name)
    (field,) = operation.selection_set.selections
    if operation.operation.value != "query" or not isinstance(field, FieldNode):
        raise ValueError(f"only a query with one root field can be batched; {name} is not one")
    fields, definitions = [], []
    for i in range(size):
        suffix = _SuffixVariables(str(i))
        copy = visit(deepcopy(field), suffix)
        copy.alias = NameNode(value=f"r{i}")
        fields.append(copy)
        definitions += [visit(deepcopy(d), suffix) for d in operation.variable_definitions]
    batch = deepcopy(operation)
    batch.variable_definitions = tuple(definitions)
    batch.selection_set.selections = tuple(fields)
    return print_ast(batch)


def _parsed_operation(name: str) -> OperationDefinitionNode:
    operation_info(name)  # one named operation, or a clear error
    return next(d for d in parse(load_operation(name)).definitions if isinstance(d, OperationDefinitionNode))


class _SuffixVariables(Visitor):
    def __init__(self, suffix: str):
        super().__init__()
        self.suffix = suffix

    def enter_variable(self, node: VariableNode, *_):
        return VariableNode(name=NameNode(value=node.name.value + self.suffix))
