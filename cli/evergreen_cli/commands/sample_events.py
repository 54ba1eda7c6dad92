"""Writes events/api and events/sqs: ready-made Lambda events for `sam local invoke -e` and the console, and
events/shopify/documented: Shopify's documented example body of every topic Evergreen handles, at the pinned
API version, made live (`shopify_contracts.LIVE_ADJUSTMENTS`), for `evergreen send-webhook`.

    uv run python -m evergreen_cli.commands.sample_events      (or: make events)

HTTP API events are signed with the local stack's default Shopify and Klaviyo secrets, so they verify
locally (`sam local invoke ShopifyWebhookFunction -e events/api/shopify_orders_create.json`) and fail with 401
anywhere the real secret is set, as they should. Klaviyo events carry `Klaviyo-Timestamp` as an HTTP date, as
Klaviyo sends it; their fixed time is older than the 25-hour replay window, so re-sign them (`evergreen
send-webhook --klaviyo`) to see a 200.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import customer_profile_key
from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.hmac import sign_shopify_body
from evergreen.shopify.topics import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET, DEFAULT_LOCAL_SHOPIFY_SECRET
from evergreen_cli.local_stack.stack import sqs_record
from evergreen_cli.sandboxes import shopify_contracts

EVENTS = Path(__file__).resolve().parents[3] / "events"
SHOP = "evergreen-demo.myshopify.com"
AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:evergreen-segment-changes"

SHOPIFY_EVENTS = {
    "shopify_orders_create.json": ("orders/create", "orders_create.json"),
    "shopify_orders_paid.json": ("orders/paid", "orders_paid.json"),
    "shopify_refunds_create.json": ("refunds/create", "refunds_create.json"),
    "shopify_customers_update.json": ("customers/update", "customers_update.json"),
    "shopify_customers_redact.json": ("customers/redact", "customers_redact.json"),
}


def shopify_api_event(topic: str, payload: Path, number: int) -> dict[str, Any]:
    body = payload.read_bytes()
    headers = {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, DEFAULT_LOCAL_SHOPIFY_SECRET),
        "x-shopify-api-version": SHOPIFY_API_VERSION,
        "x-shopify-webhook-id": f"00000000-0000-4000-8000-{number:012d}",
        "x-shopify-event-id": f"00000000-0000-4000-9000-{number:012d}",
    }
    event = build_http_api_v2_event("POST", "/webhooks/shopify", headers, body, now=AT)
    event["requestContext"]["requestId"] = f"sample-request-{number}"
    return event


KLAVIYO_EVENTS = {
    "klaviyo_email_opened.json": "email_opened.json",
    "klaviyo_email_opened_profile_id_only.json": "email_opened_profile_id_only.json",
}


def klaviyo_api_event(payload: Path, number: int) -> dict[str, Any]:
    body = payload.read_bytes()
    headers = {
        "content-type": "application/json",
        "klaviyo-webhook-id": "01J0WEBHOOK",
        **{name.lower(): value for name, value in sign_klaviyo_body(body, DEFAULT_LOCAL_KLAVIYO_SECRET, AT).items()},
    }
    event = build_http_api_v2_event("POST", "/webhooks/klaviyo", headers, body, query={"shop": SHOP}, now=AT)
    event["requestContext"]["requestId"] = f"sample-request-klaviyo-{number}"
    return event


def segment_changes_batch() -> dict[str, Any]:
    changes = [
        SegmentChange(
            shop=SHOP,
            profile_key=customer_profile_key("115310627314723954"),
            version=1,
            changed_at=AT,
            segments=["new", "subscribed_email"],
            entered=["new", "subscribed_email"],
            customer_id="115310627314723954",
            email="jon.snow@example.com",
            first_name="Jon",
            last_name="Snow",
        ),
        SegmentChange(
            shop=SHOP,
            profile_key=customer_profile_key("706405506930370084"),
            version=7,
            changed_at=AT,
            segments=["lapsed", "repeat"],
            entered=["lapsed"],
            exited=["at_risk"],
            customer_id="706405506930370084",
            email="bob@biller.com",
        ),
    ]
    records = []
    for number, change in enumerate(changes):
        message = {
            "MessageId": f"0f1e2d3c-0000-4000-8000-{number:012d}",
            "ReceiptHandle": f"local-receipt-{number}",
            "Body": change.model_dump_json(),
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(AT.timestamp() * 1000))},
        }
        records.append(sqs_record(message, QUEUE_ARN, "us-east-1"))
    return {"Records": records}


DOCUMENTED = EVENTS / "shopify" / "documented"
"""Shopify's documented example body of every topic Evergreen handles, at the pinned API version, made live."""


def documented_file(topic: str) -> str:
    """`orders/create` -> `orders_create.json`, `customer.tags_added` -> `customer_tags_added.json`."""
    return topic.replace("/", "_").replace(".", "_") + ".json"


def documented_examples() -> dict[Path, Any]:
    """events/shopify/documented/: Shopify's own bodies (`shopify_contracts.live_example`), with their source;
    nothing when the pinned packages are not in the cache (`make contracts`)."""
    if shopify_contracts.missing_reason() is not None:
        return {}
    versions = shopify_contracts.documented_versions_from(SHOPIFY_API_VERSION)
    if not versions:
        return {}
    version = versions[0]  # the pin, or the newest documented version before it when the package lags
    files: dict[Path, Any] = {}
    for topic in (*SUBSCRIPTION_TOPICS, *sorted(COMPLIANCE_TOPICS)):
        body = shopify_contracts.live_example(version, topic, SHOP)
        if body is not None:
            files[DOCUMENTED / documented_file(topic)] = body
    pin = shopify_contracts.WEBHOOK_SCHEMAS
    files[DOCUMENTED / "SOURCE.json"] = {
        "source": f"npm {pin.spec} (MIT), metadatas/{version}/<topic>.json, the `response` example",
        "integrity": pin.integrity,
        "api_version": version,
        "pinned_api_version": SHOPIFY_API_VERSION,
        "shop": SHOP,
        "adjusted": list(shopify_contracts.LIVE_ADJUSTMENTS),
        "send": "./evergreen send-webhook events/shopify/documented/orders_create.json --topic orders/create",
    }
    return files


def build() -> dict[Path, Any]:
    files: dict[Path, Any] = {}
    for number, (name, (topic, payload)) in enumerate(SHOPIFY_EVENTS.items(), start=1):
        files[EVENTS / "api" / name] = shopify_api_event(topic, EVENTS / "shopify" / payload, number)
    for number, (name, payload) in enumerate(KLAVIYO_EVENTS.items(), start=1):
        files[EVENTS / "api" / name] = klaviyo_api_event(EVENTS / "klaviyo" / payload, number)
    files[EVENTS / "sqs" / "segment_changes.json"] = segment_changes_batch()
    files |= documented_examples()
    return files


def main() -> None:
    missing = shopify_contracts.missing_reason()
    if missing is not None:
        print(f"events/shopify/documented kept as it is: {missing}")
    for path, content in build().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(EVENTS.parent)}")


if __name__ == "__main__":
    main()
