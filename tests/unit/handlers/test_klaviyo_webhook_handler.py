"""Klaviyo engagement reaches the profile through the real handler; bad signatures change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen_local.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-klaviyo-secret"


def klaviyo_event(name: str, secret: str = SECRET, shop: str = SHOP) -> dict:
    body = (ROOT / "events" / "klaviyo" / name).read_bytes()
    headers = {"content-type": "application/json", **sign_klaviyo_body(body, secret, datetime.now(UTC))}
    return build_http_api_v2_event("POST", "/webhooks/klaviyo", headers, body, query={"shop": shop})


def stored(handlers, email: str):
    store = handlers["klaviyo_webhook"].edges.store
    key = store.customer_key_for_email(SHOP, email) or f"guest#{email}"
    return store.load(SHOP, key)


def test_an_email_open_becomes_the_profiles_last_open(handlers, context):
    answer = handlers["klaviyo_webhook"].lambda_handler(klaviyo_event("email_opened.json"), context)

    assert answer["statusCode"] == 200
    profile = stored(handlers, "jon.snow@example.com")
    assert profile.engagement.last_email_open_at == datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


def test_a_redelivered_klaviyo_event_is_applied_once(handlers, context):
    handlers["klaviyo_webhook"].lambda_handler(klaviyo_event("email_opened.json"), context)
    version = stored(handlers, "jon.snow@example.com").version

    answer = handlers["klaviyo_webhook"].lambda_handler(klaviyo_event("email_opened.json"), context)

    assert json.loads(answer["body"])["outcomes"] == {"duplicate": 1}
    assert stored(handlers, "jon.snow@example.com").version == version


def test_an_unsubscribe_reported_by_klaviyo_is_kept_on_the_profile(handlers, context):
    handlers["klaviyo_webhook"].lambda_handler(klaviyo_event("email_unsubscribed.json"), context)

    assert stored(handlers, "jon.snow@example.com").email_consent.state == "unsubscribed"


def test_a_klaviyo_webhook_with_a_wrong_signature_gets_401(handlers, context):
    answer = handlers["klaviyo_webhook"].lambda_handler(klaviyo_event("email_opened.json", "wrong"), context)

    assert answer["statusCode"] == 401
