"""No hang at exit: whatever a script leaves open, the process ends within 2 s of its last line, and the run goes on.

Each case is a real script run in a subprocess against the local server; it prints "END" as its last act, and the
test measures from that line to the process's exit.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

import mcli
from mcli import RunConfig, RunStatus
from mcli.local import LocalServer

EXIT_WITHIN = 2.0

PRELUDE = textwrap.dedent(
    """
    import sys, time
    import mcli
    from mcli import RunConfig
    run = mcli.create_run(RunConfig(image="img", command="for i in $(seq 1 600); do echo tick $i; sleep 0.05; done"))
    print("RUN", run.name, flush=True)
    """
)

CASES = {
    # A partly read follow generator held in a module-level variable: its cleanup runs during interpreter exit.
    "partly-read-follow": "lines = mcli.follow_run_logs(run)\nprint(next(lines), end='', flush=True)\n",
    # The same for the status watch generator.
    "partly-read-watch": "updates = mcli.watch_run_status(run)\nprint(next(updates).status, flush=True)\n",
    # future=True work nobody waits for.
    "pending-futures": (
        "waiting = mcli.wait_for_run_status(run, 'COMPLETED', future=True)\n"
        "following = mcli.follow_run_logs(run, future=True)\n"
        "listing = [mcli.get_runs(future=True) for _ in range(5)]\n"
    ),
    # A follow generator on another (non-daemon) thread's stack is not the script's concern; a finished one is.
    "follow-then-break": "for line in mcli.follow_run_logs(run):\n    break\n",
}


def _run_script(body: str, env: dict[str, str]) -> tuple[float, str, str, str]:
    script = PRELUDE + body + "print('END', flush=True)\n"
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    out: list[str] = []
    ended_at = None
    deadline = time.monotonic() + 60
    try:
        for line in process.stdout:
            out.append(line)
            if line.strip() == "END":
                ended_at = time.monotonic()
                break
            assert time.monotonic() < deadline, "the script did not reach its end"
        assert ended_at is not None, (
            f"the script failed: {''.join(out)} {process.stderr.read() if process.stderr else ''}"
        )
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"the process was still alive 10 s after the script's end: {''.join(out)}")
        exit_after = time.monotonic() - ended_at
        rest, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    run_name = next(line.split()[1] for line in out if line.startswith("RUN "))
    return exit_after, "".join(out) + rest, err, run_name


@pytest.fixture
def script_env(configured: LocalServer) -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "default"}


@pytest.mark.parametrize("body", list(CASES.values()), ids=list(CASES))
def test_script_exits_promptly_and_the_run_keeps_going(body: str, script_env: dict[str, str]) -> None:
    exit_after, output, err, run_name = _run_script(body, script_env)
    assert exit_after < EXIT_WITHIN, f"exit took {exit_after:.2f} s; output: {output} stderr: {err}"
    assert "Traceback" not in err and "Unclosed" not in err and "never awaited" not in err, err
    # Leaving never stops the run: it is still going on the server.
    assert mcli.get_run(run_name).status in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)
    mcli.stop_run(run_name)


class SilentServer:
    """Accepts connections and reads requests, but never answers: a server that stopped answering."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.clients.append(client)

    def close(self) -> None:
        self.sock.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_exit_with_a_server_that_stopped_answering(silent_server: SilentServer) -> None:
    endpoint = f"http://127.0.0.1:{silent_server.port}/graphql"
    script = textwrap.dedent(
        """
        import mcli
        futures = [mcli.get_runs(future=True), mcli.create_run(mcli.RunConfig(image="i", command="true"), future=True)]
        try:
            mcli.get_runs(timeout=0.5)
        except TimeoutError as error:
            print("TIMEOUT", error, flush=True)
        print("END", flush=True)
        """
    )
    env = {**os.environ, "MOSAICML_API_ENDPOINT": endpoint, "MOSAICML_API_KEY": "k"}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "END":
            break
    ended = time.monotonic()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        pytest.fail("the process hung at exit with a silent server")
    assert time.monotonic() - ended < EXIT_WITHIN
    # The timeout says what timed out and after how long.
    assert any(line.startswith("TIMEOUT get_runs did not finish within 0.5 s") for line in lines), lines


def test_waiting_on_a_future_after_a_partly_read_follow(configured: LocalServer) -> None:
    # In-process: closing a half-read follow generator unsubscribes and leaves the run going.
    run = mcli.create_run(
        RunConfig(image="img", command="for i in $(seq 1 200); do echo $i; sleep 0.05; done")
    )
    lines = mcli.follow_run_logs(run)
    assert next(lines) == "1\n"
    started = time.monotonic()
    lines.close()
    assert time.monotonic() - started < 1.0
    assert mcli.get_run(run).status is RunStatus.RUNNING
    mcli.stop_run(run)
