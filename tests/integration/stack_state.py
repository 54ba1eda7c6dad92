"""The state `evergreen run` leaves for the CLI's other commands, for tests that stand in for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def leave_stack_state(environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What `evergreen run` leaves for the other commands: the functions' environment in its state file (and in
    os.environ, as the functions see it)."""
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment
