"""The real Lambda handlers, loaded in-process against in-process moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from tests.lambda_functions import load_function, use_test_environment

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SHOPIFY_SECRET = "handler-test-shopify-secret"
KLAVIYO_SECRET = "handler-test-klaviyo-secret"


@pytest.fixture(scope="module")
def handlers() -> Iterator[dict[str, ModuleType]]:
    patch = pytest.MonkeyPatch()
    use_test_environment(patch)
    with mock_aws():
        environment = create_resources(
            {SHOP: SHOPIFY_SECRET}, {SHOP: {"api_key": "pk_test", "webhook_secret": KLAVIYO_SECRET}}
        )
        for name, value in environment.items():
            patch.setenv(name, value)
        yield {
            name: load_function(name)
            for name in ("shopify_webhook", "shopify_eventbridge", "klaviyo_webhook", "staleness_sweep")
        }
    patch.undo()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext("test", 512, "arn:aws:lambda:us-east-1:123456789012:function:test", timeout_seconds=60)
