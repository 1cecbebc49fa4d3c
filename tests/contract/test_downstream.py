"""A downstream typed client uses our generated client, models and packaged schema directly (README's example)."""


from graphql import build_schema

from mcli.core.session import AsyncSession
from mcli.graphql import schema_path
from mcli.graphql.generated import CreateRunInput, GetRunsPaginatedInput, MAPIClient, RunStatus
from mcli.testing import MapiServer


async def test_generated_client_against_the_local_server(mapi_server: MapiServer) -> None:
    assert "getRunsPaginated" in build_schema(schema_path().read_text()).query_type.fields  # type: ignore[union-attr]
    user = mapi_server.new_user()  # a user of the suite's server: only this test's runs
    async with AsyncSession(user.endpoint, user.api_key) as session:
        client = MAPIClient(session)
        created = await client.create_run(CreateRunInput(run_input={"image": "python", "command": "true"}))
        name = created.create_run[0].name
        page = await client.get_runs_paginated(GetRunsPaginatedInput(limit=10), include_details=False)
        runs = page.get_runs_paginated.runs
        assert [run.name for run in runs] == [name]
        assert isinstance(runs[0].status, RunStatus) and runs[0].details is None
    assert session._http.pool is None  # closed on the way out of `async with`
