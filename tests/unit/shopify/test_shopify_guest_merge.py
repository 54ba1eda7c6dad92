"""A guest profile (keyed by email) merged into the customer profile it turns out to be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from evergreen.domain.events import DomainEvent, EngagementRecorded
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import merge_guest
from evergreen.shopify.topics import translate
from tests.unit.shopify.order_books import Books, apply
from tests.unit.shopify.shopify_samples_2025_10 import (
    CUSTOMER_ID,
    checkout,
    customer_update_2024,
    email_consent_update,
    order,
    refund,
)

RECEIVED = datetime(2025, 10, 1, tzinfo=UTC)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SHOP = "shop.myshopify.com"


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def event(topic: str, body: dict[str, object]) -> DomainEvent:
    return translate(topic, body, RECEIVED)


def guest_profile(*events: DomainEvent) -> Profile:
    books = Books(Profile(shop=SHOP, email="Guest@Example.com", email_normalized="guest@example.com"))
    for each in events:
        books = apply(books, each)
    return books.profile


def customer_profile(*events: DomainEvent) -> Profile:
    books = Books(Profile(shop=SHOP, customer_id=str(CUSTOMER_ID)))
    for each in events:
        books = apply(books, each)
    return books.profile


def guest_order(order_id: int, total: str, hours: float = 0) -> DomainEvent:
    return event(
        "orders/create",
        order(
            order_id=order_id,
            total=total,
            customer_id=None,
            email="guest@example.com",
            created_at=at(hours),
            updated_at=at(hours),
        ),
    )


def customer_order(order_id: int, total: str, hours: float = 0) -> DomainEvent:
    return event("orders/create", order(order_id=order_id, total=total, created_at=at(hours), updated_at=at(hours)))


def test_guest_orders_and_refunds_join_the_customers_facts() -> None:
    guest = guest_profile(
        guest_order(1, "40.00"), event("refunds/create", refund(refund_id=11, order_id=1, amounts=("5.00",)))
    )
    customer = customer_profile(event("customers/update", customer_update_2024()), customer_order(2, "60.00", hours=5))

    merged = merge_guest(customer, guest)

    assert (merged.facts()["orders_count"], merged.facts()["net_spent"]) == (2, Decimal("95.00"))
    assert merged.key == customer.key


def test_merged_order_facts_equal_those_of_one_profile_that_saw_every_order() -> None:
    guest_events = [
        guest_order(1, "40.00", hours=1),
        guest_order(3, "15.00", hours=9),
        event("refunds/create", refund(refund_id=11, order_id=1, amounts=("5.00",))),
    ]
    customer_events = [customer_order(2, "60.00", hours=5), customer_order(4, "10.00", hours=0)]

    merged = merge_guest(customer_profile(*customer_events), guest_profile(*guest_events))
    together = customer_profile(*customer_events, *guest_events)

    order_facts = ("orders_count", "net_spent", "average_order_value", "first_order_at", "last_order_at", "order_tags")
    assert {name: merged.facts()[name] for name in order_facts} == {
        name: together.facts()[name] for name in order_facts
    }


def test_a_merge_remembers_the_guest_whose_order_items_it_absorbed() -> None:
    merged = merge_guest(customer_profile(customer_order(2, "60.00")), guest_profile(guest_order(1, "40.00")))

    assert merged.merged_guests == ["guest#guest@example.com"]


def test_the_customers_identity_wins_and_the_guest_only_fills_gaps() -> None:
    guest = guest_profile().model_copy(update={"phone": "+15550001111", "first_name": "G", "klaviyo_profile_id": "KG"})
    customer = customer_profile(event("customers/update", customer_update_2024()))

    merged = merge_guest(customer, guest)

    assert (merged.email_normalized, merged.first_name) == ("bob@biller.com", "Bob")
    assert (merged.phone, merged.klaviyo_profile_id) == ("+15550001111", "KG")


def test_a_customer_without_email_takes_the_guests() -> None:
    assert merge_guest(customer_profile(), guest_profile()).email_normalized == "guest@example.com"


def test_consents_keep_the_newest_per_channel() -> None:
    guest_unsubscribed = EngagementRecorded(
        kind="email_unsubscribe",
        occurred_at=T0 + timedelta(hours=10),
        email="guest@example.com",
        phone=None,
        klaviyo_profile_id=None,
    )
    customer = customer_profile(
        event("customers_email_marketing_consent/update", email_consent_update("subscribed", at(1)))
    )

    merged = merge_guest(customer, guest_profile(guest_unsubscribed))

    assert merged.email_consent.state == "unsubscribed"
    assert merged.email_consent.updated_at == T0 + timedelta(hours=10)


def test_engagement_keeps_the_latest_of_both_and_any_flag() -> None:
    guest = guest_profile(
        EngagementRecorded(
            kind="email_open", occurred_at=T0 + timedelta(hours=8), email=None, phone=None, klaviyo_profile_id=None
        ),
        EngagementRecorded(kind="email_bounce", occurred_at=T0, email=None, phone=None, klaviyo_profile_id=None),
    )
    customer = customer_profile(
        EngagementRecorded(
            kind="email_open", occurred_at=T0 + timedelta(hours=2), email=None, phone=None, klaviyo_profile_id=None
        )
    )

    merged = merge_guest(customer, guest)

    assert merged.engagement.last_email_open_at == T0 + timedelta(hours=8)
    assert merged.engagement.email_bounced


def test_a_guest_checkout_stays_open_unless_an_order_of_either_closes_it() -> None:
    guest = guest_profile(event("checkouts/create", checkout(token="g", customer_id=None, updated_at=at(3))))

    assert merge_guest(customer_profile(), guest).open_checkout_token == "g"
    assert merge_guest(customer_profile(customer_order(2, "10.00", hours=4)), guest).open_checkout_at is None


def test_a_customer_checkout_is_closed_by_a_later_guest_order() -> None:
    customer = customer_profile(event("checkouts/create", checkout(token="c", updated_at=at(3))))

    assert merge_guest(customer, guest_profile(guest_order(1, "10.00", hours=4))).open_checkout_at is None


def test_service_owned_fields_stay_the_customers() -> None:
    customer = customer_profile().model_copy(update={"membership": {"new": T0}, "version": 3, "definitions_hash": "h"})
    guest = guest_profile().model_copy(update={"membership": {"lapsed": T0}, "version": 9, "definitions_hash": "x"})

    merged = merge_guest(customer, guest)

    assert (merged.membership, merged.version, merged.definitions_hash) == ({"new": T0}, 3, "h")


def test_only_a_guest_of_the_same_shop_can_be_merged() -> None:
    with pytest.raises(ValueError, match="shop"):
        merge_guest(customer_profile(), guest_profile().model_copy(update={"shop": "other.myshopify.com"}))
    with pytest.raises(ValueError, match="guest"):
        merge_guest(customer_profile(), customer_profile())
