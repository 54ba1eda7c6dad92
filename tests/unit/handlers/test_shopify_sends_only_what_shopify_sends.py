"""Only what Shopify sends is applied: an id is a positive 64-bit integer or its gid, money is a plain decimal,
strings are valid Unicode, a delivery has one topic. Anything else gets 400 and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from tests.unit.handlers.conftest import SHOP, SHOPIFY_SECRET
from tests.unit.shopify.shopify_samples_2025_10 import order

ARABIC_DIGITS = "\u0661\u0662\u0663"
BAD_IDS = [
    "abc",
    0,
    -5,
    10**30,
    2**64,
    ARABIC_DIGITS,
    "../x",
    "12#34",
    " 12",
    "012",
    1.5,
    True,
    "gid://shopify/Order/abc",
]
BAD_AMOUNTS = [" 12.00", "12.00 ", "\u0661\u0662.\u0660\u0660", "1e3", "1_000", "+5", "0x10", "NaN", ""]


def deliver(handlers: dict[str, Any], context: Any, body: bytes, topic: str = "orders/create") -> dict[str, Any]:
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SHOPIFY_SECRET),
        "content-type": "application/json",
    }
    answer: dict[str, Any] = handlers["shopify_webhook"].lambda_handler(
        build_http_api_v2_event("POST", "/webhooks/shopify", headers, body), context
    )
    return answer


def stored(handlers: dict[str, Any]) -> list[dict[str, Any]]:
    edges = handlers["shopify_webhook"].edges
    items: list[dict[str, Any]] = edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]
    return [item for item in items if SHOP in json.dumps(item, default=str)]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize("where", ["order", "customer"])
def test_an_id_that_is_not_a_positive_64_bit_integer_gets_400_and_writes_nothing(handlers, context, where, bad):
    body = order()
    if where == "order":
        body["id"] = bad
    else:
        body["customer"]["id"] = bad
    before = stored(handlers)

    answer = deliver(handlers, context, json.dumps(body).encode())

    assert answer["statusCode"] == 400
    assert "id is invalid" in json.loads(answer["body"])["reason"]
    assert stored(handlers) == before


@pytest.mark.parametrize("good", [1, 2**64 - 1, "18446744073709551615", "gid://shopify/Customer/7"], ids=repr)
def test_a_64_bit_id_its_digits_or_its_gid_is_accepted(handlers, context, good):
    body = order(order_id=987654321)
    body["customer"]["id"] = good

    assert deliver(handlers, context, json.dumps(body).encode())["statusCode"] == 200


@pytest.mark.parametrize("bad", BAD_AMOUNTS, ids=repr)
def test_money_that_is_not_a_plain_decimal_gets_400_and_writes_nothing(handlers, context, bad):
    body = order(order_id=55501)
    body["total_price"] = bad
    body.pop("total_price_set", None)
    body.pop("current_total_price_set", None)
    before = stored(handlers)

    answer = deliver(handlers, context, json.dumps(body).encode())

    assert answer["statusCode"] == 400
    assert stored(handlers) == before


def test_a_lone_surrogate_in_a_string_gets_400_and_writes_nothing(handlers, context):
    sent = order(order_id=55502)
    sent["customer"]["last_name"] = "Sm\ud800ith"
    body = json.dumps(sent).encode()  # ensure_ascii: the lone surrogate travels as the escape \ud800
    before = stored(handlers)

    answer = deliver(handlers, context, body)

    assert answer["statusCode"] == 400
    assert "not valid Unicode" in json.loads(answer["body"])["reason"]
    assert stored(handlers) == before


def test_two_topic_headers_get_400_not_an_unsupported_topic(handlers, context):
    """API Gateway joins a repeated header with a comma, so two topics arrive as one comma-joined value."""
    answer = deliver(handlers, context, json.dumps(order(order_id=55503)).encode(), topic="orders/create,shop/redact")

    assert answer["statusCode"] == 400
    assert "topic header is repeated" in json.loads(answer["body"])["reason"]
