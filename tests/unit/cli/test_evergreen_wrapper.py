"""`./evergreen` works in a new terminal whose PATH lacks ~/.local/bin, where make installs uv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_wrapper_runs_the_cli_without_uv_on_the_path(tmp_path: Path):
    environment = {
        key: value for key, value in os.environ.items() if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    environment["PATH"] = "/usr/bin:/bin"

    finished = subprocess.run(
        [str(ROOT / "evergreen"), "--help"], cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )

    assert finished.returncode == 0, finished.stderr
    assert "Klaviyo segments" in finished.stdout


def test_through_the_wrapper_usage_and_hints_name_the_command_as_typed_so_they_paste():
    environment = {key: value for key, value in os.environ.items() if key != "EVERGREEN_PROG"}

    finished = subprocess.run(
        ["./evergreen", "explain", "--shop", "s.myshopify.com"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert finished.returncode == 2
    assert finished.stderr.startswith("./evergreen explain: ") and "`./evergreen explain --help`" in finished.stderr
