"""GraphQL errors map onto one hierarchy rooted in MAPIException, keeping the numeric extensions.code."""

from http import HTTPStatus

import pytest

from mcli.core.errors import (
    AuthenticationError,
    BadRequestError,
    InstanceTypeUnavailable,
    InternalServerError,
    KubernetesException,
    MAPIException,
    NotFoundError,
    RunConfigException,
)


@pytest.mark.parametrize(
    ("code", "expected_class", "status"),
    [
        (404, NotFoundError, HTTPStatus.NOT_FOUND),
        (401, AuthenticationError, HTTPStatus.UNAUTHORIZED),
        (400, BadRequestError, HTTPStatus.BAD_REQUEST),
        (500, InternalServerError, HTTPStatus.INTERNAL_SERVER_ERROR),
        ("NOT_FOUND", InternalServerError, HTTPStatus.INTERNAL_SERVER_ERROR),
        (999, InternalServerError, HTTPStatus.INTERNAL_SERVER_ERROR),
        (None, InternalServerError, HTTPStatus.INTERNAL_SERVER_ERROR),
    ],
)
def test_status_classes(code: object, expected_class: type, status: HTTPStatus) -> None:
    error = MAPIException.from_graphql_errors([{"message": "nope", "extensions": {"code": code}}])
    assert type(error) is expected_class
    assert error.status is status
    assert str(error) == f"Error {status.value}: nope"


def test_not_found_is_the_seeds_kubernetes_exception() -> None:
    error = MAPIException.from_graphql_errors([{"message": "Run x not found", "extensions": {"code": 404}}])
    assert isinstance(error, KubernetesException) and isinstance(error, MAPIException)


def test_instance_type_unavailable_and_bad_run_request() -> None:
    unavailable = MAPIException.from_graphql_errors(
        [{"message": "no such capacity", "extensions": {"code": 400, "type": "INSTANCE_TYPE_UNAVAILABLE"}}]
    )
    assert isinstance(unavailable, InstanceTypeUnavailable)
    bad = MAPIException.from_graphql_errors([{"message": "Bad run request: image is required",
                                               "extensions": {"code": 400}}])
    assert isinstance(bad, RunConfigException) and bad.message.endswith("image is required")


def test_every_error_is_kept() -> None:
    errors = [{"message": "a", "extensions": {"code": 400}}, {"message": "b", "extensions": {"code": 404}}]
    error = MAPIException.from_graphql_errors(errors)
    assert error.errors == errors and error.status == HTTPStatus.BAD_REQUEST
