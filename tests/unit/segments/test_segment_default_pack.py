"""The default pack's segments, each on hand-built profiles, at and around their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from evergreen.domain.profile import Consent, Engagement, OrderRecord, Profile, RefundRecord
from evergreen.domain.reducers import with_orders
from evergreen.segments import Evaluation, default_definitions, evaluate

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def order(order_id: str, at: datetime, total: str = "100.00", **extra: Any) -> OrderRecord:
    return OrderRecord(order_id=order_id, created_at=at, total=Decimal(total), **extra)


def customer(*orders: OrderRecord, refunds: tuple[RefundRecord, ...] = (), **fields: Any) -> Profile:
    profile = Profile(shop="shop.myshopify.com", customer_id="42", email_normalized="ada@example.com", **fields)
    return with_orders(profile, orders, refunds)


def subscriber(since: datetime | None, *orders: OrderRecord, **fields: Any) -> Profile:
    return customer(*orders, email_consent=Consent(state="subscribed", updated_at=since), **fields)


def at(profile: Profile, now: datetime = NOW) -> Evaluation:
    return evaluate(profile.facts(), default_definitions(), now)


def segments(profile: Profile, now: datetime = NOW) -> frozenset[str]:
    return at(profile, now).segments


class TestNew:
    def test_a_first_order_within_30_days_makes_a_customer_new(self) -> None:
        assert "new" in segments(customer(order("1", NOW - 30 * DAY + SECOND)))

    def test_a_first_order_exactly_30_days_ago_is_no_longer_new(self) -> None:
        assert "new" not in segments(customer(order("1", NOW - 30 * DAY)))

    def test_a_new_customer_is_due_the_second_the_first_order_turns_30_days_old(self) -> None:
        evaluation = at(customer(order("1", NOW - 10 * DAY)))
        assert "new" in evaluation.segments
        assert evaluation.next_transition_at == NOW + 20 * DAY

    def test_a_recent_second_order_does_not_make_an_old_customer_new(self) -> None:
        profile = customer(order("1", NOW - 400 * DAY), order("2", NOW - DAY))
        assert "new" not in segments(profile)

    def test_a_customer_without_orders_is_in_no_order_segment(self) -> None:
        found = segments(customer())
        assert not found & {"new", "repeat", "big_spender", "vip", "at_risk", "lapsed"}


class TestRepeatAndBigSpender:
    def test_two_orders_make_a_repeat_customer(self) -> None:
        assert "repeat" in segments(customer(order("1", NOW - 5 * DAY), order("2", NOW - DAY)))
        assert "repeat" not in segments(customer(order("1", NOW - DAY)))

    def test_cancelled_and_test_orders_do_not_make_a_repeat_customer(self) -> None:
        profile = customer(
            order("1", NOW - 5 * DAY), order("2", NOW - DAY, cancelled=True), order("3", NOW - DAY, test=True)
        )
        assert "repeat" not in segments(profile)

    def test_net_spent_of_500_makes_a_big_spender_and_a_cent_less_does_not(self) -> None:
        assert "big_spender" in segments(customer(order("1", NOW - DAY, "500.00")))
        assert "big_spender" not in segments(customer(order("1", NOW - DAY, "499.99")))

    def test_a_refund_that_brings_net_spent_under_500_ends_big_spender(self) -> None:
        big = customer(order("1", NOW - DAY, "600.00"))
        refunded = customer(
            order("1", NOW - DAY, "600.00"),
            refunds=(RefundRecord(refund_id="r", order_id="1", amount=Decimal("100.01")),),
        )
        assert "big_spender" in segments(big)
        assert "big_spender" not in segments(refunded)


class TestVip:
    def test_a_recent_frequent_big_customer_is_vip(self) -> None:
        # recency 5 (< 30 days), frequency 4 (3 orders), monetary 4 (>= 400) = 13
        profile = customer(*(order(str(n), NOW - n * 5 * DAY, "150.00") for n in range(1, 4)))
        assert "vip" in segments(profile)

    def test_a_vip_leaves_when_recency_drops_the_score_under_12_at_the_exact_second(self) -> None:
        last = NOW - 5 * DAY
        profile = customer(order("1", last, "300.00"), order("2", NOW - 40 * DAY, "300.00"), order("3", NOW - 50 * DAY))
        # recency 5 + frequency 4 (3 orders) + monetary 4 (700) = 13 -> 12 at 30 days -> 11 at 60 days
        evaluation = at(profile)
        assert "vip" in evaluation.segments
        assert evaluation.next_transition_at == last + 60 * DAY
        assert "vip" in segments(profile, last + 60 * DAY - SECOND)
        assert "vip" not in segments(profile, last + 60 * DAY)

    def test_a_big_old_customer_is_not_vip_once_the_last_order_is_120_days_old(self) -> None:
        profile = customer(*(order(str(n), NOW - (120 + n) * DAY, "500.00") for n in range(6)))
        # frequency 5 + monetary 5 + recency 2 = 12, but recency under 3
        assert "vip" not in segments(profile)


class TestAtRiskAndLapsed:
    @pytest.mark.parametrize(
        ("age", "expected"),
        [
            (60 * DAY - SECOND, set()),
            (60 * DAY, {"at_risk"}),
            (179 * DAY, {"at_risk"}),
            (180 * DAY - SECOND, {"at_risk"}),
            (180 * DAY, {"lapsed"}),
            (900 * DAY, {"lapsed"}),
        ],
    )
    def test_at_risk_spans_60_to_180_days_since_the_last_order_then_lapsed_takes_over(
        self, age: timedelta, expected: set[str]
    ) -> None:
        found = segments(customer(order("1", NOW - 900 * DAY), order("2", NOW - age)))
        assert found & {"at_risk", "lapsed"} == expected

    def test_a_customer_who_never_ordered_is_neither_at_risk_nor_lapsed(self) -> None:
        assert not segments(customer()) & {"at_risk", "lapsed"}

    def test_a_microsecond_older_order_counts_from_the_next_whole_second(self) -> None:
        placed = NOW - 60 * DAY + timedelta(microseconds=1)
        profile = customer(order("1", placed))
        assert "at_risk" not in segments(profile)
        evaluation = at(profile)
        assert evaluation.next_transition_at == NOW + SECOND
        assert "at_risk" in segments(profile, NOW + SECOND)


class TestEngagement:
    def test_an_email_open_within_30_days_is_engaged(self) -> None:
        profile = customer(engagement=Engagement(last_email_open_at=NOW - 29 * DAY))
        assert "engaged" in segments(profile)

    def test_an_email_click_alone_is_engaged(self) -> None:
        profile = customer(engagement=Engagement(last_email_click_at=NOW - DAY))
        assert "engaged" in segments(profile)

    def test_an_sms_click_is_not_email_engagement(self) -> None:
        profile = customer(engagement=Engagement(last_sms_click_at=NOW - DAY))
        assert "engaged" not in segments(profile)

    def test_an_open_exactly_30_days_ago_is_no_longer_engaged(self) -> None:
        profile = customer(engagement=Engagement(last_email_open_at=NOW - 30 * DAY))
        assert "engaged" not in segments(profile)

    def test_a_subscriber_who_never_opened_in_90_days_of_subscription_is_unengaged(self) -> None:
        assert "unengaged" in segments(subscriber(NOW - 200 * DAY))

    def test_a_new_subscriber_has_90_days_before_counting_as_unengaged(self) -> None:
        since = NOW - 30 * DAY
        evaluation = at(subscriber(since))
        assert "unengaged" not in evaluation.segments
        assert evaluation.next_transition_at == since + 90 * DAY
        assert "unengaged" in segments(subscriber(since), since + 90 * DAY)

    def test_an_open_within_90_days_keeps_a_subscriber_out_of_unengaged(self) -> None:
        profile = subscriber(NOW - 400 * DAY, engagement=Engagement(last_email_open_at=NOW - 89 * DAY))
        assert "unengaged" not in segments(profile)
        assert "unengaged" in segments(profile, NOW + DAY)

    def test_with_no_consent_date_the_customer_age_gives_the_grace_period(self) -> None:
        assert "unengaged" in segments(subscriber(None, customer_created_at=NOW - 100 * DAY))
        assert "unengaged" not in segments(subscriber(None, customer_created_at=NOW - 10 * DAY))
        assert "unengaged" not in segments(subscriber(None)), "no date at all: we cannot tell"

    def test_a_bounced_or_unsubscribed_address_is_not_unengaged(self) -> None:
        bounced = subscriber(NOW - 200 * DAY, engagement=Engagement(email_bounced=True))
        unsubscribed = customer(email_consent=Consent(state="unsubscribed", updated_at=NOW - 200 * DAY))
        assert "unengaged" not in segments(bounced)
        assert "unengaged" not in segments(unsubscribed)


class TestSubscribedEmail:
    def test_a_subscribed_reachable_address_is_subscribed_email(self) -> None:
        assert "subscribed_email" in segments(subscriber(NOW - DAY))

    @pytest.mark.parametrize(
        "engagement", [Engagement(email_bounced=True), Engagement(email_marked_spam=True)], ids=["bounced", "spam"]
    )
    def test_a_bounced_or_spam_reporting_address_is_not_subscribed_email(self, engagement: Engagement) -> None:
        assert "subscribed_email" not in segments(subscriber(NOW - DAY, engagement=engagement))

    @pytest.mark.parametrize("state", ["not_subscribed", "unsubscribed", "pending", "unknown"])
    def test_only_the_subscribed_state_counts(self, state: str) -> None:
        profile = customer(email_consent=Consent(state=state, updated_at=NOW))  # type: ignore[arg-type]
        assert "subscribed_email" not in segments(profile)

    def test_a_profile_without_an_email_is_not_subscribed_email(self) -> None:
        profile = subscriber(NOW - DAY).model_copy(update={"email_normalized": None})
        assert "subscribed_email" not in segments(profile)


class TestAbandonedCheckout:
    def test_an_open_checkout_within_3_days_is_abandoned_checkout_until_it_turns_3_days_old(self) -> None:
        started = NOW - 2 * DAY
        evaluation = at(customer(open_checkout_at=started))
        assert "abandoned_checkout" in evaluation.segments
        assert evaluation.next_transition_at == started + 3 * DAY
        assert "abandoned_checkout" not in segments(customer(open_checkout_at=started), started + 3 * DAY)

    def test_no_open_checkout_is_no_abandoned_checkout(self) -> None:
        assert "abandoned_checkout" not in segments(customer())


def test_a_one_time_buyer_walks_through_every_transition_with_no_new_event() -> None:
    """new -> at_risk -> unengaged -> lapsed, each visited exactly at next_transition_at."""
    start = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    profile = subscriber(start, order("1", start))
    seen: list[tuple[timedelta, list[str]]] = []
    now: datetime | None = start
    while now is not None:
        evaluation = at(profile, now)
        seen.append((now - start, sorted(evaluation.segments)))
        now = evaluation.next_transition_at
    assert seen == [
        (timedelta(0), ["new", "subscribed_email"]),
        (30 * DAY, ["subscribed_email"]),
        (60 * DAY, ["at_risk", "subscribed_email"]),
        (90 * DAY, ["at_risk", "subscribed_email", "unengaged"]),
        (180 * DAY, ["lapsed", "subscribed_email", "unengaged"]),
    ]
