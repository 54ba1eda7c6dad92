"""The README's local sections, run as printed: start the stack (on free ports), then every command they show.

`make run` is replaced by `./evergreen run` on free ports (the test must not need :3000, :3100, :3200 and
:4566), sweeping as `make run` does. Then every command of "## Two commands" and the local commands of
"## Backfill" (its first bash block) run exactly as printed, through a shell, with only those port numbers
substituted, and must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORTS = {"3000": "port", "3100": "klaviyo_port", "3200": "shopify_port", "4566": "moto_port"}


def section(readme: str, heading: str) -> str:
    start = readme.index(f"\n{heading}\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def local_section(readme: str) -> str:
    return section(readme, "## Two commands")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def commands_in(blocks: list[str]) -> list[str]:
    """Every command line in the blocks, without comments; `make ...` lines excluded."""
    commands = []
    for block in blocks:
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] != "make":
                commands.append(shlex.join(words))
    return commands


def printed_commands(text: str) -> list[str]:
    """Every command line in the text's bash blocks."""
    return commands_in(bash_blocks(text))


def backfill_commands(readme: str) -> list[str]:
    """The local backfill the README prints: the first bash block under "## Backfill"."""
    return commands_in(bash_blocks(section(readme, "## Backfill"))[:1])


def test_the_local_section_prints_the_commands_a_new_user_runs():
    commands = printed_commands(local_section((ROOT / "README.md").read_text()))

    assert commands[0].startswith("./evergreen send-webhook events/shopify/orders_create.json")
    assert any(command.startswith("./evergreen explain") for command in commands)
    assert any(command.startswith("./evergreen doctor") for command in commands)
    assert all("uv run" not in command for command in commands)


def test_the_backfill_section_prints_a_local_backfill_a_new_user_runs():
    commands = backfill_commands((ROOT / "README.md").read_text())

    assert [command.split()[:2] for command in commands][:2] == [
        ["./evergreen", "seed-shop"],
        ["./evergreen", "backfill"],
    ]
    assert all(command.startswith("./evergreen ") and "--aws" not in command for command in commands)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, free_port) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """`./evergreen run` on free ports, as `make run` starts it; yields the environment and the ports."""
    ports = {name: free_port() for name in DEFAULT_PORTS.values()}
    state = tmp_path_factory.mktemp("walkthrough") / "env.json"
    environment = {**os.environ, "EVERGREEN_LOCAL_STATE": str(state)}
    environment.pop("KLAVIYO_API_KEY", None)  # the sandbox, never the real Klaviyo
    command = ["./evergreen", "run", *(f"--{name.replace('_', '-')}={port}" for name, port in ports.items())]
    stack = subprocess.Popen(
        command, cwd=ROOT, env=environment, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not state.exists():
        if stack.poll() is not None or time.monotonic() > deadline:
            stack.kill()
            output = stack.stdout.read().decode() if stack.stdout else ""
            pytest.fail(f"the local stack did not start:\n{output}")
        time.sleep(0.2)
    try:
        yield environment, ports
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        os.killpg(stack.pid, signal.SIGINT)  # an impatient second Ctrl-C must not hang the stop
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        assert not state.exists(), "Ctrl-C (even twice) stops the stack and removes its state"


def test_every_command_of_the_local_sections_exits_0_as_printed(running):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    environment, ports = running
    readme = (ROOT / "README.md").read_text()
    commands = printed_commands(local_section(readme)) + backfill_commands(readme)
    for printed in commands:
        command = printed
        for default, name in DEFAULT_PORTS.items():
            command = command.replace(f"127.0.0.1:{default}", f"127.0.0.1:{ports[name]}")
        finished = subprocess.run(
            command, check=False, shell=True, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
        )
        assert finished.returncode == 0, f"{command}\nstdout:\n{finished.stdout}\nstderr:\n{finished.stderr}"
