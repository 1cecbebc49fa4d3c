"""Runs inside a venv that has only the official `mosaicml-cli==0.8.3` (its `mcli`, not ours).

Usage: python official_client_script.py good|badkey   (endpoint and key come from MOSAICML_API_* env vars)
"""

import datetime as dt
import os
import subprocess
import sys
import threading
import time

import mcli
from mcli import RunConfig, RunStatus


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def good():
    config = RunConfig(
        name="conf-live",
        image="python:3.11",
        command='for i in $(seq 1 60); do echo line-$i; sleep 0.01; done; echo "FOO=$FOO"; cat $PARAMETERS_PATH',
        compute={"gpus": 0},
        env_variables={"FOO": "bar"},
        parameters={"lr": 0.5, "nested": {"k": [1, 2]}},
        metadata={"team": "conformance"},
    )
    before_create = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    run = mcli.create_run(config)
    check(run.name == "conf-live", run.name)

    text = "".join(mcli.follow_run_logs(run))
    lines = text.splitlines()
    check(lines[:60] == [f"line-{i}" for i in range(1, 61)], f"follow lines: {lines[:65]}")
    check("FOO=bar" in lines, "env variable missing")

    done = mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    check(done.status == RunStatus.COMPLETED, done.status)
    fetched = mcli.get_run("conf-live")
    check(fetched.status == RunStatus.COMPLETED, fetched.status)
    check(
        fetched.submitted_config.parameters == {"lr": 0.5, "nested": {"k": [1, 2]}}, fetched.submitted_config
    )
    check(fetched.metadata == {"team": "conformance"}, fetched.metadata)
    check(fetched.started_at is not None and fetched.completed_at is not None, "timestamps")
    check(len(fetched.lifecycle) >= 3, fetched.lifecycle)
    logs = "".join(mcli.get_run_logs("conf-live"))
    check(logs == text, "get_run_logs differs from the followed log")
    tail = "".join(mcli.get_run_logs("conf-live", tail=2))
    check(tail.count("\n") == 2, repr(tail))

    failing = mcli.create_run(RunConfig(name="conf-fail", image="python:3.11", command="echo bye; exit 7"))
    failed = mcli.wait_for_run_status(failing, RunStatus.COMPLETED, timeout=60)
    check(mcli.get_run(failing.name).status == RunStatus.FAILED, failed.status)
    check("7" in (mcli.get_run(failing.name).reason or ""), mcli.get_run(failing.name).reason)

    sleeper = mcli.create_run(RunConfig(name="conf-stop", image="python:3.11", command="sleep 120"))
    mcli.wait_for_run_status(sleeper, RunStatus.RUNNING, timeout=60)
    mcli.stop_run(sleeper, reason="conformance stop")
    stopped = mcli.wait_for_run_status(sleeper, RunStatus.STOPPED, timeout=60)
    check(mcli.get_run("conf-stop").status == RunStatus.STOPPED, stopped.status)

    names = {r.name for r in mcli.get_runs(["conf-live", "conf-fail"])}
    check(names == {"conf-live", "conf-fail"}, names)
    by_status = [r.name for r in mcli.get_runs(statuses=[RunStatus.FAILED])]
    check(by_status == ["conf-fail"], by_status)
    after = [r.name for r in mcli.get_runs(after=before_create)]
    check(set(after) == {"conf-live", "conf-fail", "conf-stop"}, after)
    check(list(mcli.get_runs(before=before_create)) == [], "before filter")
    check([r.name for r in mcli.get_runs(before="2999-01-01", after="2000-01-01")] != [], "string dates")
    page = mcli.get_runs(limit=1)
    seen = [r.name for r in page]
    while page.has_next_page:
        page = page.next_page(limit=1)
        seen += [r.name for r in page]
    check(seen == ["conf-stop", "conf-fail", "conf-live"], seen)

    updated = mcli.update_run_metadata("conf-live", {"extra": 1, "team": "changed"})
    check(updated.metadata == {"team": "changed", "extra": 1}, updated.metadata)
    updated = mcli.update_run("conf-live", priority="low", max_duration=0.5)
    check(updated.priority == "low", updated.priority)

    deleted = mcli.delete_runs(["conf-live", "conf-fail", "conf-stop"])
    check(len(deleted) == 3, deleted)
    check(list(mcli.get_runs()) == [], "runs left after delete")
    print("official client conformance: ok")


def official_cli(*args):
    """The official `mcli` command of this venv; its output, after checking it succeeded."""
    command = [os.path.join(os.path.dirname(sys.executable), "mcli"), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def lifecycle():
    from mcli.api.cluster import get_clusters

    (cluster,) = get_clusters()
    check(cluster.name == "local", cluster)
    gpu = [i for i in cluster.cluster_instances if i.gpus == 8]
    check(len(gpu) == 1 and gpu[0].gpus == 8 and gpu[0].nodes == 2, cluster.cluster_instances)
    listing = official_cli("get", "clusters")
    check("local" in listing and "gpu-8x" in listing, listing)

    sleeper = mcli.create_run(RunConfig(name="conf-util", image="python:3.11", command="sleep 120",
                                        compute={"gpus": 8}))
    mcli.wait_for_run_status(sleeper, RunStatus.RUNNING, timeout=60)
    usage = official_cli("util")
    check("conf-util" in usage, usage)
    check(" 8 " in usage.split("Active")[0], f"8 GPUs in use expected:\n{usage}")

    official_cli("update", "run", "conf-util", "--max-retries", "3")
    check(mcli.get_run("conf-util").max_retries == 3, "max retries not updated")
    mcli.stop_run(sleeper)
    mcli.wait_for_run_status(sleeper, RunStatus.STOPPED, timeout=60)
    check(mcli.get_run("conf-util").status == RunStatus.STOPPED, "stop")

    # Fails twice, then succeeds: three resumptions, each with its own log.
    counting = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ "$n" -ge 3 ]'
    flaky = mcli.create_run(RunConfig(name="conf-flaky", image="python:3.11", command=counting,
                                      scheduling={"max_retries": 3}))
    deadline = time.monotonic() + 60
    while mcli.get_run("conf-flaky").status != RunStatus.COMPLETED and time.monotonic() < deadline:
        time.sleep(0.2)
    flaky = mcli.get_run("conf-flaky")
    statuses = [(r.index, r.status) for r in flaky.resumptions]
    check(statuses == [(0, RunStatus.FAILED), (1, RunStatus.FAILED), (2, RunStatus.COMPLETED)], statuses)
    for index in range(3):
        text = "".join(mcli.get_run_logs("conf-flaky", resumption=index))
        check(text == f"attempt {index + 1}\n", (index, text))
    described = official_cli("describe", "run", "conf-flaky")
    check(f"{flaky.run_uid}-2" in described and "Resumption" in described, described)  # the latest execution

    # A stopped run restarts as a new resumption, PENDING first.
    restarted = mcli.start_run("conf-util")
    check(restarted.status in (RunStatus.PENDING, RunStatus.QUEUED), restarted.status)
    check([r.index for r in restarted.resumptions] == [0, 1], restarted.resumptions)
    mcli.wait_for_run_status("conf-util", RunStatus.RUNNING, timeout=60)
    mcli.stop_run("conf-util")

    interactive = mcli.create_interactive_run(RunConfig(name="conf-inter", image="python:3.11"), seconds=1)
    check(interactive.run_type.name == "INTERACTIVE", interactive.run_type)
    mcli.wait_for_run_status(interactive, RunStatus.COMPLETED, timeout=60)
    check(mcli.get_run("conf-inter").status == RunStatus.COMPLETED, "interactive run did not complete")
    print("lifecycle: ok")


def badkey():
    try:
        mcli.get_runs()
    except mcli.MAPIException as exc:
        check(int(exc.status) in (401, 403), exc)
    else:
        raise AssertionError("bad key accepted over HTTP")

    outcome = {}

    def follow():
        try:
            list(mcli.get_run_logs("anything"))
            outcome["result"] = "no error"
        except Exception as exc:
            outcome["result"] = exc

    worker = threading.Thread(target=follow, daemon=True)
    worker.start()
    worker.join(60)
    check("result" in outcome, "bad key over websockets hung")
    check(isinstance(outcome["result"], mcli.MAPIException), outcome["result"])
    print("bad key: ok")


if __name__ == "__main__":
    started = time.monotonic()
    {"good": good, "badkey": badkey, "lifecycle": lifecycle}[sys.argv[1]]()
    print(f"took {time.monotonic() - started:.1f} s")
