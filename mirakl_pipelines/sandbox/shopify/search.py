"""Shopify's search syntax for the `query:` argument of connections, the subset the connector uses.

Grammar (whitespace-separated terms, implicitly ANDed): `field:value`, `field:'quoted value'`,
`field:"quoted"`, comparisons `field:>v` `>=` `<` `<=`, negation `-field:v` or `NOT field:v`,
`A OR B` (binds tighter than the implicit AND), the word `AND` (ignored), and bare words (free text).
"""

import re
from dataclasses import dataclass
from typing import Callable, Iterable

_TOKEN = re.compile(r"""(-?[\w.]+:(?:>=|<=|>|<)?(?:'[^']*'|"[^"]*"|\S+))|('[^']*'|"[^"]*")|(\S+)""")


@dataclass(frozen=True)
class Term:
    field: str | None  # None: free text
    op: str  # ":" ">" ">=" "<" "<="
    value: str
    negated: bool = False


Clause = list[Term]  # ORed


def parse_search(query: str | None) -> list[Clause]:
    """The query as AND-of-OR clauses; an empty query matches everything."""
    clauses: list[Clause] = []
    negate_next = join_next = False
    for match in _TOKEN.finditer(query or ""):
        token = match.group(0)
        if token == "AND":
            continue
        if token == "OR":
            join_next = bool(clauses)
            continue
        if token == "NOT":
            negate_next = True
            continue
        term = _term(token.strip("()"), negate_next)
        negate_next = False
        if join_next:
            clauses[-1].append(term)
            join_next = False
        else:
            clauses.append([term])
    return clauses


_NEGATED_ALIASES = {"tag_not": "tag"}  # `tag_not:x` is `-tag:x`


def _term(token: str, negated: bool) -> Term:
    if token.startswith("-") and ":" in token:
        negated, token = True, token[1:]
    if ":" not in token or token.startswith(("'", '"')):
        return Term(None, ":", _unquote(token), negated)
    field, rest = token.split(":", 1)
    if field.lower() in _NEGATED_ALIASES:
        field, negated = _NEGATED_ALIASES[field.lower()], not negated
    for op in (">=", "<=", ">", "<"):
        if rest.startswith(op):
            return Term(field.lower(), op, _unquote(rest[len(op):]), negated)
    return Term(field.lower(), ":", _unquote(rest), negated)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# A field getter returns the record's values for a search field (several for tags or SKUs).
FieldGetters = dict[str, Callable[[dict], Iterable[str]]]


def matches(clauses: list[Clause], record: dict, getters: FieldGetters, free_text: Callable[[dict], Iterable[str]]) -> bool:
    return all(any(_term_matches(term, record, getters, free_text) for term in clause) for clause in clauses)


def _term_matches(term: Term, record: dict, getters: FieldGetters, free_text) -> bool:
    if term.field is None:
        needle = term.value.lower()
        hit = any(needle in (v or "").lower() for v in free_text(record))
    elif term.field not in getters:
        hit = False  # Shopify ignores unknown fields with a warning; matching nothing is the safer simulation
    else:
        values = [v for v in getters[term.field](record) if v is not None]
        hit = any(_compare(str(v), term) for v in values)
    return hit != term.negated


def _compare(actual: str, term: Term) -> bool:
    wanted = term.value
    if term.op == ":":
        if wanted.endswith("*"):
            return actual.lower().startswith(wanted[:-1].lower())
        return actual.lower() == wanted.lower()
    # Comparisons: ISO-8601 timestamps and zero-padded numbers compare correctly as text once normalised.
    actual_key, wanted_key = _comparable(actual), _comparable(wanted)
    return {">": actual_key > wanted_key, ">=": actual_key >= wanted_key,
            "<": actual_key < wanted_key, "<=": actual_key <= wanted_key}[term.op]


def _comparable(value: str):
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return (0, float(value), "")
    text = value.replace("Z", "+00:00")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00+00:00"
    try:
        from datetime import datetime

        return (1, datetime.fromisoformat(text).timestamp(), "")
    except ValueError:
        return (2, 0.0, value)
