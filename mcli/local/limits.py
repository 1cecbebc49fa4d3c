"""How much work one request may cause, and the static cost check applied to every GraphQL document.

The server runs every operation on one event loop, so a request that is expensive to parse, validate or execute
delays everyone. Requests are refused before that work starts when their size or estimated cost exceeds these
limits: the body size and token count bound parsing and validation, and the cost check (fields, aliases, runs
asked for, introspection fan-out) bounds execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphql import DocumentNode, FragmentDefinitionNode, OperationDefinitionNode, SelectionSetNode

MIB = 1024 * 1024
# The server's defaults for `mcli local serve` (here, not in `server`, so that building mcli's parser is cheap).
DEFAULT_MAX_CONCURRENT_RUNS = 32
DEFAULT_MAX_LOG_BYTES = 10 * 1024**3
# Page size rules of getRunsPaginated (the engine applies the same: null means 100, more than 10,000 is capped).
DEFAULT_PAGE = 100
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Limits:
    """Every bound the server puts on one client; the defaults leave real clients a wide margin.

    The documents our client and the official client send hold under 200 tokens, about 60 fields and no aliases.
    """

    max_request_bytes: int = MIB
    # The query document itself (variables may fill the rest of a request): refused before it is parsed.
    max_query_chars: int = 100_000
    max_tokens: int = 3_000
    max_fields: int = 500
    max_aliases: int = 50
    max_runs_per_request: int = 10_000
    # Values introspection may resolve, estimated from the worst case of every list (types x fields x ...): the
    # standard introspection query estimates at 145,010 on this schema (and takes 7 ms).
    max_introspection_cost: int = 300_000
    # Seconds a client may take to send a request's headers (also while a keep-alive connection is idle) and
    # then its body.
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 30.0
    # Seconds a websocket may stay open without `connection_init`.
    connection_init_timeout_seconds: float = 10.0
    max_connections: int = 1_000
    max_operations_per_socket: int = 100
    # Failed authentications per client address: a burst, then this many per second.
    auth_failure_burst: int = 100
    auth_failures_per_second: float = 10.0


_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass
class OperationCost:
    """Fields and aliases after fragment expansion, runs asked of getRunsPaginated, introspection fan-out."""

    fields: int = 0
    aliases: int = 0
    runs: int = 0
    introspection: int = 0

    def add(self, other: OperationCost, scale: int = 1) -> None:
        self.fields += other.fields
        self.aliases += other.aliases
        self.runs += other.runs
        self.introspection += other.introspection * scale

    def refusal(self, limits: Limits) -> str | None:
        """Why this costs too much to run, naming the limit; None when it is within every limit."""
        if self.fields > limits.max_fields:
            return (
                f"The operation selects {self.fields:,} fields (fragments expanded); "
                f"the limit is {limits.max_fields:,} per request"
            )
        if self.aliases > limits.max_aliases:
            return f"The operation uses {self.aliases:,} aliases; the limit is {limits.max_aliases:,} per request"
        if self.runs > limits.max_runs_per_request:
            return (
                f"The operation asks for up to {self.runs:,} runs across its getRunsPaginated fields; the limit "
                f"is {limits.max_runs_per_request:,} runs per request: ask for fewer and follow the cursor"
            )
        if self.introspection > limits.max_introspection_cost:
            return (
                f"The introspection in this operation would resolve about {self.introspection:,} values; the "
                f"limit is {limits.max_introspection_cost:,} per request"
            )
        return None


class _CostWalk:
    """Fragments are expanded as execution expands them, each computed once (so fragment bombs stay linear)."""

    def __init__(
        self, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any], list_sizes: dict[str, int]
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.list_sizes = list_sizes
        self.memo: dict[tuple[str, bool], OperationCost] = {}
        self.visiting: set[str] = set()

    def selections(self, selection_set: SelectionSetNode | None, in_introspection: bool) -> OperationCost:
        from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

        cost = OperationCost()
        if selection_set is None:
            return cost
        for selection in selection_set.selections or ():
            if isinstance(selection, FieldNode):
                cost.add(self.field(selection, in_introspection))
            elif isinstance(selection, InlineFragmentNode):
                cost.add(self.selections(selection.selection_set, in_introspection))
            elif isinstance(selection, FragmentSpreadNode):
                cost.add(self.spread(selection.name.value, in_introspection))
        return cost

    def spread(self, name: str, in_introspection: bool) -> OperationCost:
        key = (name, in_introspection)
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return OperationCost()  # unknown or cyclic: validation refuses the document with a clear message
        self.visiting.add(name)
        cost = self.selections(fragment.selection_set, in_introspection)
        self.visiting.discard(name)
        self.memo[key] = cost
        return cost

    def field(self, node: Any, in_introspection: bool) -> OperationCost:
        name = node.name.value
        cost = OperationCost(fields=1, aliases=1 if node.alias is not None else 0)
        if name == "getRunsPaginated":
            cost.runs = self._page_size(node)
        inside = in_introspection or name in _INTROSPECTION_ROOTS
        if inside:
            cost.introspection = 1
        scale = self.list_sizes.get(name, 1) if inside else 1
        cost.add(self.selections(node.selection_set, inside), scale)
        return cost

    def _page_size(self, node: Any) -> int:
        from graphql import value_from_ast_untyped

        for argument in node.arguments or ():
            if argument.name.value == "getRunsPaginatedData":
                try:
                    value = value_from_ast_untyped(argument.value, self.variables)
                except Exception:  # malformed: validation or coercion refuses it later
                    return DEFAULT_PAGE
                limit = value.get("limit") if isinstance(value, dict) else None
                if isinstance(limit, int) and not isinstance(limit, bool):
                    return min(max(limit, 1), MAX_PAGE)
        return DEFAULT_PAGE


def introspection_list_sizes(schema: Any) -> dict[str, int]:
    """The most items each list-valued introspection field can return on `schema` (its worst case)."""
    from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, GraphQLUnionType

    fields, args, inputs, enums, members = [0], [0], [0], [0], [0]
    for named in schema.type_map.values():
        if isinstance(named, GraphQLObjectType):
            fields.append(len(named.fields))
            args.extend(len(f.args) for f in named.fields.values())
            members.append(len(named.interfaces))
        elif isinstance(named, GraphQLInputObjectType):
            inputs.append(len(named.fields))
        elif isinstance(named, GraphQLEnumType):
            enums.append(len(named.values))
        elif isinstance(named, GraphQLUnionType):
            members.append(len(named.types))
    args.extend(len(d.args) for d in schema.directives)
    return {
        "types": len(schema.type_map),
        "directives": len(schema.directives),
        "fields": max(fields),
        "args": max(args),
        "inputFields": max(inputs),
        "enumValues": max(enums),
        "interfaces": max(members),
        "possibleTypes": max(members, default=0) or len(schema.type_map),
    }


def estimate_cost(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
    list_sizes: dict[str, int],
) -> OperationCost:
    """What executing `operation` would cost, counted on the document alone (no resolver runs)."""
    from graphql import FragmentDefinitionNode

    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return _CostWalk(fragments, variables, list_sizes).selections(operation.selection_set, False)
