"""A fast path for `getRunsPaginated`, the one query whose answer can hold 10,000 runs.

graphql-core's executor resolves every field of every run through the general machinery (resolve info, awaitable
checks, per-field completion): about 35 fields x 10,000 runs, most of a second. This module answers the same
document with the same JSON: the selection is collected the way the executor collects it (fragments, inline
fragments, aliases, @skip/@include, merged response keys, in document order), each field is read with the
resolver the schema gives it (Ariadne's attribute resolvers are read directly) and leaves go through the schema's
own serializers. The details of all the runs of a page are read in three batched queries instead of three per run.

Anything it does not handle in exactly the executor's way (another root field, an abstract type, fragment
arguments, a null where the schema promises a value, a resolver error) makes it step aside: `None` is returned and
the request runs through graphql-core as before. It runs after the server's authentication, parsing and cost
checks, and only on a document that passed validation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, is_dataclass
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphql import (
        DocumentNode,
        FieldNode,
        GraphQLField,
        GraphQLObjectType,
        GraphQLOutputType,
        GraphQLSchema,
        OperationType,
        SelectionSetNode,
    )
    from graphql.execution.values import VariableValues

    from mcli.local.engine import Engine

ROOT_FIELD = "getRunsPaginated"
LOG_SUBSCRIPTION = "getRunLogsV2"
_INT_RANGE = range(-(2**31), 2**31)


async def log_stream(
    schema: GraphQLSchema,
    document: DocumentNode,
    data: Mapping[str, Any],
    context: dict[str, Any],
) -> AsyncGenerator[dict[str, Any], None] | None:
    """The `{"data": ...}` payloads of a getRunLogsV2 subscription, or None when graphql-core should run it.

    A follower of a live run gets one message per line it prints; with a hundred followers, graphql-core's
    per-event execution of the document was most of the server's work. The source stream is the schema's own
    (so a bad request fails the same way, through graphql-core, when None sends it there).
    """
    from graphql import OperationType

    try:
        root = _root(schema, document, data, OperationType.SUBSCRIPTION, LOG_SUBSCRIPTION)
        subscribe = root.field.subscribe if root is not None else None
        if root is None or subscribe is None:
            return None
        key, field, args = root.key, root.field, root.arguments
        info = _Context(context)
        complete = _Completer(schema, root.collector, info, context["engine"]).compile(field.type, root.nodes)
        source = await subscribe(None, info, **args)
    except _StepAside:
        return None
    except Exception:  # the request's error is graphql-core's to report, in its words
        return None
    resolve = field.resolve

    async def payloads() -> AsyncGenerator[dict[str, Any], None]:
        try:
            async for event in source:
                value = resolve(event, info, **args) if resolve is not None else event
                yield {"data": {key: complete(value)}}
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    return payloads()


class _StepAside(Exception):
    """The executor must answer this request (its errors and edge cases are its own)."""


class _Context:
    """What the schema's resolvers read from `info`."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context


def runs_page(
    schema: GraphQLSchema,
    document: DocumentNode,
    data: Mapping[str, Any],
    context: dict[str, Any],
) -> dict[str, Any] | None:
    """The `{"data": ...}` answer of a getRunsPaginated query, or None when graphql-core should answer it."""
    from graphql import OperationType

    try:
        root = _root(schema, document, data, OperationType.QUERY, ROOT_FIELD)
        if root is None or root.field.resolve is None:
            return None
        info = _Context(context)
        page = root.field.resolve(None, info, **root.arguments)
        complete = _Completer(schema, root.collector, info, context["engine"])
        return {"data": {root.key: complete.value(root.field.type, page, root.nodes)}}
    except _StepAside:
        return None
    except Exception:  # a resolver's error (e.g. a bad filter) is the executor's to report, in its words
        return None


@dataclass(frozen=True)
class _Root:
    """The one root field an operation selects: its response key, its nodes, its field and coerced arguments."""

    key: str
    nodes: list[FieldNode]
    field: GraphQLField
    arguments: dict[str, Any]
    collector: _Collector


def _root(
    schema: GraphQLSchema,
    document: DocumentNode,
    data: Mapping[str, Any],
    operation_type: OperationType,
    name: str,
) -> _Root | None:
    """The single root field `name` of the operation `data` names, if that operation is of `operation_type`; None
    for any other request (graphql-core answers those, their errors included). May raise _StepAside, or
    graphql-core's error for a bad argument: the caller steps aside on either."""
    from graphql import get_operation_ast
    from graphql.execution.values import get_argument_values, get_variable_values

    root_type = schema.get_root_type(operation_type)
    operation = get_operation_ast(document, data.get("operationName"))
    if operation is None or operation.operation != operation_type or root_type is None:
        return None
    variables = get_variable_values(schema, operation.variable_definitions or (), data.get("variables") or {})
    if isinstance(variables, list):
        return None  # variable errors: reported by the executor
    collector = _Collector(document, variables)
    selected = collector.collect(root_type, [operation.selection_set])
    if len(selected) != 1:
        return None
    ((key, nodes),) = selected.items()
    field = root_type.fields.get(nodes[0].name.value)
    if nodes[0].name.value != name or field is None:
        return None
    return _Root(key, nodes, field, get_argument_values(field, nodes[0], variables), collector)


class _Collector:
    """Field collection as graphql-core does it, for object types only."""

    def __init__(self, document: DocumentNode, variables: VariableValues) -> None:
        from graphql import FragmentDefinitionNode

        self.variables = variables
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._cache: dict[tuple[str, tuple[int, ...]], dict[str, list[FieldNode]]] = {}

    def collect(
        self, type_: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        cache_key = (type_.name, tuple(id(s) for s in selection_sets))
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = {}
            for selection_set in selection_sets:
                self._collect(type_, selection_set, cached, set())
            self._cache[cache_key] = cached
        return cached

    def _collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        fields: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is not None:
                    self._check_condition(type_, selection.type_condition.name.value)
                self._collect(type_, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if getattr(selection, "arguments", None):
                    raise _StepAside  # fragment arguments
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise _StepAside
                self._check_condition(type_, fragment.type_condition.name.value)
                self._collect(type_, fragment.selection_set, fields, visited)

    @staticmethod
    def _check_condition(type_: GraphQLObjectType, condition: str) -> None:
        # Our object types implement no interfaces and belong to no unions: a condition names the type itself.
        if condition != type_.name:
            raise _StepAside

    def _included(self, node: Any) -> bool:
        from graphql import GraphQLIncludeDirective, GraphQLSkipDirective
        from graphql.execution.values import get_directive_values

        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)


Getter = Callable[[Any], Any]
Complete = Callable[[Any], Any]


@dataclass(frozen=True)
class _Entry:
    """One response key of an object's selection: how its value is read and completed."""

    key: str
    getter: Getter
    complete: Complete
    # A Run's details, read and completed for a whole list of runs at once (by this function, when given).
    details: Callable[[list[Any]], list[Any]] | None = None
    attribute: str | None = None  # the attribute the getter reads, when it reads a plain attribute
    inner: Complete | None = None  # `complete` without its null check (the field's nullable type)
    exact: type | None = None  # the scalar's JSON type, for a String, Int or Boolean leaf
    non_null: bool = False


class _Completer:
    """Completes values by type with functions compiled once per (type, selection), reused for every run."""

    def __init__(self, schema: GraphQLSchema, collector: _Collector, info: _Context, engine: Engine) -> None:
        self.schema = schema
        self.collector = collector
        self.info = info
        self.engine = engine

    def value(self, type_: GraphQLOutputType, value: Any, nodes: list[FieldNode]) -> Any:
        return self.compile(type_, nodes)(value)

    def compile(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> Complete:
        from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType

        if isinstance(type_, GraphQLNonNull):
            inner = self.compile(type_.of_type, nodes)

            def non_null(value: Any) -> Any:
                if value is None:
                    raise _StepAside  # the executor reports the null and nulls the parent
                return inner(value)

            return non_null
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            named = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
            if isinstance(named, GraphQLObjectType):
                many = self.objects(named, nodes, nullable_items=not isinstance(item_type, GraphQLNonNull))

                def objects(value: Any) -> Any:
                    if value is None:
                        return None
                    return many(value if type(value) is list else _as_list(value)) if value else []

                return objects
            item = self.compile(item_type, nodes)
            return lambda value: None if value is None else [item(element) for element in _as_list(value)]
        if isinstance(type_, GraphQLObjectType):
            one = self.objects(type_, nodes, nullable_items=False)
            return lambda value: None if value is None else one([value])[0]
        leaf = _leaf(type_)
        return lambda value: None if value is None else leaf(value)

    def objects(
        self, type_: GraphQLObjectType, nodes: list[FieldNode], nullable_items: bool
    ) -> Callable[[list[Any]], list[Any]]:
        """Completes a list of objects of one type; a Run's details are read for the whole list at once.

        Records of one dataclass (every run of a page) go through a function compiled for that class and this
        selection (`_record_function`); anything else is completed field by field."""
        plan = self.plan(type_, nodes)
        complete_details = next((entry.details for entry in plan if entry.details is not None), None)
        engine = self.engine
        compiled: dict[type, Callable[[list[Any], list[Any] | None], list[Any]]] = {}

        def one(value: Any, details: Any) -> dict[str, Any]:
            return {
                entry.key: details if entry.details is not None else entry.complete(entry.getter(value))
                for entry in plan
            }

        def complete_all(values: list[Any]) -> list[Any]:
            if not values:
                return []
            details = None
            if complete_details is not None:
                if any(value is None for value in values):
                    # details_many reads every run; the executor answers lists holding nulls. (Not `None in
                    # values`: that calls each Run's dataclass __eq__.)
                    raise _StepAside
                details = complete_details(engine.details_many(values))
            cls = type(values[0])
            if is_dataclass(cls):
                function = compiled.get(cls)
                if function is None:
                    function = compiled[cls] = _record_function(cls, plan, one, nullable_items)
                return function(values, details)
            out: list[Any] = []
            for index, value in enumerate(values):
                if value is None:
                    if not nullable_items:
                        raise _StepAside
                    out.append(None)
                else:
                    out.append(one(value, None if details is None else details[index]))
            return out

        return complete_all

    def plan(self, type_: GraphQLObjectType, nodes: list[FieldNode]) -> list[_Entry]:
        from graphql import GraphQLNonNull, GraphQLObjectType, is_leaf_type

        selection_sets = [node.selection_set for node in nodes if node.selection_set is not None]
        plan: list[_Entry] = []
        for key, sub_nodes in self.collector.collect(type_, selection_sets).items():
            name = sub_nodes[0].name.value
            if name == "__typename":
                plan.append(_Entry(key, _constant(type_.name), _identity))
                continue
            field = type_.fields.get(name)
            if field is None:
                raise _StepAside
            complete = self.compile(field.type, sub_nodes)
            non_null = isinstance(field.type, GraphQLNonNull)
            nullable_type = field.type.of_type if non_null else field.type
            if type_.name == "Run" and name == "details" and not sub_nodes[0].arguments:
                if not isinstance(nullable_type, GraphQLObjectType):
                    raise _StepAside
                details = self.objects(nullable_type, sub_nodes, nullable_items=not non_null)
                plan.append(_Entry(key, _never, complete, details=details))
                continue
            inner = _leaf(nullable_type) if is_leaf_type(nullable_type) else self.compile(nullable_type, sub_nodes)
            exact = _EXACT.get(getattr(nullable_type, "name", ""))
            attribute = self.attribute(field, sub_nodes[0])
            getter = self.getter(field, sub_nodes[0])
            plan.append(_Entry(key, getter, complete, None, attribute, inner, exact, non_null))
        return plan

    @staticmethod
    def attribute(field: GraphQLField, node: FieldNode) -> str | None:
        """The attribute the field's value is read from, when reading it is all the resolver does."""
        if node.arguments:
            return None
        # No resolver: graphql-core's default one reads the field's own name, the way Ariadne's read theirs.
        return node.name.value if field.resolve is None else _attribute_of(field.resolve)

    def getter(self, field: GraphQLField, node: FieldNode) -> Getter:
        attribute = self.attribute(field, node)
        if attribute is not None:

            def read(parent: Any) -> Any:
                value = (
                    parent.get(attribute) if isinstance(parent, Mapping) else getattr(parent, attribute, None)
                )
                if callable(value):
                    raise _StepAside  # Ariadne would call it with info and arguments
                return value

            return read
        resolve = field.resolve
        if resolve is None or node.arguments:
            raise _StepAside
        info = self.info
        return lambda parent: resolve(parent, info)


# The scalars whose values are sent as they are when already of this exact Python type (see `_leaf`).
_EXACT: dict[str, type] = {"String": str, "Int": int, "Boolean": bool}


def _record_function(
    cls: type,
    plan: list[_Entry],
    one: Callable[[Any, Any], dict[str, Any]],
    nullable_items: bool,
) -> Callable[[list[Any], list[Any] | None], list[Any]]:
    """A function completing a list of `cls` records for `plan`, written out as Python source and compiled.

    Per run and field, the general path costs a getter call (a Mapping check, getattr, a callable check) and
    a completer call or two; across the ~35 fields of 10,000 runs that was most of the listing's time. Here each
    field is one attribute load and an exact type check inline. The source holds no text from the request:
    response keys go in through `repr` (they are GraphQL names) and attribute names only if they are the
    dataclass's own fields. A value of another class, or a field this can't read directly, takes the general
    path (`one`), so the output is the same either way.
    """
    fields = {f.name for f in dataclass_fields(cls)}
    namespace: dict[str, Any] = {"cls": cls, "one": one, "StepAside": _StepAside, "INT": _INT_RANGE}
    lines = [
        "def complete_records(values, details):",
        "    out = []",
        "    append = out.append",
        "    for index, value in enumerate(values):",
        "        if type(value) is not cls:",
        "            if value is None:",
        "                if NOT_NULL:",
        "                    raise StepAside",
        "                append(None)",
        "            else:",
        "                append(one(value, None if details is None else details[index]))",
        "            continue",
    ]
    namespace["NOT_NULL"] = not nullable_items
    items = []
    for number, entry in enumerate(plan):
        var = f"x{number}"
        namespace[f"complete{number}"] = entry.complete
        namespace[f"get{number}"] = entry.getter
        namespace[f"inner{number}"] = entry.inner
        if entry.details is not None:
            lines.append(f"        {var} = details[index]")
        elif entry.attribute is not None and entry.attribute.isidentifier() and entry.attribute in fields:
            lines.append(f"        {var} = value.{entry.attribute}")
            # None: an error for a non-null field (the executor reports it), else sent as it is. Exactly
            # str/int/bool (in range) is sent as it is; anything else goes through the type's completion.
            lines.append(f"        if {var} is None:")
            lines.append("            raise StepAside" if entry.non_null else "            pass")
            if entry.exact is not None:
                namespace[f"exact{number}"] = entry.exact
                check = f"type({var}) is exact{number}"
                if entry.exact is int:
                    check += f" and {var} in INT"
                lines.append(f"        elif {check}:")
                lines.append("            pass")
            lines.append(f"        elif callable({var}):")
            lines.append("            raise StepAside  # Ariadne would call it with info and arguments")
            lines.append("        else:")
            lines.append(f"            {var} = inner{number}({var})")
        else:
            lines.append(f"        {var} = complete{number}(get{number}(value))")
        items.append(f"{entry.key!r}: {var}")
    lines.append(f"        append({{{', '.join(items)}}})")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<fastpath {cls.__name__}>", "exec"), namespace)
    function: Callable[[list[Any], list[Any] | None], list[Any]] = namespace["complete_records"]
    return function


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _StepAside
    return list(value)


def _constant(value: str) -> Getter:
    def constant(_: Any) -> str:
        return value

    return constant


def _identity(value: Any) -> Any:
    return value


def _never(parent: Any) -> Any:
    raise _StepAside


def _attribute_of(resolve: Any) -> str | None:
    """The attribute Ariadne's `resolve_to(name)` resolver reads, if `resolve` is one (and not a dotted path)."""
    if resolve is None or getattr(resolve, "__qualname__", "") != "resolve_to.<locals>.resolver":
        return None
    cells = [cell.cell_contents for cell in resolve.__closure__ or ()]
    names = [cell for cell in cells if isinstance(cell, str)]
    return names[0] if len(names) == 1 and "." not in names[0] else None


def _leaf(type_: Any) -> Callable[[Any], Any]:
    """The type's serializer, short-circuited for values already of the exact JSON type the scalar sends."""
    from graphql import GraphQLBoolean, GraphQLInt, GraphQLString

    serialize = type_.serialize

    def checked(value: Any) -> Any:
        try:
            return serialize(value)
        except Exception as error:  # the executor reports it as a field error
            raise _StepAside from error

    if type_ is GraphQLString:
        return lambda value: value if type(value) is str else checked(value)
    if type_ is GraphQLInt:
        return lambda value: value if type(value) is int and value in _INT_RANGE else checked(value)
    if type_ is GraphQLBoolean:
        return lambda value: value if type(value) is bool else checked(value)
    return checked
