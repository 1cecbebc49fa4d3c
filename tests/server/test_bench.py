"""getRunsPaginated at 100,000 runs: prints p50 per filter shape (a figure, not a timed assertion)."""

from __future__ import annotations

from pathlib import Path

from mcli.local import LocalServer

from .bench import bulk_insert, measure
from .helpers import Api


async def test_query_speed_at_100k_runs(tmp_path: Path) -> None:
    bulk_insert(tmp_path, 100_000)
    with LocalServer(data_dir=tmp_path) as server:
        assert server.api_key is not None
        api = Api(server.endpoint, server.api_key)
        page = await api.page(filters={"name": {"in": ["bench-99999"]}})
        assert [r["name"] for r in page["runs"]] == ["bench-99999"]
        assert len((await api.page())["runs"]) == 100
        results = await measure(server.endpoint, server.api_key, repeats=15)
    print("\ngetRunsPaginated at 100k runs (HTTP round trip, 100 runs per page):")
    for label, p50 in results.items():
        print(f"  {label:28s} p50 {p50:6.1f} ms")
