"""The real Lambda handlers, loaded in-process as Lambda's init loads them, against in-process moto."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "EvergreenTest",
    "POWERTOOLS_SERVICE_NAME": "evergreen",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
"""Dummy credentials and region, tracing off: what every in-process handler test runs under."""


def use_test_environment(patch: pytest.MonkeyPatch, **extra: str) -> None:
    """Set `TEST_ENVIRONMENT` (and `extra`), and drop anything that would point boto3 elsewhere."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        patch.delenv(name, raising=False)
    for name, value in {**TEST_ENVIRONMENT, **extra}.items():
        patch.setenv(name, value)


def load_function(name: str, module_name: str | None = None) -> ModuleType:
    """Import functions/<name>/app.py as a fresh module (its module scope runs, as at a cold start)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name or f"handler_under_test_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
