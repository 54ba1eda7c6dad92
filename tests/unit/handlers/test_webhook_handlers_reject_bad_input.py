"""Bad input gets a clear answer and changes nothing, at the Lambda handler itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"
HEADER_NAMES = [
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-hmac-sha256",
    "x-shopify-event-id",
    "x-shopify-webhook-id",
    "content-type",
]


def table_items(handlers: dict[str, Any]) -> list[dict[str, Any]]:
    edges = handlers["shopify_webhook"].edges
    return edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]


def shopify_event(body: bytes, topic: str = "orders/create", secret: str | None = SECRET, **extra: str) -> dict:
    headers = {"x-shopify-topic": topic, "x-shopify-shop-domain": SHOP, "content-type": "application/json"}
    if secret is not None:
        headers["x-shopify-hmac-sha256"] = sign_shopify_body(body, secret)
    headers.update(extra)
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)


def test_a_missing_signature_gets_401(handlers, context):
    answer = handlers["shopify_webhook"].lambda_handler(shopify_event(b"{}", secret=None), context)

    assert answer["statusCode"] == 401
    assert table_items(handlers) == []


def test_a_malformed_body_gets_400_with_the_reason_in_json(handlers, context):
    answer = handlers["shopify_webhook"].lambda_handler(shopify_event(b"{oops"), context)

    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["reason"]
    assert table_items(handlers) == []


def test_an_oversized_body_gets_413(handlers, context):
    body = json.dumps({"note": "x" * 1_100_000}).encode()

    answer = handlers["shopify_webhook"].lambda_handler(shopify_event(body), context)

    assert answer["statusCode"] == 413


def test_an_unknown_topic_gets_200(handlers, context):
    answer = handlers["shopify_webhook"].lambda_handler(shopify_event(b"{}", topic="products/create"), context)

    assert answer["statusCode"] == 200
    assert table_items(handlers) == []


def test_a_base64_flagged_body_that_is_not_base64_gets_400(handlers, context):
    event = shopify_event(b"{}")
    event["isBase64Encoded"] = True
    event["body"] = "this is not base64!"

    answer = handlers["shopify_webhook"].lambda_handler(event, context)

    assert answer["statusCode"] == 400
    assert "base64" in json.loads(answer["body"])["reason"]
    assert table_items(handlers) == []


def test_disagreeing_header_families_get_400_before_anything_else(handlers, context):
    event = shopify_event(b"{}", **{"shopify-shop-domain": "other-shop.myshopify.com"})

    answer = handlers["shopify_webhook"].lambda_handler(event, context)

    assert answer["statusCode"] == 400
    assert table_items(handlers) == []


def test_a_poison_body_nested_100000_deep_gets_400_at_the_handler(handlers, context):
    body = b'{"id": 1, "note": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    answer = handlers["shopify_webhook"].lambda_handler(shopify_event(body), context)

    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["reason"]
    assert table_items(handlers) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
topics = st.sampled_from(
    [
        "orders/create",
        "orders/updated",
        "refunds/create",
        "customers/update",
        "customers/redact",
        "shop/redact",
        "checkouts/create",
        "customers/data_request",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda value: json.dumps(value).encode())),
    topic=topics,
    signed=st.booleans(),
    junk_headers=st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=30), max_size=3),
)
def test_malformed_bodies_and_headers_never_get_a_5xx_and_never_write(
    handlers, context, body, topic, signed, junk_headers
):
    event = shopify_event(body, topic=topic, secret=SECRET if signed else "wrong")
    event["headers"].update({name: value for name, value in junk_headers.items() if name != "x-shopify-hmac-sha256"})

    answer = handlers["shopify_webhook"].lambda_handler(event, context)

    assert answer["statusCode"] < 500
    if answer["statusCode"] != 200 or json.loads(answer["body"]).get("status") in ("ignored", None):
        assert table_items(handlers) == []
