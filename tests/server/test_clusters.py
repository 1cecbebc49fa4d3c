"""`getClusters`: the local capacity and what is in use, shaped as the official 0.8.3 client reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcli.local import LocalServer

from .conftest import KEY
from .helpers import Api, GqlError, post

# The official client's utilization query, trimmed of nothing: every field it selects must resolve.
CLUSTERS = """query GetClusters($getClustersData: GetClustersInput!) {
  getClusters(getClustersData: $getClustersData) {
    id name provider allowFractional allowMultinode allowedSubmissionTypes isMultiTenant reservationType
    schedulerEnabled
    allowedInstances { name gpuType gpusPerNode cpus memory storage gpuNums numNodes
                       nodes { name isAlive isSchedulable upTime { endDate startDate } } }
    utilization {
      instanceUtils { instance { name gpuType gpuNums gpusPerNode numNodes nodes { name } }
                      clusterId gpusUsed gpusAvailable gpusTotal }
      activeRunsByUser { id createdAt userName runName instance gpuNum gpuType estimatedEndTime
                         maxDurationSeconds startTime scheduling { priority retryOnSystemFailure preemptible } }
      queuedRunsByUser { id createdAt userName runName instance gpuNum gpuType reason
                         scheduling { priority retryOnSystemFailure preemptible } }
      activeDeploymentsByUser { id createdAt userName deploymentName instance gpuNum }
      queuedDeploymentsByUser { id createdAt userName deploymentName instance gpuNum }
    }
  }
}"""


async def clusters(server: LocalServer, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    data = await post(server.endpoint, KEY, CLUSTERS, {"getClustersData": {"filters": filters or {}}})
    result: list[dict[str, Any]] = data["getClusters"]
    return result


async def test_capacity_instances_and_nodes(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(nodes=3, gpus_per_node=4, gpu_type="h100", cluster_name="lab")
    (cluster,) = await clusters(server)
    assert (cluster["name"], cluster["provider"], cluster["allowedSubmissionTypes"]) == ("lab", "LOCAL", ["TRAINING"])
    gpu, cpu = cluster["allowedInstances"]
    assert (gpu["gpuType"], gpu["gpusPerNode"], gpu["numNodes"]) == ("h100", 4, 3)
    assert [n["name"] for n in gpu["nodes"]] == ["lab-node-0", "lab-node-1", "lab-node-2"]
    assert gpu["gpuNums"] == [1, 2, 3, 4, 6, 8, 9, 12]
    assert (cpu["name"], cpu["gpuType"], cpu["gpusPerNode"]) == ("cpu", "None", 0)
    assert all(n["isAlive"] and n["upTime"]["startDate"].endswith("Z") for n in gpu["nodes"])
    util = cluster["utilization"]
    assert [(u["gpusUsed"], u["gpusAvailable"], u["gpusTotal"]) for u in util["instanceUtils"]] == [
        (0, 12, 12),
        (0, 0, 0),
    ]
    assert util["activeRunsByUser"] == util["queuedRunsByUser"] == util["activeDeploymentsByUser"] == []


async def test_active_and_queued_runs_hold_and_wait_for_gpus(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(nodes=1, gpus_per_node=8)
    api = Api(server.endpoint, KEY)
    await api.create(name="holder", command="sleep 60", compute={"gpus": 6},
                     scheduling={"maxDuration": 1, "preemptible": True, "priority": "low"})
    await api.create(name="waiter", command="sleep 60", compute={"gpus": 4})
    await api.wait("holder", {"RUNNING"})
    await api.wait("waiter", {"QUEUED"})
    (cluster,) = await clusters(server)
    util = cluster["utilization"]
    gpu_use = util["instanceUtils"][0]
    assert (gpu_use["gpusUsed"], gpu_use["gpusAvailable"]) == (6, 2)
    (active,) = util["activeRunsByUser"]
    assert (active["runName"], active["gpuNum"], active["userName"]) == ("holder", 6, "local@mcli.local")
    assert active["scheduling"] == {"priority": "low", "retryOnSystemFailure": False, "preemptible": True}
    assert active["maxDurationSeconds"] == 3600 and active["startTime"] and active["estimatedEndTime"]
    (queued,) = util["queuedRunsByUser"]
    assert queued["runName"] == "waiter" and "capacity" in queued["reason"]
    await api.stop(["holder", "waiter"])


async def test_filters(server: LocalServer) -> None:
    assert [c["name"] for c in await clusters(server, {"name": {"in": ["local"]}})] == ["local"]
    assert await clusters(server, {"name": {"in": ["elsewhere"]}}) == []
    assert len(await clusters(server, {"allowedSubmissionTypes": {"has": "TRAINING"}})) == 1
    assert await clusters(server, {"allowedSubmissionTypes": {"has": "INFERENCE"}}) == []


async def test_needs_a_valid_key(server: LocalServer) -> None:
    try:
        await post(server.endpoint, "wrong-key", CLUSTERS, {"getClustersData": {"filters": {}}})
    except GqlError as error:
        assert error.code == 401
    else:
        raise AssertionError("getClusters answered without a valid key")
