"""SDK tests run against the suite's local MAPI server (the `mcli.testing` plugin's `mapi_server`), each test as a
new user of it (`mapi_env`: its own runs only, an empty config home under `tmp_path`)."""

import pytest

from mcli.testing import MapiServer, MapiUser

# A key for servers a test starts itself (the suite's server has its own random key).
API_KEY = "sdk-test-key-0123456789"


@pytest.fixture(scope="session")
def server(mapi_server: MapiServer) -> MapiServer:
    return mapi_server


@pytest.fixture(autouse=True)
def configured(mapi_env: MapiUser) -> MapiUser:
    return mapi_env
