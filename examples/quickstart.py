"""Launch a two-node run, follow its logs live, wait for it, and list runs, using only the public SDK.

With MOSAICML_API_ENDPOINT=local (as README's first command sets), mcli starts a local daemon for you (once;
later scripts reuse it). `mcli local status` shows it and `mcli local stop` stops it.
"""

import mcli

config = mcli.RunConfig(
    name=None,
    image="python:3.11",
    command='for step in 1 2 3; do echo "rank $NODE_RANK of $WORLD_SIZE: step $step"; sleep 0.2; done',
    compute={"nodes": 2, "gpus": 2},
    env_variables={"GREETING": "hello"},
    parameters={"lr": 0.001, "epochs": 3},
)

run = mcli.create_run(config)
print(f"created {run.name} ({run.status.value})")

for line in mcli.follow_run_logs(run):
    print(f"  | {line}", end="")

finished = mcli.wait_for_run_status(run, mcli.RunStatus.COMPLETED, timeout=60)
print(f"{finished.name} is {finished.status.value}")

print("recent runs:")
for listed in mcli.get_runs(limit=5):
    print(f"  {listed.name:<32} {listed.status.value:<10} {listed.created_at:%Y-%m-%d %H:%M:%S}")
