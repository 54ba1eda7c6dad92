"""Emails and phone numbers never appear in clear in what the functions log."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_local.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"


def signed(topic: str, body: bytes) -> dict:
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SECRET),
        "x-shopify-event-id": f"pii-{topic}",
    }
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)


def test_webhooks_redaction_and_malformed_payloads_log_no_email_or_phone(handlers, context, capfd):
    logger = handlers["shopify_webhook"].logger
    written = io.StringIO()
    capture = logging.StreamHandler(written)
    capture.setFormatter(logger.registered_formatter)  # the JSON lines CloudWatch would receive
    logger.addHandler(capture)
    order = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    redact = json.dumps(
        {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": 115310627314723954, "email": "jon.snow@example.com", "phone": "+16135550123"},
            "orders_to_redact": [],
        }
    ).encode()
    broken = json.dumps({"email": "jon.snow@example.com", "phone": "+16135550123", "id": "not-a-number"}).encode()

    logger.setLevel("DEBUG")
    for topic, body in (("orders/create", order), ("customers/redact", redact), ("orders/create", broken)):
        handlers["shopify_webhook"].lambda_handler(signed(topic, body), context)

    logger.setLevel("WARNING")
    logger.removeHandler(capture)
    logged = capfd.readouterr()
    text = (written.getvalue() + logged.out + logged.err).lower()
    assert "jon.snow@example.com" not in text
    assert "6135550123" not in text
    assert "webhook handled" in text, "the handler did log"
