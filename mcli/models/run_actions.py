"""The methods of `Run` that act on the run through the API: each is the SDK function of the same purpose.

They return a new Run (a Run is an immutable snapshot), or a Future of one with `future=True`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast, overload

if TYPE_CHECKING:
    import concurrent.futures

    from mcli.models.run import Run
    from mcli.models.run_config import RunConfig


class RunActions:
    """Mixed into `Run`; only its name (and, for `clone`, its submitted config) is used."""

    name: str
    submitted_config: RunConfig | None

    @overload
    def refresh(self, *, timeout: float | None = 10, future: Literal[False] = False) -> Run: ...
    @overload
    def refresh(
        self, *, timeout: float | None = 10, future: Literal[True]
    ) -> concurrent.futures.Future[Run]: ...
    def refresh(
        self, *, timeout: float | None = 10, future: bool = False
    ) -> Run | concurrent.futures.Future[Run]:
        """The run as it is now, with details.

        Args:
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            A new Run; this object is not changed (a Future of it with `future=True`).

        Raises:
            NotFoundError: The run no longer exists (it was deleted).
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.get_run(self.name, timeout=None if future else timeout)
        return _dispatch(work, future)

    @overload
    def stop(
        self, *, reason: str | None = None, timeout: float | None = 10, future: Literal[False] = False
    ) -> Run: ...
    @overload
    def stop(
        self, *, reason: str | None = None, timeout: float | None = 10, future: Literal[True]
    ) -> concurrent.futures.Future[Run]: ...
    def stop(
        self, *, reason: str | None = None, timeout: float | None = 10, future: bool = False
    ) -> Run | concurrent.futures.Future[Run]:
        """Stop the run; a stopped run is never resumed automatically.

        Args:
            reason: Why, recorded as the run's reason.
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            The run with its status after the request (STOPPING until its processes end; wait for STOPPED with `mcli.wait_for_run_status`) (a Future of it with `future=True`).

        Raises:
            NotFoundError: The run no longer exists.
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.stop_run(self.name, reason=reason, timeout=None if future else timeout)
        return _dispatch(work, future)

    @overload
    def delete(self, *, timeout: float | None = 10, future: Literal[False] = False) -> Run: ...
    @overload
    def delete(
        self, *, timeout: float | None = 10, future: Literal[True]
    ) -> concurrent.futures.Future[Run]: ...
    def delete(
        self, *, timeout: float | None = 10, future: bool = False
    ) -> Run | concurrent.futures.Future[Run]:
        """Delete the run, stopping it first if it is active.

        Args:
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            The deleted run (a Future of it with `future=True`).

        Raises:
            NotFoundError: The run no longer exists.
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.delete_run(self.name, timeout=None if future else timeout)
        return _dispatch(work, future)

    @overload
    def update(
        self,
        *,
        preemptible: bool | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        retry_on_system_failure: bool | None = None,
        max_duration: float | None = None,
        timeout: float | None = 10,
        future: Literal[False] = False,
    ) -> Run: ...
    @overload
    def update(
        self,
        *,
        preemptible: bool | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        retry_on_system_failure: bool | None = None,
        max_duration: float | None = None,
        timeout: float | None = 10,
        future: Literal[True],
    ) -> concurrent.futures.Future[Run]: ...
    def update(
        self,
        *,
        preemptible: bool | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        retry_on_system_failure: bool | None = None,
        max_duration: float | None = None,
        timeout: float | None = 10,
        future: bool = False,
    ) -> Run | concurrent.futures.Future[Run]:
        """Change the run's scheduling settings (see `mcli.update_run`); settings left None are kept.

        Args:
            preemptible: Whether the run may be preempted.
            priority: The scheduling priority (e.g. "low", "medium", "high").
            max_retries: How many times a failed execution is resumed automatically.
            retry_on_system_failure: Whether a system failure (server restart, lost node) is resumed.
            max_duration: The running-time limit in hours; on an active run it moves the deadline.
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            The run with the new settings (a Future of it with `future=True`).

        Raises:
            ValueError: Nothing to update, or a setting of the wrong type (`InvalidArgumentError`, at call time).
            NotFoundError: The run no longer exists.
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.update_run(
            self.name,
            preemptible=preemptible,
            priority=priority,
            max_retries=max_retries,
            retry_on_system_failure=retry_on_system_failure,
            max_duration=max_duration,
            timeout=None if future else timeout,
        )
        return _dispatch(work, future)

    @overload
    def update_metadata(
        self, metadata: Mapping[str, Any], *, timeout: float | None = 10, future: Literal[False] = False
    ) -> Run: ...
    @overload
    def update_metadata(
        self, metadata: Mapping[str, Any], *, timeout: float | None = 10, future: Literal[True]
    ) -> concurrent.futures.Future[Run]: ...
    def update_metadata(
        self, metadata: Mapping[str, Any], *, timeout: float | None = 10, future: bool = False
    ) -> Run | concurrent.futures.Future[Run]:
        """Merge keys into the run's metadata; keys not given are kept.

        Args:
            metadata: The keys and JSON-ready values to set.
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            The run with its metadata after the merge (a Future of it with `future=True`).

        Raises:
            NotFoundError: The run no longer exists.
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.update_run_metadata(self.name, metadata, timeout=None if future else timeout)
        return _dispatch(work, future)

    @overload
    def clone(self, *, timeout: float | None = 10, future: Literal[False] = False, **changes: Any) -> Run: ...
    @overload
    def clone(
        self, *, timeout: float | None = 10, future: Literal[True], **changes: Any
    ) -> concurrent.futures.Future[Run]: ...
    def clone(
        self, *, timeout: float | None = 10, future: bool = False, **changes: Any
    ) -> Run | concurrent.futures.Future[Run]:
        """Launch a new run from this run's submitted config, with `changes` applied (see `mcli.aio.clone_run`).

        Args:
            **changes: RunConfig fields to change (e.g. `name=`, `command=`); the name is new unless given.
            timeout: Seconds to wait for the answer (None waits forever); ignored with `future=True`.
            future: Return a `concurrent.futures.Future` at once instead of waiting.

        Returns:
            The new run (a Future of it with `future=True`).

        Raises:
            RunConfigException: The changed config is not valid.
            MAPIException: The server refused or could not be reached.
            TimeoutError: `timeout` passed (`CallTimeoutError`, naming the call and the time).
        """
        from mcli.sdk._call import _aio, _dispatch  # loaded on first use, as for the SDK's calls

        work = _aio.clone_run(cast("Run", self), timeout=None if future else timeout, **changes)
        return _dispatch(work, future)
