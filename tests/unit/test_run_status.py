"""RunStatus: lifecycle ordering, parsing and terminal states."""

import pytest

from mcli.graphql.generated.enums import RunStatus as GraphQLRunStatus
from mcli.models import RunStatus

LIFECYCLE = [
    RunStatus.UNKNOWN,
    RunStatus.PENDING,
    RunStatus.SCHEDULED,
    RunStatus.QUEUED,
    RunStatus.STARTING,
    RunStatus.RUNNING,
    RunStatus.TERMINATING,
    RunStatus.STOPPING,
    RunStatus.COMPLETED,
    RunStatus.STOPPED,
    RunStatus.FAILED_PULL,
    RunStatus.FAILED,
]


def test_has_the_twelve_seed_values() -> None:
    assert {status.value for status in RunStatus} == {
        "PENDING",
        "SCHEDULED",
        "QUEUED",
        "STARTING",
        "RUNNING",
        "TERMINATING",
        "STOPPING",
        "COMPLETED",
        "STOPPED",
        "FAILED_PULL",
        "FAILED",
        "UNKNOWN",
    }


def test_sorting_follows_the_lifecycle_not_the_alphabet() -> None:
    assert sorted(reversed(LIFECYCLE)) == LIFECYCLE
    assert RunStatus.PENDING < RunStatus.COMPLETED  # alphabetically it would be the other way round
    assert max([RunStatus.RUNNING, RunStatus.FAILED, RunStatus.QUEUED]) is RunStatus.FAILED


def test_seed_examples_for_before() -> None:
    assert RunStatus.RUNNING.before(RunStatus.COMPLETED)
    assert RunStatus.PENDING.before(RunStatus.RUNNING)
    assert not RunStatus.COMPLETED.before(RunStatus.RUNNING)


def test_inclusive_only_matters_for_equal_statuses() -> None:
    assert not RunStatus.RUNNING.before(RunStatus.RUNNING)
    assert RunStatus.RUNNING.before(RunStatus.RUNNING, inclusive=True)
    assert not RunStatus.RUNNING.after(RunStatus.RUNNING)
    assert RunStatus.RUNNING.after(RunStatus.RUNNING, inclusive=True)
    assert RunStatus.FAILED.after(RunStatus.RUNNING, inclusive=True)
    assert not RunStatus.PENDING.after(RunStatus.RUNNING, inclusive=True)


def test_unknown_sorts_first_and_terminal_statuses_last() -> None:
    active = [s for s in RunStatus if not s.is_terminal() and s is not RunStatus.UNKNOWN]
    for status in active:
        assert RunStatus.UNKNOWN.before(status)
        for terminal in (RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED_PULL, RunStatus.FAILED):
            assert terminal.after(status)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("other", ["RUNNING", "abc", 3, None, GraphQLRunStatus.RUNNING])
def test_comparing_with_anything_but_a_run_status_is_a_type_error(op: str, other: object) -> None:
    with pytest.raises(TypeError):
        eval(f"RunStatus.RUNNING {op} other")
    if not isinstance(other, GraphQLRunStatus):  # the generated enum's own str comparison runs first there
        with pytest.raises(TypeError):
            eval(f"other {op} RunStatus.RUNNING")


def test_before_and_after_accept_status_names() -> None:
    assert RunStatus.RUNNING.before("COMPLETED")
    assert RunStatus.RUNNING.after("pending", inclusive=True)
    assert RunStatus.RUNNING.after("running", inclusive=True) and not RunStatus.RUNNING.after("running")
    assert RunStatus.COMPLETED.before("failedPull") and RunStatus.FAILED_PULL.after("completed")
    with pytest.raises(ValueError, match="garbage"):
        RunStatus.RUNNING.before("garbage")


def test_is_terminal() -> None:
    terminal = {s for s in RunStatus if s.is_terminal()}
    assert terminal == {RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.FAILED_PULL}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RUNNING", RunStatus.RUNNING),
        ("running", RunStatus.RUNNING),
        ("Running", RunStatus.RUNNING),
        (" running ", RunStatus.RUNNING),
        ("failedPull", RunStatus.FAILED_PULL),
        ("FailedPull", RunStatus.FAILED_PULL),
        ("failed_pull", RunStatus.FAILED_PULL),
        ("FAILED_PULL", RunStatus.FAILED_PULL),
        ("failed-pull", RunStatus.FAILED_PULL),
        ("unknown", RunStatus.UNKNOWN),
        ("SOMETHING_NEW", RunStatus.UNKNOWN),
        ("", RunStatus.UNKNOWN),
        (None, RunStatus.UNKNOWN),
        (42, RunStatus.UNKNOWN),
        (RunStatus.QUEUED, RunStatus.QUEUED),
        (GraphQLRunStatus.STOPPING, RunStatus.STOPPING),
    ],
)
def test_from_string(text: object, expected: RunStatus) -> None:
    assert RunStatus.from_string(text) is expected


def test_constructor_parses_any_case_and_rejects_unknown_values() -> None:
    assert RunStatus("completed") is RunStatus.COMPLETED
    assert RunStatus("failedPull") is RunStatus.FAILED_PULL
    assert RunStatus("unknown") is RunStatus.UNKNOWN
    with pytest.raises(ValueError, match="garbage"):
        RunStatus("garbage")
    # A value a newer server sends is read with from_string, which keeps it as UNKNOWN.
    assert RunStatus.from_string("BRAND_NEW_STATUS") is RunStatus.UNKNOWN


def test_graphql_round_trip_covers_every_member() -> None:
    for status in RunStatus:
        assert RunStatus.from_graphql(status.to_graphql()) is status
    # A newer server's value becomes UNKNOWN in the generated enum, and so here.
    assert RunStatus.from_graphql(GraphQLRunStatus("PAUSED")) is RunStatus.UNKNOWN


def test_str_is_the_value_and_display_name_is_camel_case() -> None:
    assert str(RunStatus.FAILED_PULL) == "FAILED_PULL"
    assert f"{RunStatus.RUNNING}" == "RUNNING"
    assert RunStatus.FAILED_PULL.display_name == "FailedPull"
    assert RunStatus.RUNNING.display_name == "Running"


def test_equals_its_value_string() -> None:
    assert RunStatus.RUNNING == "RUNNING"
    by_status: dict[str, int] = {RunStatus.RUNNING: 1}
    assert by_status["RUNNING"] == 1
