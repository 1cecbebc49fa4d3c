"""The exceptions users catch, rooted in MAPIException(status, message).

One class per status a user acts on (like openai-python's), plus the seed's names: KubernetesException,
RunFailed and InstanceTypeUnavailable.
"""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any


class MCLIException(Exception):
    """Base of every mcli error."""


class MCLIConfigError(MCLIException):
    """mcli is not configured well enough to make a request (for example no API key)."""


class MAPIException(MCLIException):
    """The platform answered with an error, or could not be reached.

    `status` is the HTTP status from the error's numeric `extensions.code`; `errors` holds every GraphQL error.
    """

    default_status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        status: HTTPStatus | int | None = None,
        message: str = "Unknown Error",
        *,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.status = _to_status(status, self.default_status)
        self.message = message
        self.errors = list(errors)
        super().__init__(f"Error {self.status.value}: {message}")

    @classmethod
    def from_graphql_errors(cls, errors: Sequence[Mapping[str, Any]]) -> "MAPIException":
        """The exception for a GraphQL `errors` list; the first error decides the class."""
        first = errors[0] if errors else {}
        extensions = first.get("extensions") or {}
        status = _to_status(extensions.get("code"), HTTPStatus.INTERNAL_SERVER_ERROR)
        message = str(first.get("message") or "Unknown Error")
        error_class: type[MAPIException] = _STATUS_CLASSES.get(status, MAPIException)
        if extensions.get("type") == "INSTANCE_TYPE_UNAVAILABLE":
            error_class = InstanceTypeUnavailable
        elif status == HTTPStatus.BAD_REQUEST and "Bad run request" in message:
            error_class = RunConfigException
        return error_class(status, message, errors=errors)


class KubernetesException(MAPIException):
    """An error about a run on its cluster (the seed's name): not found, or not in a state that allows the call."""


class BadRequestError(KubernetesException):
    default_status = HTTPStatus.BAD_REQUEST


class RunConfigException(BadRequestError):
    """The platform refused a run configuration."""


class InstanceTypeUnavailable(BadRequestError):
    """The requested compute can never be placed on the cluster."""


class AuthenticationError(MAPIException):
    default_status = HTTPStatus.UNAUTHORIZED


class PermissionDeniedError(MAPIException):
    default_status = HTTPStatus.FORBIDDEN


class NotFoundError(KubernetesException):
    default_status = HTTPStatus.NOT_FOUND


class ConflictError(MAPIException):
    default_status = HTTPStatus.CONFLICT


class RateLimitError(MAPIException):
    default_status = HTTPStatus.TOO_MANY_REQUESTS


class InternalServerError(MAPIException):
    default_status = HTTPStatus.INTERNAL_SERVER_ERROR


class APIConnectionError(MAPIException):
    """The platform could not be reached, or the connection broke."""

    default_status = HTTPStatus.SERVICE_UNAVAILABLE


class RunFailed(MAPIException):
    """A run ended (FAILED or STOPPED) before reaching the status that was awaited."""

    default_status = HTTPStatus.CONFLICT

    def __init__(self, run: Any, message: str) -> None:
        super().__init__(message=message)
        self.run = run


_STATUS_CLASSES: dict[HTTPStatus, type[MAPIException]] = {
    HTTPStatus.BAD_REQUEST: BadRequestError,
    HTTPStatus.UNAUTHORIZED: AuthenticationError,
    HTTPStatus.FORBIDDEN: PermissionDeniedError,
    HTTPStatus.NOT_FOUND: NotFoundError,
    HTTPStatus.CONFLICT: ConflictError,
    HTTPStatus.TOO_MANY_REQUESTS: RateLimitError,
    HTTPStatus.INTERNAL_SERVER_ERROR: InternalServerError,
    HTTPStatus.BAD_GATEWAY: APIConnectionError,
    HTTPStatus.SERVICE_UNAVAILABLE: APIConnectionError,
    HTTPStatus.GATEWAY_TIMEOUT: APIConnectionError,
}


def _to_status(code: object, default: HTTPStatus) -> HTTPStatus:
    if isinstance(code, HTTPStatus):
        return code
    if isinstance(code, int) and not isinstance(code, bool):
        try:
            return HTTPStatus(code)
        except ValueError:
            return default
    return default


def error_for_status(status: int, message: str) -> MAPIException:
    """The exception for an HTTP status without a GraphQL body (for example a proxy's 502)."""
    resolved = _to_status(status, HTTPStatus.INTERNAL_SERVER_ERROR)
    return _STATUS_CLASSES.get(resolved, MAPIException)(resolved, message)
