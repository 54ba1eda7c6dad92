"""Every real body under every topic and shop, exhaustively and purely: a body is translated only under a topic
its shape justifies, or into an event that writes nothing. (The service-level hypothesis test in
tests/unit/service/test_shopify_hostile_senders.py checks the same against the table.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evergreen.domain.events import CheckoutObserved, PurchasingSummary
from evergreen.shopify.topics import MalformedPayload, translate
from tests.unit.shopify.shopify_replays import TOPICS, customers_redact, justified, real_bodies
from tests.unit.shopify.shopify_samples_2025_10 import CURRENT_SAMPLES, order

SHOPS = ("shop-a.myshopify.com", "shop-b.myshopify.com")
RECEIVED = datetime(2025, 10, 1, tzinfo=UTC)


def writes_nothing(event: object) -> bool:
    """Events the service applies to no profile: an informational summary, or a checkout naming nobody."""
    if isinstance(event, PurchasingSummary):
        return True
    return isinstance(event, CheckoutObserved) and event.customer_id is None and event.email is None


def test_no_real_body_is_applied_under_a_topic_or_shop_its_shape_does_not_justify() -> None:
    accepted = []
    tried = 0
    for source, body in real_bodies(*SHOPS):
        for topic in TOPICS:
            for shop in SHOPS:
                if justified(source, body, topic, shop):
                    continue
                tried += 1
                try:
                    event = translate(topic, body, RECEIVED, shop=shop)
                except MalformedPayload:
                    continue
                if not writes_nothing(event):
                    accepted.append((source, topic, shop, type(event).__name__))

    assert tried > 1000
    assert accepted == []


def test_every_body_is_still_accepted_under_its_own_topic_and_shop() -> None:
    for source, body in real_bodies(SHOPS[0]):
        named = body.get("shop_domain")
        if source == "carts/update" or (named and named != SHOPS[0]):
            continue
        translate(source, body, RECEIVED, shop=SHOPS[0])


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        ("orders/cancelled", order(), "cancelled_at is missing"),
        ("customers/delete", CURRENT_SAMPLES["customers/create"](), "a deletion carries only the customer id"),
        ("customers/delete", {"id": 1}, "admin_graphql_api_id"),
        ("customers/redact", customers_redact("shop-a.myshopify.com"), "not the shop the delivery came for"),
        ("shop/redact", customers_redact("shop-b.myshopify.com"), "names no customer"),
        ("customers/update", order(), "belongs to a purchase body"),
        ("refunds/create", order(), "belongs to a purchase body"),
        ("orders/create", CURRENT_SAMPLES["refunds/create"](), "belongs to a refund body"),
        ("orders/create", {**order(), "order_status_url": "https://shop-a.myshopify.com/1/orders/x"}, "another shop"),
    ],
)
def test_a_body_outside_its_topics_shape_is_refused_with_a_reason_naming_fields_only(topic, body, reason) -> None:
    with pytest.raises(MalformedPayload) as refused:
        translate(topic, body, RECEIVED, shop="shop-b.myshopify.com")

    assert reason in str(refused.value)
