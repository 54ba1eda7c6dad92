"""A backfilled order never replaces a stored snapshot that is as new or newer; its refunds still count."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from evergreen.domain.events import OrderObserved, RefundObserved
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.service.backfill import backfill_order

SHOP = "rules.myshopify.com"
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def order(updated_at: datetime, **fields: Any) -> OrderObserved:
    return OrderObserved(
        order_id="1", customer_id="9", created_at=AT, updated_at=updated_at, total=Decimal("80.00"), **fields
    )


def stored_from_webhook() -> tuple[Profile, OrderState]:
    webhook = order(AT, checkout_token="tok", product_types=("shoes",), financial_status="paid")
    return apply_order(Profile(shop=SHOP, customer_id="9"), None, webhook)


def test_a_backfilled_order_with_the_same_updated_at_keeps_the_webhooks_details():
    profile, state = stored_from_webhook()
    assert backfill_order(profile, state, order(AT, financial_status="paid")) == (profile, state)


def test_an_older_backfilled_order_changes_nothing():
    profile, state = stored_from_webhook()
    older = order(datetime(2026, 2, 1, tzinfo=UTC), cancelled=True)
    assert backfill_order(profile, state, older) == (profile, state)


def test_a_newer_backfilled_order_wins():
    _, state = backfill_order(*stored_from_webhook(), order(datetime(2026, 4, 1, tzinfo=UTC), cancelled=True))
    assert state.order is not None and state.order.cancelled


def test_refunds_of_a_kept_order_still_count_once():
    refund = RefundObserved(refund_id="r1", order_id="1", amount=Decimal("20.00"), created_at=AT)
    profile, state = backfill_order(*stored_from_webhook(), order(AT, refunds=(refund,)))
    again = backfill_order(profile, state, order(AT, refunds=(refund,)))
    assert again == (profile, state)
    assert profile.facts()["net_spent"] == Decimal("60.00")
