"""RunStatus: the seed's twelve statuses, ordered by lifecycle."""

from __future__ import annotations

import re
from enum import Enum

from mcli.core.errors import InvalidArgumentError
from mcli.graphql.generated.enums import RunStatus as GraphQLRunStatus

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class RunStatus(str, Enum):
    """Possible statuses of a run

    Members:
        PENDING: The run has been dispatched and is waiting to be received.
        SCHEDULED: The run has been scheduled and is waiting to be queued.
        QUEUED: The run is queued and is awaiting execution.
        STARTING: The run is starting up and preparing to run.
        RUNNING: The run is actively running.
        TERMINATING: The run is in the process of being terminated.
        STOPPING: The run is in the process of being stopped.
        COMPLETED: The run has finished without any errors.
        STOPPED: The run has stopped.
        FAILED_PULL: The run has failed due to a kubernetes error (its image could not be pulled).
        FAILED: The run has failed due to an issue at runtime.
        UNKNOWN: A valid run status cannot be found (a value from a newer server).

    `RunStatus("running")` parses any case or camelCase and raises ValueError for a value that names no status.
    Statuses compare by lifecycle order (`RunStatus.PENDING < RunStatus.RUNNING`), not alphabetically; UNKNOWN sorts
    first and the terminal statuses after every active one. `before`/`after` accept members or strings.
    """

    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED_PULL = "FAILED_PULL"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def _missing_(cls, value: object) -> RunStatus:
        # RunStatus("running") and RunStatus("failedPull") work; RunStatus("garbage") raises ValueError.
        parsed = cls._parse(value)
        if parsed is None:
            raise InvalidArgumentError(f"{value!r} is not a run status; valid values are {', '.join(cls.known_values())}")
        return parsed

    @classmethod
    def _parse(cls, value: object) -> RunStatus | None:
        if isinstance(value, cls):
            return value
        exact = cls._value2member_map_.get(value) if isinstance(value, str) else None
        if exact is not None:
            return exact  # type: ignore[return-value]
        if isinstance(value, GraphQLRunStatus):
            return cls.from_graphql(value)
        if not isinstance(value, str):
            return None
        key = _CAMEL_BOUNDARY.sub("_", value.strip()).replace("-", "_").replace(" ", "_").upper()
        return cls.__members__.get(key)

    @classmethod
    def from_string(cls, value: object) -> RunStatus:
        """Parse a status sent by the server, in any case or in camelCase (`running`, `failedPull`).

        A value this client does not know (from a newer server) gives UNKNOWN instead of failing; for user input
        use `RunStatus(value)`, which raises ValueError for an unknown value.
        """
        return cls._parse(value) or cls.UNKNOWN

    @classmethod
    def known_values(cls) -> list[str]:
        """Every status value but UNKNOWN, in lifecycle order."""
        return [status.value for status in sorted(cls) if status is not cls.UNKNOWN]

    @classmethod
    def from_graphql(cls, value: GraphQLRunStatus) -> RunStatus:
        """Convert the generated GraphQL enum (which shares our values)."""
        return cls.__members__.get(value.value, cls.UNKNOWN)

    def to_graphql(self) -> GraphQLRunStatus:
        """The generated GraphQL enum member, for building query inputs."""
        return GraphQLRunStatus(self.value)

    @property
    def display_name(self) -> str:
        """`FAILED_PULL` -> `FailedPull`, as the official client shows statuses."""
        return "".join(part.capitalize() for part in self.value.split("_"))

    def is_terminal(self) -> bool:
        """True for statuses a run never leaves: COMPLETED, STOPPED, FAILED and FAILED_PULL."""
        return self in _TERMINAL

    def before(self, other: RunStatus | str, inclusive: bool = False) -> bool:
        """Returns True if this state usually comes "before" the other.

        Args:
            other: Another RunStatus, or its name as a string (`"RUNNING"`, `"running"`).
            inclusive: If True, equality evaluates to True. Default False.

        Returns:
            If this state is "before" the other.

        Raises:
            ValueError: `other` is a string that names no status.

        Example:
            >>> RunStatus.RUNNING.before(RunStatus.COMPLETED)
            True
            >>> RunStatus.PENDING.before("running")
            True
        """
        theirs = RunStatus(other)
        return self < theirs or (inclusive and self is theirs)

    def after(self, other: RunStatus | str, inclusive: bool = False) -> bool:
        """Returns True if this state usually comes "after" the other.

        Args:
            other: Another RunStatus, or its name as a string.
            inclusive: If True, equality evaluates to True. Default False.

        Returns:
            If this state is "after" the other.

        Raises:
            ValueError: `other` is a string that names no status.

        Example:
            >>> RunStatus.COMPLETED.after(RunStatus.RUNNING)
            True
            >>> RunStatus.RUNNING.after("pending")
            True
        """
        theirs = RunStatus(other)
        return self > theirs or (inclusive and self is theirs)

    def _rank(self, other: object, op: str) -> tuple[int, int]:
        # RunStatus is a str, so without this check `RunStatus.RUNNING < "abc"` would compare text.
        if not isinstance(other, RunStatus):
            raise TypeError(f"'{op}' not supported between RunStatus and {type(other).__name__}")
        return _ORDER[self], _ORDER[other]

    def __lt__(self, other: object) -> bool:
        mine, theirs = self._rank(other, "<")
        return mine < theirs

    def __le__(self, other: object) -> bool:
        mine, theirs = self._rank(other, "<=")
        return mine <= theirs

    def __gt__(self, other: object) -> bool:
        mine, theirs = self._rank(other, ">")
        return mine > theirs

    def __ge__(self, other: object) -> bool:
        mine, theirs = self._rank(other, ">=")
        return mine >= theirs

    def __str__(self) -> str:
        return self.value


# Earliest to latest. The declaration order above is the schema's; UNKNOWN moves to the front here.
_ORDER: dict[RunStatus, int] = {
    status: index
    for index, status in enumerate(
        [RunStatus.UNKNOWN, *(status for status in RunStatus if status is not RunStatus.UNKNOWN)]
    )
}
_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED_PULL, RunStatus.FAILED})
