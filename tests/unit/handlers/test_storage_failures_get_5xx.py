"""When storage fails, the webhook answers 5xx so Shopify retries (and nothing half-written remains)."""

from __future__ import annotations

from pathlib import Path

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"


def test_a_dynamodb_failure_gets_503_so_shopify_retries(handlers, context):
    edges = handlers["shopify_webhook"].edges
    edges.dynamodb.delete_table(TableName=edges.settings.profiles_table)
    body = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SECRET),
    }

    answer = handlers["shopify_webhook"].lambda_handler(
        build_http_api_v2_event("POST", "/webhooks/shopify", headers, body), context
    )

    assert answer["statusCode"] == 503
