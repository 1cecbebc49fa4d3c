"""Every exception mcli raises, rooted in MCLIException; the platform's answers in MAPIException(status, message).

One class per status a user acts on (like openai-python's), plus the seed's names: KubernetesException,
RunFailed, RunConfigException and InstanceTypeUnavailable. `except mcli.MCLIException` catches every failure of a
call, including bad arguments, broken replies, lost connections and timeouts. A bad argument is an
InvalidArgumentError (also a ValueError); a timeout is a CallTimeoutError (also the builtin TimeoutError the seed
documents), whose message says what timed out and after how long.
"""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any


class MCLIException(Exception):
    """Base of every mcli error: catch this to handle any failure of an mcli call."""


class InvalidArgumentError(MCLIException, ValueError):
    """An argument of an mcli call has the wrong type or value; nothing was sent.

    The message names the argument, what it got and what it accepts. It is also a ValueError, so
    `except ValueError` keeps working.
    """


class CallTimeoutError(MCLIException, TimeoutError):
    """An mcli call did not finish within its `timeout`; the message names the call and the time.

    It is also the builtin TimeoutError that the seed documents, so `except TimeoutError` keeps working. Work the
    call had already sent may still take effect (the message of a create says how to check).
    """


class MCLIConfigError(MCLIException):
    """mcli is not configured well enough to make a request (no API key, or an unusable endpoint).

    The message names the setting to fix (MOSAICML_API_KEY, MOSAICML_API_ENDPOINT or the config file).
    """


class MAPIException(MCLIException):
    """The platform answered with an error, sent a reply mcli cannot read, or could not be reached.

    Args:
        status: The HTTP status of the error (from a GraphQL error's numeric `extensions.code`, or the HTTP reply).
        message: What went wrong, in words.
        errors: Every GraphQL error of the reply, as sent.
        request_id: The server's id for the request (`X-Request-Id`), when it sends one; quote it to support.

    Attributes:
        status (HTTPStatus): as above; `str(error)` is `"Error <status>: <message>"`.
        message (str): as above.
        errors (list[dict]): as above.
        request_id (str | None): as above.
        retry_after (float | None): seconds the server asked to wait before trying again (`Retry-After`).
        transient (bool): the failure is in getting an answer (connection, 429/502/503/504), not the answer itself,
            so the same request may succeed later.
        may_have_run (bool): the request may have reached the server and taken effect; a mutation that failed this
            way is never sent again automatically.
    """

    default_status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        status: HTTPStatus | int | None = None,
        message: str = "Unknown Error",
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
        transient: bool = False,
        may_have_run: bool = True,
    ) -> None:
        self.status = _to_status(status, self.default_status)
        self.message = message
        self.errors = list(errors)
        self.request_id = request_id
        self.retry_after = retry_after
        self.transient = transient
        self.may_have_run = may_have_run
        suffix = f" (request id {request_id})" if request_id else ""
        super().__init__(f"Error {self.status.value}: {message}{suffix}")

    @classmethod
    def from_graphql_errors(
        cls, errors: Sequence[Mapping[str, Any]], *, request_id: str | None = None
    ) -> "MAPIException":
        """The exception for a GraphQL `errors` list; the first error decides the class.

        Args:
            errors: The reply's `errors` array.
            request_id: The server's id for the request, if it sent one.

        Returns:
            A MAPIException subclass for the first error's numeric `extensions.code` (500 when missing or unknown);
            RunConfigException for a "Bad run request", InstanceTypeUnavailable for `INSTANCE_TYPE_UNAVAILABLE`.
        """
        first = errors[0] if errors else {}
        extensions = first.get("extensions") or {}
        if not isinstance(extensions, Mapping):
            extensions = {}
        status = _to_status(extensions.get("code"), HTTPStatus.INTERNAL_SERVER_ERROR)
        message = str(first.get("message") or "Unknown Error")
        request_id = request_id or _text(extensions.get("requestId") or extensions.get("request_id"))
        if extensions.get("type") == "INSTANCE_TYPE_UNAVAILABLE":
            return InstanceTypeUnavailable(status, message, errors=errors, request_id=request_id)
        if status == HTTPStatus.BAD_REQUEST and "Bad run request" in message:
            return RunConfigException(message, status=status, errors=errors, request_id=request_id)
        if status == HTTPStatus.CONFLICT and "already exists" in message and "leave" not in message.lower():
            message += "; leave the run's name unset to get a unique one, or choose another name"
        error_class: type[MAPIException] = _STATUS_CLASSES.get(status, MAPIException)
        return error_class(status, message, errors=errors, request_id=request_id)


class KubernetesException(MAPIException):
    """An error about a run on its cluster (the seed's name): not found, or not in a state that allows the call."""


class BadRequestError(KubernetesException):
    """The platform refused the request's arguments (HTTP 400)."""

    default_status = HTTPStatus.BAD_REQUEST


class RunConfigException(BadRequestError, ValueError):
    """A run configuration is invalid: refused by mcli before sending it, or by the platform ("Bad run request").

    Args:
        message: What is wrong, naming the field.
        fields: The offending fields, dotted for nested keys (`compute.gpus`).

    Attributes:
        fields (tuple[str, ...]): as above. It is also a ValueError, and its status is 400.
    """

    def __init__(
        self,
        message: str,
        fields: Sequence[str] = (),
        *,
        status: HTTPStatus | int = HTTPStatus.BAD_REQUEST,
        errors: Sequence[Mapping[str, Any]] = (),
        request_id: str | None = None,
    ) -> None:
        super().__init__(status, message, errors=errors, request_id=request_id, may_have_run=False)
        self.fields = tuple(fields)

    def __str__(self) -> str:
        # Raised before any request, the message alone reads best; "Error 400:" adds nothing.
        return self.message if not self.errors else super().__str__()


# The name this SDK used before settling on the seed's; kept so existing `except RunConfigError` still works.
RunConfigError = RunConfigException


class InstanceTypeUnavailable(BadRequestError):
    """The requested compute (GPU type and count) can never be placed on the cluster."""


class AuthenticationError(MAPIException):
    """The API key is missing, wrong or revoked (HTTP 401)."""

    default_status = HTTPStatus.UNAUTHORIZED


class PermissionDeniedError(MAPIException):
    """The API key may not do this (HTTP 403)."""

    default_status = HTTPStatus.FORBIDDEN


class NotFoundError(KubernetesException):
    """The run (or other object) does not exist, or belongs to another user (HTTP 404)."""

    default_status = HTTPStatus.NOT_FOUND


class ConflictError(MAPIException):
    """The request conflicts with existing state, e.g. a run name already in use (HTTP 409)."""

    default_status = HTTPStatus.CONFLICT


class RateLimitError(MAPIException):
    """Too many requests (HTTP 429); retried automatically, honouring Retry-After, before this is raised."""

    default_status = HTTPStatus.TOO_MANY_REQUESTS


class InternalServerError(MAPIException):
    """The server failed while handling the request (HTTP 500)."""

    default_status = HTTPStatus.INTERNAL_SERVER_ERROR


class MalformedResponseError(InternalServerError):
    """The server's reply does not match the API's schema (no data, a missing field, a wrong type).

    The message says which operation and what was wrong; this is a server bug or a client/server version mismatch.
    """


class APIConnectionError(MAPIException):
    """The platform could not be reached, or the connection broke before a reply (or 502/503/504 from a proxy)."""

    default_status = HTTPStatus.SERVICE_UNAVAILABLE


class OutcomeUnknownError(APIConnectionError):
    """A change was sent, and the connection broke before the reply: whether it took effect is unknown.

    It is never sent again automatically (that could, for example, create a run twice). The message says how to
    check, e.g. with `mcli.get_runs([name])`.

    Attributes:
        lost (str): How the connection broke, without the advice (a caller that knows more advises better).
    """

    lost: str = ""


class RunFailed(MAPIException):
    """A run ended (FAILED, STOPPED, COMPLETED...) without ever reaching the status that was awaited.

    Attributes:
        run (Run): The run as it ended.
    """

    default_status = HTTPStatus.CONFLICT

    def __init__(self, run: Any, message: str) -> None:
        super().__init__(message=message, may_have_run=False)
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


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def error_for_status(status: int, message: str, **details: Any) -> MAPIException:
    """The exception for an HTTP status without a GraphQL body (for example a proxy's 502).

    Args:
        status: The HTTP status; a non-standard one (520) counts as 500.
        message: What went wrong.
        **details: `request_id`, `retry_after`, `transient`, `may_have_run`, passed to MAPIException.
    """
    resolved = _to_status(status, HTTPStatus.INTERNAL_SERVER_ERROR)
    return _STATUS_CLASSES.get(resolved, MAPIException)(resolved, message, **details)
