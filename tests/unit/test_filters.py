"""The get_runs filter builder, argument by argument, as the request variables it produces."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest

from mcli.filters import build_name_selector, build_runs_page_input
from mcli.graphql.generated.input_types import GetRunsPaginatedInput
from mcli.models import RunStatus


@dataclass
class Named:
    name: str


class GPUType(Enum):
    A100_80GB = "a100_80gb"


def variables(page: GetRunsPaginatedInput) -> dict[str, Any]:
    """What goes over the wire for this input (unset fields omitted)."""
    return page.model_dump(mode="json", by_alias=True, exclude_unset=True)


def filters(**kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = variables(build_runs_page_input(**kwargs))["filters"]
    return result


def test_no_arguments_sends_empty_filters_and_include_deleted_false() -> None:
    assert variables(build_runs_page_input()) == {"filters": {}, "includeDeleted": False, "limit": None}


# --- runs ---------------------------------------------------------------------------------------------------


def test_runs_by_name_or_object_or_single_string() -> None:
    assert filters(runs=["a", "b"]) == {"name": {"in": ["a", "b"]}}
    assert filters(runs=[Named("a"), "b"]) == {"name": {"in": ["a", "b"]}}
    assert filters(runs="my-run") == {"name": {"in": ["my-run"]}}
    assert filters(runs=Named("solo")) == {"name": {"in": ["solo"]}}
    assert filters(runs=("a", "a", "b")) == {"name": {"in": ["a", "b"]}}
    assert filters(runs=(n for n in ["g"])) == {"name": {"in": ["g"]}}


def test_empty_runs_list_matches_nothing_rather_than_everything() -> None:
    assert filters(runs=[]) == {"name": {"in": []}}


@pytest.mark.parametrize("bad", [[1], [""], ["  "], [None], [Named("")], {"a": 1}, 5])
def test_bad_runs_name_the_argument(bad: Any) -> None:
    with pytest.raises(ValueError, match="runs"):
        build_runs_page_input(runs=bad)


# --- clusters -----------------------------------------------------------------------------------------------


def test_cluster_names_and_the_deprecated_clusters_alias() -> None:
    assert filters(cluster_names=["c1", Named("c2")]) == {"clusterName": {"in": ["c1", "c2"]}}
    assert filters(cluster_names="c1") == {"clusterName": {"in": ["c1"]}}
    assert filters(clusters=["c3"]) == {"clusterName": {"in": ["c3"]}}


def test_cluster_errors_name_the_argument_used() -> None:
    with pytest.raises(ValueError, match=r"cluster_names\[0\]"):
        build_runs_page_input(cluster_names=[3])
    with pytest.raises(ValueError, match=r"clusters\[1\]"):
        build_runs_page_input(clusters=["ok", None])
    with pytest.raises(ValueError, match="not both"):
        build_runs_page_input(cluster_names=["a"], clusters=["b"])


# --- before / after -----------------------------------------------------------------------------------------


def test_aware_datetimes_keep_their_offset() -> None:
    tz = timezone(timedelta(hours=2))
    assert filters(before=datetime(2024, 1, 1, 12, tzinfo=tz)) == {
        "createdAt": {"lt": "2024-01-01T12:00:00+02:00"}
    }
    assert filters(after=datetime(2024, 1, 1, tzinfo=UTC)) == {
        "createdAt": {"gte": "2024-01-01T00:00:00+00:00"}
    }


def test_naive_datetimes_are_local_time_sent_with_the_local_offset() -> None:
    naive = datetime(2024, 6, 1, 9, 30)
    sent = filters(after=naive)["createdAt"]["gte"]
    assert datetime.fromisoformat(sent) == naive.astimezone()
    assert datetime.fromisoformat(sent).tzinfo is not None


def test_strings_are_validated_and_normalized() -> None:
    assert filters(before="2024-01-01") == {"createdAt": {"lt": "2024-01-01"}}
    assert filters(before="2024-01-01T10:00:00Z") == {"createdAt": {"lt": "2024-01-01T10:00:00+00:00"}}
    # The server reads a missing offset as UTC; it is made explicit.
    assert filters(before="2024-01-01T10:00:00") == {"createdAt": {"lt": "2024-01-01T10:00:00+00:00"}}
    assert filters(after=" 2024-01-01T10:00:00.5+05:30 ") == {
        "createdAt": {"gte": "2024-01-01T10:00:00.500000+05:30"}
    }


def test_dates_are_sent_as_dates() -> None:
    assert filters(after=date(2024, 3, 1)) == {"createdAt": {"gte": "2024-03-01"}}


def test_before_and_after_together() -> None:
    assert filters(after="2024-01-01", before="2024-02-01") == {
        "createdAt": {"lt": "2024-02-01", "gte": "2024-01-01"}
    }


@pytest.mark.parametrize("argument", ["before", "after"])
@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "", 1700000000, ["2024-01-01"]])
def test_bad_dates_name_the_argument(argument: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=argument):
        build_runs_page_input(**{argument: bad})


def test_after_not_before_before_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"after .* must be earlier than before"):
        build_runs_page_input(after="2024-02-01", before="2024-01-01")
    with pytest.raises(ValueError, match="must be earlier"):
        build_runs_page_input(after="2024-01-01", before="2024-01-01")


# --- gpu_types / gpu_nums -----------------------------------------------------------------------------------


def test_gpu_types_accept_strings_and_enums() -> None:
    assert filters(gpu_types=["a100", GPUType.A100_80GB]) == {"gpuType": {"in": ["a100", "a100_80gb"]}}
    assert filters(gpu_types="t4") == {"gpuType": {"in": ["t4"]}}
    assert filters(gpu_types=GPUType.A100_80GB) == {"gpuType": {"in": ["a100_80gb"]}}


@pytest.mark.parametrize("bad", [[8], [""], [None]])
def test_bad_gpu_types(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"gpu_types\[0\]"):
        build_runs_page_input(gpu_types=bad)


def test_gpu_nums() -> None:
    assert filters(gpu_nums=[0, 8, 8]) == {"gpuNum": {"in": [0, 8]}}
    assert filters(gpu_nums=8) == {"gpuNum": {"in": [8]}}


@pytest.mark.parametrize("bad", [[True], [-1], ["8"], [1.0], [None]])
def test_bad_gpu_nums(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"gpu_nums\[0\] must be a non-negative integer"):
        build_runs_page_input(gpu_nums=bad)


# --- statuses -----------------------------------------------------------------------------------------------


def test_statuses_in_any_case_or_as_enums() -> None:
    assert filters(statuses=[RunStatus.RUNNING, "failed", "failedPull", "Unknown"]) == {
        "status": {"in": ["RUNNING", "FAILED", "FAILED_PULL", "UNKNOWN"]}
    }
    assert filters(statuses="completed") == {"status": {"in": ["COMPLETED"]}}
    assert filters(statuses=RunStatus.QUEUED) == {"status": {"in": ["QUEUED"]}}


@pytest.mark.parametrize("bad", ["finished", [None], [3]])
def test_unknown_statuses_list_the_valid_values(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"statuses\[0\].*valid values are PENDING, .*COMPLETED"):
        build_runs_page_input(statuses=bad)


# --- limit / include_deleted / cursor -----------------------------------------------------------------------


def test_limit() -> None:
    assert variables(build_runs_page_input(limit=5))["limit"] == 5
    assert variables(build_runs_page_input())["limit"] is None


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_bad_limit(bad: Any) -> None:
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        build_runs_page_input(limit=bad)


def test_include_deleted() -> None:
    assert variables(build_runs_page_input(include_deleted=True))["includeDeleted"] is True
    with pytest.raises(ValueError, match="include_deleted"):
        build_runs_page_input(include_deleted="yes")  # type: ignore[arg-type]


def test_cursor_is_sent_only_when_given() -> None:
    assert "cursor" not in variables(build_runs_page_input())
    assert variables(build_runs_page_input(cursor="CUR1"))["cursor"] == "CUR1"
    for bad in ("", 5):
        with pytest.raises(ValueError, match="cursor"):
            build_runs_page_input(cursor=bad)  # type: ignore[arg-type]


def test_every_filter_together_matches_the_wire_shape() -> None:
    page = build_runs_page_input(
        runs=["r"],
        cluster_names=["c"],
        before="2024-02-01",
        after="2024-01-01",
        gpu_types=["a100"],
        gpu_nums=[8],
        statuses=["running"],
        limit=10,
        include_deleted=True,
        cursor="x",
    )
    assert variables(page) == {
        "filters": {
            "name": {"in": ["r"]},
            "clusterName": {"in": ["c"]},
            "createdAt": {"lt": "2024-02-01", "gte": "2024-01-01"},
            "gpuType": {"in": ["a100"]},
            "gpuNum": {"in": [8]},
            "status": {"in": ["RUNNING"]},
        },
        "includeDeleted": True,
        "limit": 10,
        "cursor": "x",
    }


# --- build_name_selector ------------------------------------------------------------------------------------


def test_name_selector() -> None:
    selector = build_name_selector([Named("a"), "b"])
    assert selector.model_dump(by_alias=True, exclude_unset=True) == {"filters": {"name": {"in": ["a", "b"]}}}
    assert build_name_selector("solo").model_dump(by_alias=True, exclude_unset=True) == {
        "filters": {"name": {"in": ["solo"]}}
    }


@pytest.mark.parametrize("empty", [[], (), iter([])])
def test_name_selector_refuses_an_empty_selection(empty: Any) -> None:
    # An empty name filter could act on every run; it must never be sent.
    with pytest.raises(ValueError, match="at least one run"):
        build_name_selector(empty)


def test_name_selector_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match=r"runs\[1\]"):
        build_name_selector(["a", 2])
