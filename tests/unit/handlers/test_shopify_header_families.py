"""Shopify's two header families reach the handler: either is accepted, and when both are present they must agree.

Shopify's own libraries read `X-Shopify-*` and, for newer deliveries, `shopify-*` (Shopify/shopify-app-js,
packages/apps/shopify-api/lib/webhooks/header-names.ts and validate.ts: the X- family when its HMAC header is
present, else the unprefixed one). Evergreen reads each field from whichever family carries it and refuses a
delivery whose two families disagree (docs/shopify.md, "Receiving a webhook").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"
ORDER = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()


def table_items(handlers: dict[str, Any]) -> list[dict[str, Any]]:
    edges = handlers["shopify_webhook"].edges
    return edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]


def family(prefix: str, body: bytes, topic: str = "orders/create", shop: str = SHOP, number: int = 1) -> dict[str, str]:
    return {
        f"{prefix}hmac-sha256": sign_shopify_body(body, SECRET),
        f"{prefix}topic": topic,
        f"{prefix}shop-domain": shop,
        f"{prefix}api-version": SHOPIFY_API_VERSION,
        f"{prefix}event-id": f"family-{number}",
        f"{prefix}triggered-at": "2025-10-01T12:00:00.000Z",
    }


def deliver(handlers: dict[str, Any], context: Any, headers: dict[str, str], body: bytes = ORDER) -> dict[str, Any]:
    event = build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)
    answer: dict[str, Any] = handlers["shopify_webhook"].lambda_handler(event, context)
    return answer


def test_a_delivery_with_only_the_unprefixed_shopify_headers_is_applied(handlers, context):
    answer = deliver(handlers, context, family("shopify-", ORDER))

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["status"] == "written"
    assert table_items(handlers)


def test_a_delivery_carrying_both_families_that_agree_is_applied(handlers, context):
    headers = family("shopify-", ORDER, number=2) | family("x-shopify-", ORDER, number=2)

    assert deliver(handlers, context, headers)["statusCode"] == 200


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("topic", {"shopify-topic": "orders/cancelled"}),
        ("shop-domain", {"shopify-shop-domain": "other-shop.myshopify.com"}),
        ("hmac-sha256", {"shopify-hmac-sha256": sign_shopify_body(b"{}", SECRET)}),
        ("event-id", {"shopify-event-id": "another-event"}),
    ],
)
def test_two_families_that_disagree_are_refused_with_400_and_write_nothing(handlers, context, field, other):
    headers = family("x-shopify-", ORDER, number=3) | family("shopify-", ORDER, number=3) | other
    before = table_items(handlers)

    answer = deliver(handlers, context, headers)

    assert answer["statusCode"] == 400
    assert field in json.loads(answer["body"])["reason"]
    assert table_items(handlers) == before


def test_an_upper_case_topic_header_is_applied_as_its_topic(handlers, context):
    body = json.dumps(json.loads(ORDER) | {"id": 990001, "admin_graphql_api_id": "gid://shopify/Order/990001"}).encode()
    answer = deliver(handlers, context, family("x-shopify-", body, topic="ORDERS/CREATE", number=4), body)

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["status"] == "written"


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_a_delivery_at_another_api_version_is_applied_and_moves_the_mismatch_metric(handlers, context, capsys):
    order = json.loads(ORDER)
    order["id"] = order["id"] + 1
    body = json.dumps(order).encode()
    headers = family("x-shopify-", body, number=3) | {"x-shopify-api-version": "2026-01"}
    capsys.readouterr()

    answer = deliver(handlers, context, headers, body)

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["status"] == "written"
    emitted = emitted_metrics(capsys)
    mismatch = [metric for metric in emitted if metric.get("ShopifyApiVersionMismatch") == [1.0]]
    assert mismatch and mismatch[0]["service"] == "evergreen" and "topic" not in mismatch[0]
    assert any(metric.get("WebhookApiVersion") and metric.get("api_version") == "2026-01" for metric in emitted)


def test_a_delivery_at_the_pinned_version_records_its_version_and_no_mismatch(handlers, context, capsys):
    headers = family("x-shopify-", ORDER, number=4) | {"x-shopify-api-version": SHOPIFY_API_VERSION}
    capsys.readouterr()

    assert deliver(handlers, context, headers)["statusCode"] == 200

    emitted = emitted_metrics(capsys)
    assert any(metric.get("api_version") == SHOPIFY_API_VERSION for metric in emitted)
    assert not any("ShopifyApiVersionMismatch" in metric for metric in emitted)


def test_an_unsigned_delivery_claiming_another_version_moves_no_version_metric(handlers, context, capsys):
    headers = family("x-shopify-", ORDER, number=5) | {
        "x-shopify-api-version": "2026-01",
        "x-shopify-hmac-sha256": sign_shopify_body(ORDER, "not-the-secret"),
    }
    capsys.readouterr()

    assert deliver(handlers, context, headers)["statusCode"] == 401

    assert not any("WebhookApiVersion" in metric for metric in emitted_metrics(capsys))
