"""Order facts are exact under at-least-once, out-of-order and late delivery (property-based)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evergreen.domain.events import DomainEvent
from evergreen.domain.profile import Profile
from evergreen.shopify.topics import translate
from tests.unit.shopify.order_books import Books, apply
from tests.unit.shopify.shopify_samples_2025_10 import CUSTOMER_ID, order, refund

RECEIVED = datetime(2025, 10, 1, tzinfo=UTC)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@dataclass(frozen=True)
class RefundPlan:
    refund_id: int
    amount: Decimal
    first_seen_pending: bool
    embedded_in_update: bool


@dataclass(frozen=True)
class OrderPlan:
    order_id: int
    total: Decimal
    test: bool
    paid: bool
    paid_at_creation_instant: bool
    cancelled: bool
    refunds: tuple[RefundPlan, ...]


cents = st.integers(min_value=1, max_value=50_000).map(lambda n: Decimal(n) / 100)


@st.composite
def order_plans(draw: st.DrawFn) -> list[OrderPlan]:
    plans = []
    refund_ids = iter(range(9_000_000_000_000_000_000, 9_000_000_000_000_001_000))
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        total = draw(cents)
        refunds = tuple(
            RefundPlan(
                refund_id=next(refund_ids),
                amount=min(draw(cents), total),
                first_seen_pending=draw(st.booleans()),
                embedded_in_update=draw(st.booleans()),
            )
            for _ in range(draw(st.integers(min_value=0, max_value=2)))
        )
        plans.append(
            OrderPlan(
                order_id=820982911946154508 + index,
                total=total,
                test=draw(st.booleans()) and draw(st.booleans()),
                paid=draw(st.booleans()),
                paid_at_creation_instant=draw(st.booleans()),
                cancelled=draw(st.booleans()),
                refunds=refunds,
            )
        )
    return plans


def deliveries(plans: list[OrderPlan]) -> list[DomainEvent]:
    """Every webhook the plans cause, in the order Shopify would send them."""
    events: list[tuple[str, dict[str, Any]]] = []
    for plan in plans:
        common: dict[str, Any] = {
            "order_id": plan.order_id,
            "total": str(plan.total),
            "test": plan.test,
            "created_at": at(0),
        }
        events.append(("orders/create", order(**common, updated_at=at(0), financial_status="pending")))
        if plan.paid:
            paid_at = at(0) if plan.paid_at_creation_instant else at(10)
            events.append(("orders/paid", order(**common, updated_at=paid_at)))
        embedded = [
            refund(refund_id=r.refund_id, order_id=plan.order_id, amounts=(str(r.amount),))
            for r in plan.refunds
            if r.embedded_in_update
        ]
        for r in plan.refunds:
            status = "pending" if r.first_seen_pending else "success"
            events.append(
                (
                    "refunds/create",
                    refund(refund_id=r.refund_id, order_id=plan.order_id, amounts=(str(r.amount),), status=status),
                )
            )
        if plan.refunds:
            events.append(("orders/updated", order(**common, updated_at=at(20), refunds=embedded)))
        if plan.cancelled:
            events.append(
                (
                    "orders/cancelled",
                    order(
                        **common, updated_at=at(30), cancelled_at=at(30), financial_status="voided", refunds=embedded
                    ),
                )
            )
    return [translate(topic, body, RECEIVED) for topic, body in events]


def expected_facts(plans: list[OrderPlan]) -> tuple[int, Decimal]:
    """What the store's books say, computed without the reducers."""
    counted = [plan for plan in plans if not plan.cancelled and not plan.test]
    refunded = sum(
        (r.amount for plan in counted for r in plan.refunds if not r.first_seen_pending or r.embedded_in_update),
        Decimal(0),
    )
    return len(counted), sum((plan.total for plan in counted), Decimal(0)) - refunded


def replay(events: list[DomainEvent]) -> Books:
    profile = Books(Profile(shop="shop.myshopify.com", customer_id=str(CUSTOMER_ID)))
    for event in events:
        profile = apply(profile, event)
    return profile


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn) -> tuple[list[OrderPlan], list[DomainEvent]]:
    plans = draw(order_plans())
    events = deliveries(plans)
    repeated = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return plans, draw(st.permutations([*events, *repeated]))


@settings(max_examples=300, deadline=None)
@given(case=shuffled_with_duplicates())
def test_any_delivery_order_with_duplicates_gives_the_in_order_facts(
    case: tuple[list[OrderPlan], list[DomainEvent]],
) -> None:
    plans, shuffled = case
    in_order = replay(deliveries(plans))

    result = replay(shuffled)

    assert (result.facts()["orders_count"], result.facts()["net_spent"]) == expected_facts(plans)
    assert result.facts() == in_order.facts()
    assert (result.orders, result.refunds) == (in_order.orders, in_order.refunds)


@settings(max_examples=100, deadline=None)
@given(plans=order_plans())
def test_in_order_single_delivery_matches_the_books(plans: list[OrderPlan]) -> None:
    result = replay(deliveries(plans)).facts()

    assert (result["orders_count"], result["net_spent"]) == expected_facts(plans)
