"""The layer ships exactly the dependencies uv.lock pins."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

EXPORT = [
    "export",
    "--frozen",
    "--no-dev",
    "--no-hashes",
    "--no-emit-project",
    "--no-header",
    "--no-annotate",
]
"""Keep in step with the Makefile's `requirements` target."""


def _pins(text: str) -> list[str]:
    """The requirement lines, without comments and blank lines (robust to uv's formatting across versions)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_layer_requirements_match_the_lock(repo_root: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot re-export uv.lock to compare with layers/evergreen/requirements.txt")
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_SYNC": "1"}
    exported = subprocess.run(
        [uv, *EXPORT], cwd=repo_root, capture_output=True, text=True, check=True, env=environment, timeout=120
    ).stdout
    committed = (repo_root / "layers/evergreen/requirements.txt").read_text(encoding="utf-8")
    assert _pins(committed) == _pins(exported), (
        "layers/evergreen/requirements.txt drifted from uv.lock: run `make requirements`"
    )


def test_the_layer_pins_every_dependency_exactly(repo_root: Path) -> None:
    lines = (repo_root / "layers/evergreen/requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.split(";")[0].strip() for line in lines if line.strip() and not line.startswith("#")]
    assert requirements, "the layer would ship no dependencies"
    assert all("==" in requirement for requirement in requirements)
    names = {requirement.split("==")[0].lower() for requirement in requirements}
    assert {"aws-lambda-powertools", "pydantic", "pydantic-core", "pyyaml", "httpx"} <= names
    assert not names & {"moto", "pytest", "mypy", "ruff", "cfn-lint", "hypothesis"}, "dev tools in the layer"
