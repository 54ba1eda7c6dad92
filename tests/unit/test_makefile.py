"""The Makefile passes what its advice says to type: `make run SHOPIFY_PORT=3201` moves the Shopify sandbox
(issue 23, item 2)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def planned(*arguments: str) -> list[str]:
    """The recipe lines `make -n` would run."""
    done = subprocess.run(["make", "-n", *arguments], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.splitlines()


def evergreen_run(lines: list[str]) -> str:
    return next(line for line in lines if "evergreen run" in line)


@pytest.mark.parametrize(
    ("variable", "flag"),
    [
        ("HOST", "--host"),
        ("PORT", "--port"),
        ("MOTO_PORT", "--moto-port"),
        ("KLAVIYO_PORT", "--klaviyo-port"),
        ("SHOPIFY_PORT", "--shopify-port"),
    ],
)
def test_make_run_passes_a_port_variable_as_its_flag(variable, flag):
    line = evergreen_run(planned("run", f"{variable}=3201"))

    assert line.endswith(f"evergreen run {flag} 3201")
    assert "EVERGREEN_MAKE_TARGET=run" in line


def test_make_run_passes_args_and_nothing_by_default():
    assert evergreen_run(planned("run")).endswith("evergreen run")
    assert evergreen_run(planned("run", "ARGS=--no-sweep")).endswith("evergreen run --no-sweep")


@pytest.mark.parametrize("target", ["deploy", "deploy-guided", "delete"])
def test_deploy_and_delete_check_the_aws_region_and_credentials_before_building_anything(target):
    lines = planned(target, "REGION=eu-west-1")

    check = next(index for index, line in enumerate(lines) if "evergreen check-aws --region eu-west-1" in line)
    sam = next(index for index, line in enumerate(lines) if " sam " in line)
    assert check < sam
    assert any(f"EVERGREEN_MAKE_TARGET={target}" in line for line in lines[: check + 1])
