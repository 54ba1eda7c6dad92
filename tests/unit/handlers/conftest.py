"""The real Lambda handlers, loaded in-process against in-process moto."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

from evergreen_local.inprocess import create_resources
from evergreen_local.lambda_runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SHOPIFY_SECRET = "handler-test-shopify-secret"
KLAVIYO_SECRET = "handler-test-klaviyo-secret"


def load_function(name: str) -> ModuleType:
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_under_test_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def handlers() -> Iterator[dict[str, ModuleType]]:
    patch = pytest.MonkeyPatch()
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        patch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "EvergreenTest",
        "POWERTOOLS_SERVICE_NAME": "evergreen",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        patch.setenv(name, value)
    with mock_aws():
        environment = create_resources(
            {SHOP: SHOPIFY_SECRET}, {SHOP: {"api_key": "pk_test", "webhook_secret": KLAVIYO_SECRET}}
        )
        for name, value in environment.items():
            patch.setenv(name, value)
        yield {name: load_function(name) for name in ("shopify_webhook", "klaviyo_webhook", "staleness_sweep")}
    patch.undo()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext("test", 512, "arn:aws:lambda:us-east-1:123456789012:function:test", timeout_seconds=60)
