"""The layers ship exactly what uv.lock pins: the AWS SDK comes from the runtime, X-Ray only with tracing."""

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
"""Keep in step with the Makefile's UV_EXPORT."""
LAYER_PRUNE = ["--prune", "boto3", "--prune", "aws-xray-sdk"]
"""Keep in step with the Makefile's LAYER_PRUNE: what the python3.13 runtime provides, and what only tracing needs."""
RUNTIME_PRUNE = ["--prune", "boto3", "--prune", "botocore"]
"""Keep in step with the Makefile's RUNTIME_PRUNE: everything but what the runtime provides."""
RUNTIME_SDK = {"boto3", "botocore", "s3transfer", "python-dateutil", "six", "urllib3"}
"""What the Lambda python3.13 runtime provides in /var/runtime (jmespath too, but Powertools needs its own)."""


def _pins(text: str) -> list[str]:
    """The requirement lines, without comments and blank lines (robust to uv's formatting across versions)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _names(pins: list[str]) -> set[str]:
    return {pin.split(";")[0].split("==")[0].strip().lower() for pin in pins}


def _export(repo_root: Path, *extra: str) -> list[str]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot re-export uv.lock to compare with the layers' requirements.txt")
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_SYNC": "1"}
    done = subprocess.run(
        [uv, *EXPORT, *extra], cwd=repo_root, capture_output=True, text=True, check=True, env=environment, timeout=120
    )
    return _pins(done.stdout)


def _committed(repo_root: Path, layer: str) -> list[str]:
    name = "requirements.txt" if layer == "evergreen" else f"{layer}-requirements.txt"
    return _pins((repo_root / "layers" / "evergreen" / name).read_text(encoding="utf-8"))


def test_the_evergreen_layer_requirements_match_the_lock_without_the_aws_sdk_and_xray(repo_root: Path) -> None:
    assert _committed(repo_root, "evergreen") == _export(repo_root, *LAYER_PRUNE), (
        "layers/evergreen/requirements.txt drifted from uv.lock: run `make requirements`"
    )


def test_the_tracing_layer_holds_exactly_what_the_evergreen_layer_and_the_runtime_leave_out(repo_root: Path) -> None:
    beside_the_runtime = _export(repo_root, *RUNTIME_PRUNE)
    evergreen, tracing = _committed(repo_root, "evergreen"), _committed(repo_root, "tracing")
    assert not set(evergreen) & set(tracing)
    assert sorted(evergreen + tracing) == sorted(beside_the_runtime), (
        "layers/evergreen/tracing-requirements.txt drifted from uv.lock: run `make requirements`"
    )


def test_the_evergreen_layer_pins_every_dependency_exactly_and_leaves_the_sdk_to_the_runtime(repo_root: Path) -> None:
    requirements = [line.split(";")[0].strip() for line in _committed(repo_root, "evergreen")]
    assert requirements, "the layer would ship no dependencies"
    assert all("==" in requirement for requirement in requirements)
    names = _names(requirements)
    assert {"aws-lambda-powertools", "pydantic", "pydantic-core", "pyyaml", "httpx"} <= names
    assert not names & {"moto", "pytest", "mypy", "ruff", "cfn-lint", "hypothesis"}, "dev tools in the layer"
    assert not names & (RUNTIME_SDK | {"aws-xray-sdk", "wrapt"}), "the runtime's SDK or X-Ray in the layer"


def test_the_tracing_layer_brings_the_xray_sdk_and_leaves_the_aws_sdk_to_the_runtime(repo_root: Path) -> None:
    names = _names(_committed(repo_root, "tracing"))
    assert {"aws-xray-sdk", "wrapt"} <= names
    assert not names & RUNTIME_SDK
