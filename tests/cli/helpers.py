"""Constants and helpers shared by the CLI tests."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import uuid
from collections.abc import Callable
from pathlib import Path

API_KEY = "cli-test-key-0123456789"
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "run.yaml"

# The console script next to this interpreter is what a user runs; fall back to the module when not installed.
_SCRIPT = Path(sys.executable).with_name("mcli")
MCLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mcli.cli.main"]

Cli = Callable[..., "subprocess.CompletedProcess[str]"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_config(directory: Path, command: str, nodes: int = 1) -> Path:
    path = directory / f"{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(
        "image: python:3.11\n"
        f"compute:\n  nodes: {nodes}\n"
        "command: |\n" + "".join(f"  {line}\n" for line in command.splitlines())
    )
    return path


def run_in_terminal(
    args: list[str], env: dict[str, str], answer: str | None = None, columns: int = 100
) -> tuple[int, str]:
    """Run mcli with a pseudo-terminal `columns` wide as stdin, stdout and stderr, as a person would; `answer`
    is typed in."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {key: value for key, value in env.items() if key not in ("COLUMNS", "LINES")}
    with subprocess.Popen(
        [*MCLI, *args], stdin=follower, stdout=follower, stderr=follower, env=env
    ) as process:
        os.close(follower)
        if answer is not None:
            os.write(leader, answer.encode())
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        code = process.wait(timeout=30)
    os.close(leader)
    return code, output.decode()
