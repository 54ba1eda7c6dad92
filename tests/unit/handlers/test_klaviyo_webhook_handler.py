"""Klaviyo engagement reaches the profile through the real handler; bad signatures change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.storage.rate_budget import PREFIX as RATE_BUDGET_PREFIX
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

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


# --- real senders, and poison: a clear 4xx once, never a 5xx, never a write -------------------------------


def item_count(handlers) -> int:
    edges = handlers["klaviyo_webhook"].edges
    return int(edges.dynamodb.scan(TableName=edges.settings.profiles_table, Select="COUNT")["Count"])


def signed_event(body: bytes, *, stamp: str | None = None, shop: str = SHOP) -> dict:
    headers = {"content-type": "application/json", **sign_klaviyo_body(body, SECRET, stamp or datetime.now(UTC))}
    return build_http_api_v2_event("POST", "/webhooks/klaviyo", headers, body, query={"shop": shop})


def test_a_delivery_signed_as_klaviyos_documented_example_moves_its_profile_into_engaged(handlers, context):
    now = datetime.now(UTC)
    document = json.loads((ROOT / "events" / "klaviyo" / "email_opened.json").read_bytes())
    document["data"][0]["external_id"] = f"01KENGAGED{now.timestamp():.0f}"
    document["data"][0]["payload"]["data"]["attributes"]["datetime"] = (now - timedelta(minutes=1)).isoformat()
    body = json.dumps(document).encode()
    stamp = format_datetime(now, usegmt=True)  # e.g. "Thu, 04 Jan 2024 18:05:25 GMT", as Klaviyo sends it

    answer = handlers["klaviyo_webhook"].lambda_handler(signed_event(body, stamp=stamp), context)

    assert answer["statusCode"] == 200
    assert "engaged" in stored(handlers, "jon.snow@example.com").membership


def test_a_body_marked_base64_that_is_not_base64_gets_400_and_writes_nothing(handlers, context):
    event = klaviyo_event("email_opened.json")
    event["isBase64Encoded"] = True
    event["body"] = "this is {not} base64!"
    before = item_count(handlers)

    answer = handlers["klaviyo_webhook"].lambda_handler(event, context)

    assert answer["statusCode"] == 400
    assert item_count(handlers) == before


def _open_with(**profile_attributes: object) -> bytes:
    document = json.loads((ROOT / "events" / "klaviyo" / "email_opened.json").read_bytes())
    for entry in document["data"][0]["payload"]["included"]:
        if entry["type"] == "profile":
            entry["attributes"].update(profile_attributes)
    return json.dumps(document).encode()


POISON = {
    "nested 100,000 deep": b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "an email of 2,003 characters": _open_with(email="a" * 1_991 + "@example.com"),
    "a phone of 2,000 digits": _open_with(phone_number="+" + "1" * 2_000),
    "a lone surrogate in the email": _open_with(email="\ud800@example.com"),
    "an event with no time at all": json.dumps(
        {"data": [{"external_id": "x", "topic": "event:klaviyo.opened_email", "payload": {}}], "meta": {}}
    ).encode(),
    "not JSON": b"\xff\xfe\x00",
}


@pytest.mark.parametrize("body", list(POISON.values()), ids=list(POISON))
def test_signed_poison_gets_a_4xx_with_a_reason_never_a_5xx_and_writes_nothing(handlers, context, body):
    before = item_count(handlers)

    answer = handlers["klaviyo_webhook"].lambda_handler(signed_event(body), context)

    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["reason"]
    assert item_count(handlers) == before


def test_an_oversized_delivery_gets_413_and_writes_nothing(handlers, context):
    before = item_count(handlers)
    body = b'{"data": [], "pad": "' + b"x" * 1_100_000 + b'"}'

    answer = handlers["klaviyo_webhook"].lambda_handler(signed_event(body), context)

    assert answer["statusCode"] == 413
    assert item_count(handlers) == before


def test_engagement_that_resolves_to_no_profile_is_counted_in_a_metric_not_dropped_silently(handlers, context, capsys):
    document = json.loads((ROOT / "events" / "klaviyo" / "email_opened_profile_id_only.json").read_bytes())
    document["data"][0]["payload"]["data"]["relationships"]["profile"]["data"]["id"] = "not-a-klaviyo-id!"
    capsys.readouterr()

    answer = handlers["klaviyo_webhook"].lambda_handler(signed_event(json.dumps(document).encode()), context)

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outcomes"] == {"unidentified": 1}
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(metric.get("KlaviyoEngagementUnresolved") == [1.0] for metric in emitted)


def test_a_profile_lookup_takes_its_token_from_the_accounts_shared_rate_budget(handlers, context):
    """The lookups an unknown Klaviyo id causes share Klaviyo's per-account budget with sync (every container's)."""
    document = json.loads((ROOT / "events" / "klaviyo" / "email_opened_profile_id_only.json").read_bytes())
    document["data"][0]["payload"]["data"]["relationships"]["profile"]["data"]["id"] = "01KSHAREDBUDGET0000000000A"
    edges = handlers["klaviyo_webhook"].edges

    answer = handlers["klaviyo_webhook"].lambda_handler(signed_event(json.dumps(document).encode()), context)

    assert answer["statusCode"] == 200
    items = edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]
    budgets = [item["sk"]["S"] for item in items if item["pk"]["S"].startswith(RATE_BUDGET_PREFIX)]
    assert budgets == ["get_profile"]
