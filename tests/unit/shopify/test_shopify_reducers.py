"""What each event does to a profile, and why delivery order and repetition do not matter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from evergreen.domain.events import (
    CheckoutObserved,
    ConsentChanged,
    DomainEvent,
    EngagementRecorded,
    OrderObserved,
    RefundObserved,
)
from evergreen.domain.profile import Profile
from evergreen.shopify.topics import translate
from tests.unit.shopify.order_books import Books, apply
from tests.unit.shopify.shopify_samples_2025_10 import (
    CHECKOUT_TOKEN,
    CUSTOMER_ID,
    ORDER_ID,
    checkout,
    customer_create,
    customer_delete,
    customer_update_2024,
    customers_data_request,
    customers_redact,
    email_consent_update,
    order,
    purchasing_summary,
    refund,
    shop_redact,
    sms_consent_update,
)

RECEIVED = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def event(topic: str, body: dict[str, Any]) -> DomainEvent:
    return translate(topic, body, RECEIVED)


def fresh() -> Profile:
    return Profile(shop="shop.myshopify.com", customer_id=str(CUSTOMER_ID))


def applied(*events: DomainEvent, profile: Profile | None = None) -> Books:
    result = Books(profile or fresh())
    for each in events:
        result = apply(result, each)
    return result


def facts(*events: DomainEvent) -> dict[str, Any]:
    return applied(*events).facts()


def placed(order_id: int = ORDER_ID, total: str = "100.00", hours: float = 0, **changes: Any) -> DomainEvent:
    return event(
        "orders/create", order(order_id=order_id, total=total, created_at=at(hours), updated_at=at(hours), **changes)
    )


# --- purity and idempotence -------------------------------------------------------------------


def test_apply_never_mutates_the_profile_it_is_given() -> None:
    before = applied(placed(total="10.00"))
    snapshot = before.model_dump()

    apply(before, placed(order_id=2, total="20.00", hours=1))
    apply(before, event("refunds/create", refund(order_id=ORDER_ID, amounts=("5.00",))))
    apply(
        before,
        EngagementRecorded(
            kind="email_unsubscribe", occurred_at=T0, email="a@b.c", phone=None, klaviyo_profile_id="K1"
        ),
    )

    assert before.model_dump() == snapshot


def test_a_duplicate_order_webhook_does_not_change_total_spent() -> None:
    once = applied(placed(total="100.00"))

    assert applied(placed(total="100.00"), placed(total="100.00")) == once
    assert once.facts()["net_spent"] == Decimal("100.00")
    assert once.facts()["orders_count"] == 1


def test_every_event_applied_twice_is_the_same_as_once() -> None:
    events = [
        event("customers/update", customer_update_2024()),
        event("customers_email_marketing_consent/update", email_consent_update()),
        event("customers_marketing_consent/update", sms_consent_update()),
        placed(refunds=[refund(amounts=("10.00",))]),
        event("refunds/create", refund(refund_id=2, amounts=("3.00",))),
        event("checkouts/create", checkout(token="other", updated_at=at(5))),
        EngagementRecorded(kind="email_click", occurred_at=T0, email=None, phone=None, klaviyo_profile_id="K"),
        event("customers/delete", customer_delete()),
    ]
    profile = Books(fresh())
    for each in events:
        once = apply(profile, each)
        assert apply(once, each) == once
        profile = once


def test_service_owned_fields_are_never_touched() -> None:
    owned = fresh().model_copy(
        update={"membership": {"vip": T0}, "version": 7, "next_transition_at": T0, "definitions_hash": "h"}
    )

    result = applied(placed(), event("customers/update", customer_update_2024()), profile=owned)

    assert (result.membership, result.version, result.next_transition_at, result.definitions_hash) == (
        {"vip": T0},
        7,
        T0,
        "h",
    )


# --- orders -----------------------------------------------------------------------------------


def test_a_cancelled_order_is_excluded_from_count_and_spent() -> None:
    cancelled = event("orders/cancelled", order(total="50.00", cancelled_at=at(2), updated_at=at(2), created_at=at(0)))

    result = facts(placed(order_id=1, total="20.00"), cancelled)

    assert (result["orders_count"], result["net_spent"]) == (1, Decimal("20.00"))


def test_test_and_voided_orders_are_excluded_but_pending_payment_counts() -> None:
    result = facts(
        placed(order_id=1, total="10.00", financial_status="pending"),
        placed(order_id=2, total="20.00", test=True),
        placed(order_id=3, total="40.00", financial_status="voided"),
    )

    assert (result["orders_count"], result["net_spent"]) == (1, Decimal("10.00"))


def test_a_late_orders_create_does_not_uncancel_an_order() -> None:
    create = placed(total="50.00", hours=0)
    cancel = event("orders/cancelled", order(total="50.00", created_at=at(0), updated_at=at(3), cancelled_at=at(3)))

    assert facts(cancel, create)["orders_count"] == 0
    assert applied(cancel, create) == applied(create, cancel)


def test_an_order_update_older_than_the_stored_one_is_ignored() -> None:
    newer = event("orders/updated", order(total="80.00", created_at=at(0), updated_at=at(5)))
    older = event("orders/updated", order(total="100.00", created_at=at(0), updated_at=at(1)))

    result = applied(newer, older)

    assert result.orders[str(ORDER_ID)].total == Decimal("80.00")
    assert result == applied(older, newer)


def test_on_an_updated_at_tie_the_cancelled_snapshot_wins_either_way() -> None:
    live = event("orders/paid", order(created_at=at(0), updated_at=at(2)))
    cancelled = event("orders/cancelled", order(created_at=at(0), updated_at=at(2), cancelled_at=at(2)))

    assert applied(live, cancelled) == applied(cancelled, live)
    assert applied(live, cancelled).orders[str(ORDER_ID)].cancelled


def test_order_product_types_and_tags_are_bounded_per_order() -> None:
    body = order()
    body["tags"] = ", ".join(f"tag{n}" for n in range(100))
    body["line_items"] = [{"product_id": n + 1, "product_type": f"type{n}"} for n in range(100)]

    record = applied(event("orders/create", body)).orders[str(ORDER_ID)]

    assert (len(record.tags), len(record.product_types)) == (20, 20)


def test_order_facts_cover_first_and_last_order_and_average() -> None:
    result = facts(placed(order_id=1, total="10.00", hours=0), placed(order_id=2, total="30.00", hours=48))

    assert result["first_order_at"] == T0
    assert result["last_order_at"] == T0 + timedelta(hours=48)
    assert result["average_order_value"] == Decimal("20.00")
    assert result["order_tags"] == frozenset({"tag1", "tag2"})


# --- refunds ----------------------------------------------------------------------------------


def test_a_refund_is_subtracted_from_net_spent() -> None:
    result = facts(placed(total="100.00"), event("refunds/create", refund(amounts=("30.00",))))

    assert (result["orders_count"], result["net_spent"]) == (1, Decimal("70.00"))


def test_a_refund_before_its_order_ends_in_the_same_totals() -> None:
    the_refund = event("refunds/create", refund(amounts=("30.00",)))

    assert applied(the_refund, placed(total="100.00")) == applied(placed(total="100.00"), the_refund)
    assert facts(the_refund, placed(total="100.00"))["net_spent"] == Decimal("70.00")


def test_a_refund_delivered_twice_and_embedded_in_the_order_counts_once() -> None:
    the_refund = event("refunds/create", refund(amounts=("30.00",)))
    updated = event(
        "orders/updated",
        order(total="100.00", created_at=at(0), updated_at=at(4), refunds=[refund(amounts=("30.00",))]),
    )

    result = facts(placed(total="100.00"), the_refund, updated, the_refund)

    assert result["net_spent"] == Decimal("70.00")


def test_a_pending_refund_later_seen_succeeded_counts_its_money_whatever_the_order() -> None:
    pending = event("refunds/create", refund(amounts=("30.00",), status="pending"))
    embedded_success = event(
        "orders/updated",
        order(total="100.00", created_at=at(0), updated_at=at(4), refunds=[refund(amounts=("30.00",))]),
    )

    assert facts(pending, embedded_success)["net_spent"] == Decimal("70.00")
    assert facts(embedded_success, pending)["net_spent"] == Decimal("70.00")


def test_refunds_of_a_cancelled_order_are_not_subtracted_twice() -> None:
    cancelled = event("orders/cancelled", order(total="100.00", created_at=at(0), updated_at=at(5), cancelled_at=at(5)))

    result = facts(placed(total="100.00"), event("refunds/create", refund(amounts=("100.00",))), cancelled)

    assert (result["orders_count"], result["net_spent"]) == (0, Decimal("0"))


# --- customers and consent --------------------------------------------------------------------


def test_a_customer_update_sets_identity_state_tags_and_consents() -> None:
    result = applied(event("customers/update", customer_update_2024()))

    assert (result.email_normalized, result.first_name, result.customer_state) == ("bob@biller.com", "Bob", "disabled")
    assert result.customer_tags == ["vip", "wholesale"]
    assert result.email_consent.state == "subscribed"
    assert result.customer_created_at == datetime(2022, 1, 1, tzinfo=UTC)


def test_a_customer_update_older_than_the_stored_one_is_ignored() -> None:
    newer = event("customers/update", {**customer_create(), "first_name": "Robert", "updated_at": at(10)})
    older = event("customers/update", {**customer_create(), "first_name": "Bob", "updated_at": at(1)})

    assert applied(newer, older).first_name == "Robert"
    assert applied(older, newer).first_name == "Robert"


def test_a_current_customer_payload_keeps_tags_and_consents_learned_elsewhere() -> None:
    before = applied(event("customers/update", customer_update_2024()))

    after = apply(before, event("customers/update", {**customer_create(), "updated_at": at(99999)}))

    assert after.customer_tags == ["vip", "wholesale"]
    assert after.email_consent == before.email_consent


def test_a_redacted_null_email_never_erases_a_known_email() -> None:
    before = applied(event("customers/update", customer_update_2024()))

    after = apply(before, event("customers/update", {**customer_create(), "email": None, "updated_at": at(99999)}))

    assert after.email_normalized == "bob@biller.com"


def test_an_older_consent_change_is_ignored() -> None:
    newer = event("customers_email_marketing_consent/update", email_consent_update("subscribed", at(10)))
    older = event("customers_email_marketing_consent/update", email_consent_update("unsubscribed", at(1)))

    assert applied(newer, older).email_consent.state == "subscribed"
    assert applied(older, newer) == applied(newer, older)


def test_consent_is_kept_per_channel() -> None:
    result = applied(
        event("customers_email_marketing_consent/update", email_consent_update("unsubscribed", at(1))),
        event("customers_marketing_consent/update", sms_consent_update("subscribed", at(2))),
    )

    assert (result.email_consent.state, result.sms_consent.state) == ("unsubscribed", "subscribed")
    assert result.sms_consent.updated_at == T0 + timedelta(hours=2)
    assert result.phone == "+16135551111"


def klaviyo_unsubscribe(hours: float) -> EngagementRecorded:
    return EngagementRecorded(
        kind="email_unsubscribe",
        occurred_at=T0 + timedelta(hours=hours),
        email="bob@biller.com",
        phone=None,
        klaviyo_profile_id="K1",
    )


def test_a_klaviyo_unsubscribe_survives_an_older_shopify_subscribe() -> None:
    shopify_subscribed = event("customers_email_marketing_consent/update", email_consent_update("subscribed", at(1)))

    for order_of_events in ([klaviyo_unsubscribe(5), shopify_subscribed], [shopify_subscribed, klaviyo_unsubscribe(5)]):
        assert applied(*order_of_events).email_consent.state == "unsubscribed"


def test_a_klaviyo_unsubscribe_survives_a_shopify_subscribe_of_unknown_date() -> None:
    undated = event("customers/update", {**customer_create(), "accepts_marketing": True, "updated_at": at(50)})

    assert applied(klaviyo_unsubscribe(5), undated).email_consent.state == "unsubscribed"


def test_a_newer_shopify_subscribe_wins_over_an_older_klaviyo_unsubscribe() -> None:
    resubscribed = event("customers_email_marketing_consent/update", email_consent_update("subscribed", at(9)))

    assert applied(klaviyo_unsubscribe(5), resubscribed).email_consent.state == "subscribed"


def test_a_klaviyo_sms_unsubscribe_changes_only_sms_consent() -> None:
    sms_out = EngagementRecorded(
        kind="sms_unsubscribe", occurred_at=T0, email=None, phone="+1613", klaviyo_profile_id=None
    )

    result = applied(event("customers/update", customer_update_2024()), sms_out)

    assert (result.email_consent.state, result.sms_consent.state) == ("subscribed", "unsubscribed")


def test_customers_delete_marks_the_profile_deleted_and_keeps_order_facts() -> None:
    result = applied(placed(total="10.00"), event("customers/delete", customer_delete()))

    assert result.deleted
    assert result.facts()["orders_count"] == 1


def test_purchasing_summary_and_compliance_requests_leave_the_profile_as_it_is() -> None:
    profile = applied(placed())
    for topic, body in [
        ("customers/purchasing_summary", purchasing_summary()),
        ("customers/data_request", customers_data_request()),
        ("customers/redact", customers_redact()),
        ("shop/redact", shop_redact()),
    ]:
        assert apply(profile, event(topic, body)) == profile


def test_an_order_fills_missing_identity_but_never_overrides_the_customer_record() -> None:
    customer = applied(event("customers/update", customer_update_2024()))

    after_order = apply(customer, placed(email="other@example.com"))
    bare_after_order = applied(placed(email="other@example.com"))

    assert after_order.email_normalized == "bob@biller.com"
    assert bare_after_order.email_normalized == "other@example.com"


def test_a_guest_profiles_email_key_never_changes() -> None:
    guest = Profile(shop="shop.myshopify.com", email="guest@example.com", email_normalized="guest@example.com")

    result = apply(guest, event("customers/update", {**customer_create(), "email": "new@example.com"}))

    assert result.key == "guest#guest@example.com"


def test_a_guest_created_from_its_key_alone_learns_how_its_email_is_written() -> None:
    guest = Profile(shop="shop.myshopify.com", email_normalized="guest@example.com")

    result = apply(guest, event("orders/create", order(customer_id=None, email="Guest@Example.com")))

    assert (result.email, result.key) == ("Guest@Example.com", "guest#guest@example.com")


# --- checkouts --------------------------------------------------------------------------------


def started(token: str = CHECKOUT_TOKEN, hours: float = 0, completed: float | None = None) -> DomainEvent:
    return event(
        "checkouts/update",
        checkout(token=token, updated_at=at(hours), completed_at=None if completed is None else at(completed)),
    )


def test_an_open_checkout_is_recorded_at_its_last_activity() -> None:
    result = applied(started(hours=3))

    assert (result.open_checkout_at, result.open_checkout_token) == (T0 + timedelta(hours=3), CHECKOUT_TOKEN)
    assert result.facts()["open_checkout_at"] == T0 + timedelta(hours=3)


def test_an_order_from_the_checkout_closes_it_in_either_order() -> None:
    from_checkout = event(
        "orders/create", {**order(created_at=at(1), updated_at=at(1)), "checkout_token": CHECKOUT_TOKEN}
    )

    assert applied(started(hours=3), from_checkout).open_checkout_at is None
    assert applied(from_checkout, started(hours=3)).open_checkout_at is None


def test_a_later_order_closes_an_earlier_checkout() -> None:
    assert applied(started(hours=3), placed(hours=4)).open_checkout_at is None
    assert applied(placed(hours=4), started(hours=3)).open_checkout_at is None


def test_an_earlier_unrelated_order_leaves_a_checkout_open() -> None:
    assert applied(placed(hours=1), started(hours=3)).open_checkout_at == T0 + timedelta(hours=3)


def test_a_completed_checkout_closes_itself() -> None:
    result = applied(started(hours=3), started(hours=4, completed=4))

    assert (result.open_checkout_at, result.open_checkout_token) == (None, None)


def test_the_latest_open_checkout_is_the_one_kept() -> None:
    one, two = started(token="a", hours=1), started(token="b", hours=2)

    assert applied(one, two).open_checkout_token == "b"
    assert applied(two, one).open_checkout_token == "b"


# --- engagement -------------------------------------------------------------------------------


def engaged(kind: str, hours: float) -> EngagementRecorded:
    return EngagementRecorded.model_validate(
        {
            "kind": kind,
            "occurred_at": T0 + timedelta(hours=hours),
            "email": None,
            "phone": None,
            "klaviyo_profile_id": "K9",
        }
    )


def test_engagement_keeps_the_latest_instant_whatever_the_order() -> None:
    result = applied(
        engaged("email_open", 5), engaged("email_open", 2), engaged("email_click", 1), engaged("sms_click", 3)
    )

    assert result.engagement.last_email_open_at == T0 + timedelta(hours=5)
    assert result.engagement.last_email_click_at == T0 + timedelta(hours=1)
    assert result.engagement.last_sms_click_at == T0 + timedelta(hours=3)
    assert result.facts()["last_engaged_at"] == T0 + timedelta(hours=5)
    assert result.klaviyo_profile_id == "K9"


def test_bounce_and_spam_set_flags_that_stay_set() -> None:
    result = applied(engaged("email_bounce", 1), engaged("email_spam", 2), engaged("email_open", 3))

    assert result.engagement.email_bounced and result.engagement.email_marked_spam


def test_events_expose_how_to_find_their_profile() -> None:
    order_event = placed(email=" Jon@Example.COM ")
    refund_event = event("refunds/create", refund())
    checkout_event = event("checkouts/create", checkout(customer_id=None))
    consent_event = event("customers_email_marketing_consent/update", email_consent_update())

    assert isinstance(order_event, OrderObserved) and order_event.customer_id == str(CUSTOMER_ID)
    assert isinstance(refund_event, RefundObserved) and refund_event.customer_id is None
    assert isinstance(checkout_event, CheckoutObserved) and checkout_event.email_normalized == "example@email.com"
    assert isinstance(consent_event, ConsentChanged) and consent_event.email_normalized == "bob@biller.com"
