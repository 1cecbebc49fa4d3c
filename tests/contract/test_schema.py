"""The contract: the schema builds, every operation document validates, and the packaged schema is the same file."""

from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, build_schema, parse, validate

from mcli.graphql import schema_path, schema_sdl

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "mcli" / "graphql" / "queries"


@pytest.fixture(scope="module")
def schema():  # type: ignore[no-untyped-def]
    return build_schema((ROOT / "schema.graphql").read_text())


def test_packaged_schema_is_the_root_schema() -> None:
    assert schema_sdl() == (ROOT / "schema.graphql").read_text()
    assert schema_path().read_text() == schema_sdl()


def test_every_document_validates(schema) -> None:  # type: ignore[no-untyped-def]
    documents = sorted(QUERIES.glob("*.graphql"))
    assert len(documents) >= 8
    combined = parse("\n".join(path.read_text() for path in documents))
    assert validate(schema, combined) == []


def test_every_type_and_field_is_described(schema) -> None:  # type: ignore[no-untyped-def]
    missing = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not graphql_type.description:
            missing.append(name)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType):
            missing += [f"{name}.{field}" for field, spec in graphql_type.fields.items() if not spec.description]
        if isinstance(graphql_type, GraphQLEnumType):
            missing += [f"{name}.{value}" for value, spec in graphql_type.values.items() if not spec.description]
    assert missing == []


def test_contract_names_exist(schema) -> None:  # type: ignore[no-untyped-def]
    # The official client names these in its variable definitions (contract §9.1).
    for type_name in ["CreateRunInput", "GetRunsInput", "GetRunsPaginatedInput", "StopRunsInput", "UpdateRunInput",
                      "UpdateRunMetadataInput", "GetRunLogsInput", "WatchRunStatusInput", "RunStatus", "RunType"]:
        assert type_name in schema.type_map
    mutation = schema.mutation_type.fields
    assert str(mutation["stopRuns"].args["stopRunsData"].type) == "StopRunsInput"
    assert str(mutation["createRun"].type) == "[Run!]!"
    subscription = schema.subscription_type.fields
    assert str(subscription["getRunLogsV2"].args["getRunLogsInput"].type) == "GetRunLogsInput!"
    assert str(subscription["watchRunStatus"].type) == "RunStatus!"
