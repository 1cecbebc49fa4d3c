"""Schema-driven fuzzing of the local server with hypothesis-graphql.

Queries and mutations go over HTTP POST, subscriptions over a websocket in both subprotocols, all with a valid key.
No answer may be a 5xx or an internal error, every error must carry a numeric `extensions.code`, and the server
must still serve a normal request afterwards.

Safety: the server runs a run's `command` in /bin/sh. Every generated createRun has its `command` forced to the
shell builtin `true` before it is sent (checked again on the printed text), and the fuzzed server runs with an
empty PATH, so nothing but shell builtins could ever run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from hypothesis_graphql._strategies.ast import make_document_node
from hypothesis_graphql._strategies.strategy import _build_alphabet, _make_strategy
from websockets.sync.client import ClientConnection, connect

from .conftest import KEY, ServerProcess, report

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema.graphql"
SCHEMA = graphql.build_schema(SCHEMA_PATH.read_text())
SAFE_COMMAND = "true"

settings.register_profile(
    "robustness-fuzz",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("robustness-fuzz")

# --- strategies for the custom scalars --------------------------------------------------------------------------

_names = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,8}\Z")
_json_leaf = st.one_of(
    st.just(nodes.Null),
    st.booleans().map(nodes.Boolean),
    st.integers(-(2**70), 2**70).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    # Literals Python reads as +-inf or 0.0: JSON cannot carry infinity.
    st.sampled_from(["1e400", "-1e400", "1e-400", "1.5e308"]).map(lambda v: graphql.FloatValueNode(value=v)),
    st.text(max_size=16).map(nodes.String),
)


def _object(pairs: dict[str, graphql.ValueNode]) -> graphql.ObjectValueNode:
    return nodes.Object(
        [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in pairs.items()]
    )


_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3).map(nodes.List) | st.dictionaries(_names, inner, max_size=3).map(_object),
    max_leaves=12,
)
_small_int = st.one_of(st.integers(-2, 20), st.integers(-(2**40), 2**40)).map(nodes.Int)
_number = st.one_of(_small_int, _json_leaf)
# Run inputs that get past the first checks, so the deeper validation and the run machinery are fuzzed too.
_run_input = st.fixed_dictionaries(
    {"image": st.sampled_from(["local/fuzz:1", "", "x" * 300]).map(nodes.String),
     "command": st.just(nodes.String(SAFE_COMMAND))},
    optional={
        "runName": st.one_of(st.from_regex(r"\A[a-z][a-z0-9-]{0,12}[a-z0-9]\Z"), st.text(max_size=70)).map(nodes.String),
        "compute": st.fixed_dictionaries(
            {}, optional={"gpus": _number, "nodes": _number, "cpus": _number, "gpuType": _json_leaf, "cluster": _json_leaf}
        ).map(_object),
        "scheduling": st.fixed_dictionaries(
            {}, optional={"priority": _json_leaf, "maxRetries": _number, "preemptible": _json_leaf,
                          "maxDuration": _number, "retryOnSystemFailure": _json_leaf}
        ).map(_object),
        "parameters": _json_value,
        "metadata": _json_value,
        "envVariables": st.one_of(
            st.dictionaries(_names, _json_leaf, max_size=3).map(_object),
            st.lists(st.dictionaries(st.sampled_from(["envKey", "envValue", "key"]), _json_leaf).map(_object),
                     max_size=3).map(nodes.List),
            _json_value,
        ),
        "runType": st.one_of(st.sampled_from(["TRAINING", "INTERACTIVE", "bogus"]).map(nodes.String), _json_leaf),
        "gpuNum": _number,
        "cpus": _number,
    },
).map(_object)
CUSTOM_SCALARS = {
    "JSON": st.one_of(_json_value, _run_input),
    "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat(timespec="milliseconds") + "Z")),
}

# --- keeping generated commands harmless -----------------------------------------------------------------------


def _run_inputs(document: graphql.DocumentNode) -> Iterator[graphql.ValueNode]:
    """Every `createRun(createRunData: {runInput: ...})` value in a document."""
    found: list[graphql.ValueNode] = []

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if node.name.value != "createRun":
                return
            for argument in node.arguments or ():
                if isinstance(argument.value, graphql.ObjectValueNode):
                    for field in argument.value.fields:
                        if field.name.value == "runInput":
                            found.append(field.value)

    graphql.visit(document, Visitor())
    return iter(found)


def _neutralise(document: graphql.DocumentNode) -> graphql.DocumentNode:
    """Force every `command` and `entrypoint` key anywhere inside a createRun to the shell builtin `true`."""

    class Visitor(graphql.Visitor):
        depth = 0

        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if node.name.value == "createRun":
                self.depth += 1

        def leave_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if node.name.value == "createRun":
                self.depth -= 1

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
            if self.depth and node.name.value in ("command", "entrypoint"):
                return graphql.ObjectFieldNode(name=node.name, value=graphql.StringValueNode(value=SAFE_COMMAND))
            return None

    result: graphql.DocumentNode = graphql.visit(document, Visitor())
    return result


def _assert_harmless(query: str) -> None:
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return  # the server cannot parse it either, so it runs nothing
    for run_input in _run_inputs(document):
        if isinstance(run_input, graphql.ObjectValueNode):
            for field in run_input.fields:
                if field.name.value in ("command", "entrypoint"):
                    assert graphql.value_from_ast_untyped(field.value) == SAFE_COMMAND, query


def _print(document: graphql.DocumentNode) -> str:
    return graphql.print_ast(_neutralise(document))


def _subscriptions(mode: Mode) -> st.SearchStrategy[str]:
    subscription = SCHEMA.subscription_type
    assert subscription is not None
    per_field = [
        _make_strategy(SCHEMA, type_=subscription, fields=[name], custom_scalars=CUSTOM_SCALARS,
                       alphabet=_build_alphabet(), mode=mode)
        .map(lambda sel: make_document_node(sel, kind=graphql.OperationType.SUBSCRIPTION))
        .map(graphql.print_ast)
        for name in subscription.fields
    ]
    return st.one_of(per_field)


# --- the fuzzed server and its clients --------------------------------------------------------------------------

COUNTS: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()  # "rootField:code" for every fuzzed HTTP operation


def _roots(query: str) -> list[str]:
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return ["unparsable"]
    return [
        sel.name.value
        for op in document.definitions
        if isinstance(op, graphql.OperationDefinitionNode)
        for sel in op.selection_set.selections
        if isinstance(sel, graphql.FieldNode)
    ]


def _check_errors(errors: Any, where: str) -> None:
    assert isinstance(errors, list) and errors, where
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert isinstance(code, int) and not isinstance(code, bool), f"{where}: error without a numeric code: {error}"
        assert code < 500, f"{where}: internal error {error}"
        assert "Internal server error" not in str(error.get("message")), where


class Http:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def post(self, query: str, key: str | None = KEY) -> tuple[int, Any]:
        body = json.dumps({"query": query}).encode()
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = key
        for attempt in range(2):
            try:
                self.conn.request("POST", "/graphql", body, headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read())
            except (http.client.HTTPException, ConnectionError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        raise AssertionError("unreachable")


class Ws:
    """One websocket per subprotocol, reused for every subscription."""

    def __init__(self, port: int, protocol: str) -> None:
        self.port = port
        self.protocol = protocol
        self.ws: ClientConnection | None = None
        self.stack = contextlib.ExitStack()
        self.next_id = 0

    def _connect(self) -> ClientConnection:
        if self.ws is None:
            ws = self.stack.enter_context(
                connect(f"ws://127.0.0.1:{self.port}/graphql", subprotocols=[self.protocol], open_timeout=10)  # type: ignore[list-item]
            )
            ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": KEY}}))
            assert self._recv(ws)["type"] == "connection_ack"
            self.ws = ws
        return self.ws

    def _recv(self, ws: ClientConnection) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(ws.recv(timeout=15))
            if message["type"] == "ping":
                ws.send(json.dumps({"type": "pong"}))
            elif message["type"] not in ("ka", "pong"):
                return message

    def run(self, query: str) -> list[dict[str, Any]]:
        """Every message of one operation up to and including its end (`complete` or `error`)."""
        ws = self._connect()
        self.next_id += 1
        op_id = str(self.next_id)
        start = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        ws.send(json.dumps({"type": start, "id": op_id, "payload": {"query": query}}))
        messages = []
        while True:
            message = self._recv(ws)
            assert message.get("id") == op_id, message
            messages.append(message)
            if message["type"] in ("complete", "error"):
                return messages
            assert len(messages) < 10_000, "a fuzzed subscription never ended"

    def close(self) -> None:
        self.stack.close()
        self.ws = None


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # PATH points nowhere: even a command that slipped through could only run shell builtins.
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "ENV", "BASH_ENV")}
    env["PATH"] = str(tmp_path_factory.mktemp("empty-path"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    server = ServerProcess(tmp_path_factory.mktemp("fuzz-data"), env=env).start()
    try:
        yield server
    finally:
        server.stop()
    report(
        f"fuzz: {sum(COUNTS.values())} operations fuzzed ({', '.join(f'{k}={v}' for k, v in sorted(COUNTS.items()))}); "
        f"server peak RSS {server.peak_rss / 2**20:.1f} MiB"
    )
    report("fuzz outcomes (root:codes): " + ", ".join(f"{k}={v}" for k, v in sorted(OUTCOMES.items())))
    log = "".join(server.output)
    assert "Traceback" not in log and "internal error" not in log, log[-5000:]


@pytest.fixture(scope="module")
def http_client(fuzz_server: ServerProcess) -> Iterator[Http]:
    client = Http(fuzz_server.port)
    yield client
    client.conn.close()


def _check_http(client: Http, query: str, kind: str) -> None:
    _assert_harmless(query)
    status, body = client.post(query)
    COUNTS[kind] += 1
    codes = sorted({e.get("extensions", {}).get("code") for e in body.get("errors") or []} or {200})
    for root in _roots(query):
        OUTCOMES[f"{root}:{'/'.join(map(str, codes))}"] += 1
    assert status < 500, (status, body, query)
    assert isinstance(body, dict), body
    if body.get("errors"):
        _check_errors(body["errors"], query)
    else:
        assert status == 200 and body.get("data") is not None, (status, body)


def _fuzzed(kinds: tuple[str, ...], max_examples: int, run: Callable[[], None]) -> None:
    """Run a hypothesis fuzzer and check it really exercised the server: at least 60% of its examples reached it
    (fewer means generation was cut short, and the fuzz proved little). Holds for each test run on its own."""
    before = sum(COUNTS[kind] for kind in kinds)
    run()
    ran = sum(COUNTS[kind] for kind in kinds) - before
    assert ran >= 0.6 * max_examples, f"only {ran} of {max_examples} fuzzed operations reached the server: {COUNTS}"


def test_fuzz_queries_and_mutations(http_client: Http) -> None:
    @FUZZ
    @given(query=from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, print_ast=_print))
    def fuzz(query: str) -> None:
        _check_http(http_client, query, "http-positive")

    _fuzzed(("http-positive",), FUZZ.max_examples, fuzz)


def test_fuzz_create_run(http_client: Http) -> None:
    @settings(FUZZ, max_examples=120)
    @given(query=from_schema(SCHEMA, fields=["createRun"], custom_scalars=CUSTOM_SCALARS, print_ast=_print))
    def fuzz(query: str) -> None:
        _check_http(http_client, query, "http-createRun")

    _fuzzed(("http-createRun",), 120, fuzz)


def test_fuzz_invalid_queries_and_mutations(http_client: Http) -> None:
    @settings(FUZZ, max_examples=150)
    @given(query=from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, print_ast=_print, mode=Mode.NEGATIVE))
    def fuzz(query: str) -> None:
        _check_http(http_client, query, "http-negative")

    _fuzzed(("http-negative",), 150, fuzz)


def test_fuzz_subscriptions(fuzz_server: ServerProcess) -> None:
    @settings(FUZZ, max_examples=160)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        query = data.draw(st.one_of(_subscriptions(Mode.POSITIVE), _subscriptions(Mode.NEGATIVE)), label="query")
        protocol = data.draw(st.sampled_from(["graphql-transport-ws", "graphql-ws"]), label="protocol")
        clients = _ws_clients(fuzz_server.port)
        messages = clients[protocol].run(query)
        COUNTS[f"ws-{protocol}"] += 1
        for message in messages:
            if message["type"] == "error":
                payload = message["payload"]
                _check_errors(payload if isinstance(payload, list) else [payload], query)
            elif message["type"] in ("next", "data") and message["payload"].get("errors"):
                _check_errors(message["payload"]["errors"], query)

    _fuzzed(("ws-graphql-transport-ws", "ws-graphql-ws"), 160, fuzz)


_WS: dict[int, dict[str, Ws]] = {}


def _ws_clients(port: int) -> dict[str, Ws]:
    if port not in _WS:
        _WS[port] = {p: Ws(port, p) for p in ("graphql-transport-ws", "graphql-ws")}
    return _WS[port]


def test_server_still_serves_after_fuzzing(fuzz_server: ServerProcess, http_client: Http) -> None:
    """Runs last in this module: a normal request still works, and fuzzed subscriptions left no socket stuck."""
    for client in _ws_clients(fuzz_server.port).values():
        client.close()
    created = (
        'mutation { createRun(createRunData: {runInput: {image: "local/ok:1", command: "true", runName: "after-fuzz"}})'
        " { name status } }"
    )
    status, body = http_client.post(created)
    assert status == 200 and body["data"]["createRun"][0]["name"] == "after-fuzz", body
    status, body = http_client.post(
        'query { getRunsPaginated(getRunsPaginatedData: {filters: {name: {in: ["after-fuzz"]}}}) '
        "{ runs { name status details { originalRunInput metadata } } } }"
    )
    assert status == 200 and [r["name"] for r in body["data"]["getRunsPaginated"]["runs"]] == ["after-fuzz"], body
    # Every run the fuzzer created can still be listed with all its details (no unserialisable stored value).
    status, body = http_client.post(
        "query { getRunsPaginated(getRunsPaginatedData: {limit: 1000}) "
        "{ runs { name status reason details { originalRunInput metadata formattedRunEvents { eventType } } } } }"
    )
    assert status == 200 and not body.get("errors"), body
    COUNTS["runs-created"] = len(body["data"]["getRunsPaginated"]["runs"])

