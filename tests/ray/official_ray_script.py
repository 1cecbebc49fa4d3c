"""Runs inside the venv with only the official `mosaicml-cli==0.8.3`: a multi-node run on the Ray executor.

Usage: python official_ray_script.py   (endpoint and key come from MOSAICML_API_* env vars)
"""

import mcli
from mcli import RunConfig, RunStatus


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    command = 'for i in $(seq 1 100); do echo "rank $NODE_RANK of $WORLD_SIZE line $i"; done'
    run = mcli.create_run(
        RunConfig(name="official-ray", image="local/x", command=command, compute={"gpus": 4, "nodes": 2})
    )
    followed = "".join(mcli.follow_run_logs(run))
    check(followed == "".join(f"rank 0 of 2 line {i}\n" for i in range(1, 101)), followed[-200:])
    done = mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    rank1 = "".join(mcli.get_run_logs(run, rank=1))  # once the run has ended: rank 1 may end after rank 0
    check(rank1 == "".join(f"rank 1 of 2 line {i}\n" for i in range(1, 101)), rank1[-200:])
    fetched = mcli.get_run(done.name)
    check(fetched.status == RunStatus.COMPLETED, fetched.status)
    names = {node.name for node in fetched.nodes}
    check(len(names) == 2 and "Unknown" not in names, fetched.nodes)

    try:
        mcli.create_run(
            RunConfig(
                name="official-too-big", image="local/x", command="true", compute={"gpus": 6, "nodes": 2}
            )
        )
    except mcli.MAPIException as exc:
        check("can never fit" in str(exc), exc)
    else:
        raise AssertionError("a run that can never fit was accepted")

    sleeper = mcli.create_run(
        RunConfig(name="official-stop", image="local/x", command="sleep 120", compute={"gpus": 2, "nodes": 2})
    )
    mcli.wait_for_run_status(sleeper, RunStatus.RUNNING, timeout=60)
    mcli.stop_run(sleeper)
    mcli.wait_for_run_status(sleeper, RunStatus.STOPPED, timeout=60)
    check(mcli.get_run("official-stop").status == RunStatus.STOPPED, "stop")
    print("official client on ray: ok")


if __name__ == "__main__":
    main()
