"""A delivery for an erased customer is answered 200, writes nothing and is counted, at the Lambda handler itself."""

from __future__ import annotations

import json
from pathlib import Path

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from tests.unit.handlers.conftest import SHOP, SHOPIFY_SECRET

ROOT = Path(__file__).resolve().parents[3]


def shopify_event(body: dict, topic: str, event_id: str) -> dict:
    raw = json.dumps(body).encode()
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(raw, SHOPIFY_SECRET),
        "x-shopify-event-id": event_id,
        "content-type": "application/json",
    }
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, raw)


def test_a_replayed_order_of_a_redacted_customer_gets_200_and_is_counted(handlers, context, capsys):
    order = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    redact = json.loads((ROOT / "events" / "shopify" / "customers_redact.json").read_text())
    redact.update(shop_domain=SHOP, orders_to_redact=[order["id"]])
    redact["customer"].update(id=order["customer"]["id"], email=order["email"])
    handler = handlers["shopify_webhook"].lambda_handler
    handler(shopify_event(order, "orders/create", "first"), context)
    assert handler(shopify_event(redact, "customers/redact", "redact"), context)["statusCode"] == 200
    capsys.readouterr()

    answer = handler(shopify_event(order, "orders/create", "replayed"), context)

    assert answer["statusCode"] == 200 and json.loads(answer["body"])["status"] == "erased"
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(metric.get("ErasedDeliveriesIgnored") == [1.0] for metric in emitted)
    store = handlers["shopify_webhook"].edges.store
    assert store.load(SHOP, f"customer#{order['customer']['id']}") is None
