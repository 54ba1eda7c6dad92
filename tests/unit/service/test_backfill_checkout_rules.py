"""A backfilled abandoned checkout is the checkouts/update webhook's event: an order seen already closes it, a
completed one opens nothing, an open checkout a webhook stored at the same moment keeps its token, and only a
recent window of checkouts is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evergreen.domain.events import CheckoutObserved, OrderObserved
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, apply_order
from evergreen.service.backfill import backfill_checkout, checkouts_since
from evergreen.service.backfill_model import PHASES, BackfillProgress

SHOP = "rules.myshopify.com"
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def checkout(token: str = "41", at: datetime = AT, completed: bool = False) -> CheckoutObserved:
    return CheckoutObserved(
        token=token, customer_id="9", created_at=at, updated_at=at, completed_at=at if completed else None
    )


def customer() -> Profile:
    return Profile(shop=SHOP, customer_id="9")


def test_an_open_backfilled_checkout_opens_it_like_its_webhook():
    assert backfill_checkout(customer(), checkout()) == apply(customer(), checkout())
    assert backfill_checkout(customer(), checkout()).open_checkout_at == AT


def test_an_order_already_seen_closes_the_backfilled_checkout():
    order = OrderObserved(order_id="1", customer_id="9", created_at=AT + timedelta(hours=1), total=Decimal(10))
    ordered, _ = apply_order(customer(), None, order)

    assert backfill_checkout(ordered, checkout()).open_checkout_at is None


def test_a_completed_checkout_is_not_open():
    assert backfill_checkout(customer(), checkout(completed=True)).open_checkout_at is None


def test_a_checkout_its_webhook_opened_at_the_same_moment_keeps_the_webhooks_token():
    from_webhook = apply(customer(), checkout(token="c1a2b3"))

    assert backfill_checkout(from_webhook, checkout(token="98765")) == from_webhook


def test_a_newer_backfilled_checkout_moves_the_open_one():
    from_webhook = apply(customer(), checkout(token="c1a2b3"))
    later = AT + timedelta(hours=2)

    moved = backfill_checkout(from_webhook, checkout(token="98765", at=later))

    assert (moved.open_checkout_at, moved.open_checkout_token) == (later, "98765")


def test_applying_a_backfilled_checkout_twice_changes_nothing():
    once = backfill_checkout(customer(), checkout())
    assert backfill_checkout(once, checkout()) == once


def test_checkouts_are_read_from_the_window_s_first_midnight_or_a_later_since():
    now = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)

    assert checkouts_since(None, now) == "2026-10-21T00:00:00Z"
    assert checkouts_since("2026-11-01T00:00:00Z", now) == "2026-11-01T00:00:00Z"
    assert checkouts_since("2024-01-01T00:00:00Z", now) == "2026-10-21T00:00:00Z"
    assert checkouts_since(None, now, timedelta(days=3)) == "2026-11-17T00:00:00Z"


def test_a_checkpoint_saved_before_abandoned_checkouts_existed_still_loads_at_its_phase():
    saved = (
        '{"shop": "rules.myshopify.com", "phase": "orders", "since": null, "operation_id": "gid://shopify/'
        'BulkOperation/7", "line": 1200, "started_at": "2026-03-01T12:00:00Z", "finished_at": null, '
        '"stopped_cleanly": true, "counts": {"read": 1500, "records": 1400, "applied": 1390, "unchanged": 10, '
        '"skipped": 0, "synced_profiles": 900, "klaviyo_requests": 3}}'
    )

    progress = BackfillProgress.model_validate_json(saved)

    assert (progress.phase, progress.line, progress.counts.records) == ("orders", 1200, 1400)
    assert PHASES[PHASES.index(progress.phase) + 1] == "abandonedCheckouts"
