"""API errors with the numeric HTTP-style codes the wire contract requires in `extensions.code`."""

from __future__ import annotations


class ApiError(Exception):
    """An error meant for the client: `code` becomes `extensions.code`, the message is shown as is."""

    def __init__(self, code: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


def bad_request(message: str, error_type: str | None = None) -> ApiError:
    return ApiError(400, message, error_type)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized: missing or unknown API key")


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)
