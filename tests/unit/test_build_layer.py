"""The layer build compiles bytecode ahead, so a cold start on read-only /opt compiles nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _build_layer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_layer", ROOT / "layers" / "evergreen" / "build_layer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layer(root: Path) -> Path:
    python = root / "python"
    (python / "thirdparty").mkdir(parents=True)
    (python / "thirdparty" / "__init__.py").write_text("ANSWER = 42\n")
    (python / "thirdparty" / "__pycache__").mkdir()
    (python / "thirdparty" / "__pycache__" / "stale.cpython-313.pyc").write_bytes(b"stale")
    (python / "evergreen").mkdir()
    (python / "evergreen" / "__init__.py").write_text("from thirdparty import ANSWER\n")
    swagger = python / "aws_lambda_powertools" / "event_handler" / "openapi" / "swagger_ui"
    swagger.mkdir(parents=True)
    (swagger / "swagger-ui-bundle.min.js").write_text("/* 1.5 MB */")
    return python


def test_the_built_layer_imports_from_bytecode_alone_without_writing_any(tmp_path: Path) -> None:
    python = _layer(tmp_path)
    _build_layer().finish_layer(python)

    assert not (python / "thirdparty" / "__init__.py").exists()
    assert (python / "thirdparty" / "__init__.pyc").is_file()
    assert not (python / "thirdparty" / "__pycache__").exists()
    assert (python / "evergreen" / "__init__.py").is_file(), "our own sources stay, for readable tracebacks"
    assert list((python / "evergreen" / "__pycache__").glob("__init__.cpython-*.pyc"))
    probe = (
        "import sys, os; sys.path.insert(0, sys.argv[1]); import evergreen, thirdparty; "
        "print(evergreen.ANSWER, thirdparty.__spec__.loader.__class__.__name__)"
    )
    python.chmod(0o555)
    try:
        done = subprocess.run(
            [sys.executable, "-B", "-c", probe, str(python)], capture_output=True, text=True, check=True, timeout=60
        )
    finally:
        python.chmod(0o755)
    assert done.stdout.split() == ["42", "SourcelessFileLoader"]


def test_the_swagger_ui_assets_nothing_serves_are_left_out(tmp_path: Path) -> None:
    python = _layer(tmp_path)
    _build_layer().finish_layer(python)
    assert not list((python / "aws_lambda_powertools").rglob("*.js"))
