"""Which secrets may sign a shop's deliveries: its own, else the wildcard's, with rotation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from moto import mock_aws

from evergreen.storage.secrets import ShopSecrets

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
SHOP_C = "shop-c.myshopify.com"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager")


def shop_secrets(client: Any, shopify: dict[str, Any], klaviyo: dict[str, Any]) -> ShopSecrets:
    client.create_secret(Name="shopify", SecretString=json.dumps(shopify))
    client.create_secret(Name="klaviyo", SecretString=json.dumps(klaviyo))
    return ShopSecrets(SecretsProvider(boto3_client=client), "shopify", "klaviyo", max_age=0)


def test_a_shop_with_its_own_shopify_secret_is_never_verified_with_the_wildcard(secrets: Any) -> None:
    shop = shop_secrets(secrets, {"*": "app-wide", SHOP_A: "a-secret"}, {})
    assert shop.shopify_webhook_secrets(SHOP_A) == ("a-secret",)
    assert shop.shopify_webhook_secrets(SHOP_C) == ("app-wide",)


def test_a_shopify_rotation_lists_current_and_previous_secrets(secrets: Any) -> None:
    shop = shop_secrets(secrets, {SHOP_A: ["new", "old", "", "new"]}, {})
    assert shop.shopify_webhook_secrets(SHOP_A) == ("new", "old")
    assert shop.shopify_webhook_secrets(SHOP_B) == ()


def test_klaviyo_accounts_follow_the_same_tenant_rule_and_rotate_two_secrets(secrets: Any) -> None:
    klaviyo = {
        "*": {"api_key": "pk_default", "webhook_secret": "default"},
        SHOP_A: {"api_key": "pk_a", "webhook_secret": "a-new", "previous_webhook_secret": "a-old"},
        SHOP_B: {"api_key": "pk_b", "webhook_secret": ["b-new", "b-old"]},
    }
    shop = shop_secrets(secrets, {}, klaviyo)
    account_a, account_b, account_c = (shop.klaviyo_account(s) for s in (SHOP_A, SHOP_B, SHOP_C))
    assert account_a is not None and account_a.webhook_secrets == ("a-new", "a-old")
    assert account_b is not None and account_b.webhook_secrets == ("b-new", "b-old")
    assert account_c is not None and account_c.api_key == "pk_default"


def test_a_missing_secret_refuses_every_shop(secrets: Any) -> None:
    shop = ShopSecrets(SecretsProvider(boto3_client=secrets), "absent", "absent-too", max_age=0)
    assert shop.shopify_webhook_secrets(SHOP_A) == ()
    assert shop.klaviyo_account(SHOP_A) is None
