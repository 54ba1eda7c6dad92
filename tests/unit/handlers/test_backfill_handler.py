"""BackfillFunction, in-process against moto, reading the Shopify and Klaviyo sandboxes over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from evergreen_cli.sandboxes.klaviyo_api import start_sandbox
from evergreen_cli.sandboxes.shopify_admin import start_shopify_sandbox
from evergreen_cli.sandboxes.synthetic_shop import synthetic_store
from tests.lambda_functions import load_function, use_test_environment

SHOP = "handler-backfill.myshopify.com"
TOKEN = "shpat_handler_test_token"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def backfill_handler() -> Iterator[ModuleType]:
    patch = pytest.MonkeyPatch()
    shopify, klaviyo = start_shopify_sandbox(port=0), start_sandbox(port=0)
    shopify.load(synthetic_store(4, seed=9, shop=SHOP))
    use_test_environment(
        patch,
        SHOPIFY_ADMIN_BASE_URL=shopify.url,
        KLAVIYO_BASE_URL=klaviyo.url,
        SHOPIFY_ADMIN_SECRETS_ID="shopify-admin",
    )
    with mock_aws():
        environment = create_resources({SHOP: "s"}, {SHOP: {"api_key": "pk_test", "webhook_secret": "k"}})
        boto3.client("secretsmanager").create_secret(Name="shopify-admin", SecretString=json.dumps({SHOP: TOKEN}))
        for name, value in environment.items():
            patch.setenv(name, value)
        handler = load_function("backfill")
        # In-process moto is not thread-safe (a transaction deep-copies its tables while other threads write), so
        # the handler applies one record at a time here; concurrent writers are tested on moto server.
        patch.setattr(handler, "WORKERS", 1)
        yield handler
    patch.undo()
    shopify.stop()
    klaviyo.stop()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext(
        "backfill", 512, "arn:aws:lambda:us-east-1:123456789012:function:backfill", timeout_seconds=900
    )


def test_the_console_test_event_backfills_the_shop_to_the_end(backfill_handler, context):
    event = {**json.loads((ROOT / "events" / "backfill" / "shop.json").read_text()), "shop": SHOP}

    result = backfill_handler.lambda_handler(event, context)

    assert result["finished"] is True
    assert result["applied"] > 0 and result["skipped"] == 0


def test_an_unknown_request_gets_a_clear_answer(backfill_handler, context):
    result = backfill_handler.lambda_handler({"shop": "not a shop"}, context)
    assert "expected" in result["error"]


def test_a_shop_without_an_admin_token_gets_a_clear_answer_that_never_shows_tokens(backfill_handler, context):
    result = backfill_handler.lambda_handler({"shop": "other-shop.myshopify.com"}, context)

    assert "no Shopify Admin API token" in result["error"]
    assert TOKEN not in json.dumps(result)
