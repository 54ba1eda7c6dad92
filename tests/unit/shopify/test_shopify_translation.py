"""Translation of current (2025-10) and older webhook shapes into domain events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from evergreen.domain.events import (
    DOMAIN_EVENTS,
    CheckoutObserved,
    ConsentChanged,
    CustomerDeleted,
    CustomerRedactRequested,
    CustomerUpserted,
    DataRequested,
    OrderObserved,
    PurchasingSummary,
    RefundObserved,
    ShopRedactRequested,
)
from evergreen.shopify.topics import (
    COMPLIANCE_TOPICS,
    SUBSCRIPTION_TOPICS,
    SUPPORTED_TOPICS,
    UnknownTopic,
    canonical_topic,
    translate,
)
from tests.unit.shopify.shopify_samples_2025_10 import (
    CHECKOUT_TOKEN,
    CURRENT_SAMPLES,
    CUSTOMER_ID,
    ORDER_ID,
    REFUND_ID,
    checkout,
    customer_create,
    customer_update_2024,
    email_consent_update,
    order,
    purchasing_summary,
    refund,
    sms_consent_update,
)

RECEIVED = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)


def test_every_topic_named_in_the_brief_is_supported() -> None:
    named = {
        "customers/create",
        "customers/update",
        "customers/delete",
        "customers/enable",
        "customers/disable",
        "customers/email_marketing_consent_update",
        "customers/marketing_consent_update",
        "customers/purchasing_summary",
        "orders/create",
        "orders/paid",
        "orders/updated",
        "orders/cancelled",
        "orders/fulfilled",
        "refunds/create",
        "checkouts/create",
        "checkouts/update",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
    assert named <= SUPPORTED_TOPICS
    assert {"customers/data_request", "customers/redact", "shop/redact"} == COMPLIANCE_TOPICS


def test_subscriptions_use_shopifys_own_topic_names_and_leave_out_compliance_topics() -> None:
    assert "customers_email_marketing_consent/update" in SUBSCRIPTION_TOPICS
    assert "customers_marketing_consent/update" in SUBSCRIPTION_TOPICS
    assert not COMPLIANCE_TOPICS & set(SUBSCRIPTION_TOPICS)
    assert all(topic == canonical_topic(topic) for topic in SUBSCRIPTION_TOPICS)


@pytest.mark.parametrize("topic", sorted(CURRENT_SAMPLES))
def test_every_supported_topic_translates_its_current_shape_from_dict_and_from_raw_bytes(topic: str) -> None:
    body = CURRENT_SAMPLES[topic]()

    from_dict = translate(topic, body, RECEIVED)
    from_bytes = translate(topic, json.dumps(body).encode(), RECEIVED)

    assert from_dict == from_bytes
    assert DOMAIN_EVENTS.validate_json(DOMAIN_EVENTS.dump_json(from_dict)) == from_dict


def test_every_supported_topic_has_a_current_shape_sample() -> None:
    assert set(CURRENT_SAMPLES) == SUPPORTED_TOPICS


def test_an_unknown_topic_is_refused_by_name() -> None:
    with pytest.raises(UnknownTopic) as refused:
        translate("products/update", {"id": 1}, RECEIVED)
    assert refused.value.topic == "products/update"


def test_topic_names_are_matched_case_insensitively_and_trimmed() -> None:
    assert isinstance(translate(" Orders/Create ", order(), RECEIVED), OrderObserved)


def test_a_64_bit_customer_id_stays_exact() -> None:
    event = translate("customers/create", customer_create(), RECEIVED)

    assert event.customer_id == "706405506930370084"


def test_ids_given_as_strings_or_graphql_gids_mean_the_same_customer() -> None:
    as_string = {**customer_create(), "id": str(CUSTOMER_ID)}
    as_gid = {**customer_create(), "id": f"gid://shopify/Customer/{CUSTOMER_ID}"}

    assert translate("customers/update", as_string, RECEIVED).customer_id == str(CUSTOMER_ID)
    assert translate("customers/update", as_gid, RECEIVED).customer_id == str(CUSTOMER_ID)


def test_a_current_customer_payload_without_tags_or_consents_leaves_them_unknown() -> None:
    event = translate("customers/create", customer_create(), RECEIVED)

    assert isinstance(event, CustomerUpserted)
    assert event.tags is None
    assert event.email_consent is None
    assert event.sms_consent is None


def test_email_is_kept_for_display_and_normalised_for_identity() -> None:
    event = translate("customers/create", customer_create(), RECEIVED)

    assert event.email == "Bob@Biller.com "
    assert event.email_normalized == "bob@biller.com"


def test_timestamps_with_offsets_become_utc() -> None:
    event = translate("customers/create", customer_create(), RECEIVED)

    assert isinstance(event, CustomerUpserted)
    assert event.updated_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert event.updated_at is not None and event.updated_at.tzinfo is UTC


def test_a_pre_2025_customer_payload_carries_tags_and_both_consents() -> None:
    event = translate("customers/update", customer_update_2024(), RECEIVED)

    assert isinstance(event, CustomerUpserted)
    assert event.tags == ("vip", "wholesale")
    assert event.email_consent is not None and event.email_consent.state == "subscribed"
    assert event.email_consent.updated_at == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    assert event.sms_consent is not None and event.sms_consent.state == "not_subscribed"
    assert event.sms_consent.updated_at is None


def test_legacy_accepts_marketing_becomes_an_undated_email_consent() -> None:
    body = {**customer_create(), "accepts_marketing": False, "accepts_marketing_updated_at": None}

    event = translate("customers/update", body, RECEIVED)

    assert isinstance(event, CustomerUpserted)
    assert event.email_consent is not None
    assert (event.email_consent.state, event.email_consent.updated_at) == ("not_subscribed", None)


def test_order_totals_are_decimal_shop_money() -> None:
    body = order(total="359.97")
    body["total_price_set"] = {
        "shop_money": {"amount": "359.97", "currency_code": "USD"},
        "presentment_money": {"amount": "330.10", "currency_code": "EUR"},
    }

    event = translate("orders/paid", body, RECEIVED)

    assert isinstance(event, OrderObserved)
    assert event.total == Decimal("359.97")
    assert isinstance(event.total, Decimal)
    assert event.currency == "USD"


def test_an_order_without_a_price_set_falls_back_to_total_price_and_currency() -> None:
    body = order(total="12.50")
    del body["total_price_set"]
    body["currency"] = "CAD"

    event = translate("orders/create", body, RECEIVED)

    assert isinstance(event, OrderObserved)
    assert (event.total, event.currency) == (Decimal("12.50"), "CAD")


def test_money_given_as_a_json_number_is_exact() -> None:
    body = order()
    del body["total_price_set"]
    body["total_price"] = 409.94

    event = translate("orders/create", json.dumps(body).encode(), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert event.total == Decimal("409.94")


def test_an_order_names_its_customer_identity_tags_and_checkout() -> None:
    event = translate("orders/create", order(), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert event.order_id == str(ORDER_ID)
    assert event.customer_id == str(CUSTOMER_ID)
    assert event.email_normalized == "jon@example.com"
    assert event.tags == ("tag1", "tag2")
    assert event.checkout_token == "bd5a8aa1ecd019dd3520ff791ee3a24c"
    assert event.cancelled is False
    assert event.product_types == ()


def test_a_guest_order_has_no_customer_id_but_an_email() -> None:
    event = translate("orders/create", order(customer_id=None, email="Guest@Example.com"), RECEIVED)

    assert event.customer_id is None
    assert event.email_normalized == "guest@example.com"


def test_product_types_are_read_when_line_items_carry_them_and_are_bounded() -> None:
    body = order()
    body["line_items"] = [
        {"product_id": n + 1, "title": f"item {n}", "product_type": f"type {n % 30}"} for n in range(60)
    ]

    event = translate("orders/create", body, RECEIVED)

    assert isinstance(event, OrderObserved)
    assert len(event.product_types) == 20
    assert event.product_types[0] == "type 0"


def test_an_orders_cancelled_delivery_is_a_cancelled_order() -> None:
    event = translate("orders/cancelled", CURRENT_SAMPLES["orders/cancelled"](), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert event.cancelled
    assert event.cancelled_at == datetime(2022, 1, 1, tzinfo=UTC)


def test_a_refund_counts_only_its_successful_refund_transactions() -> None:
    body = refund(amounts=("75.00", "10.00"))
    body["transactions"].append({"id": 1, "kind": "refund", "status": "failure", "amount": "99.00"})
    body["transactions"].append({"id": 2, "kind": "sale", "status": "success", "amount": "500.00"})

    event = translate("refunds/create", body, RECEIVED)

    assert isinstance(event, RefundObserved)
    assert (event.refund_id, event.order_id) == (str(REFUND_ID), str(ORDER_ID))
    assert event.amount == Decimal("85.00")


def test_a_refund_transaction_with_shop_money_uses_it() -> None:
    body = refund(amounts=("75.00",))
    body["transactions"][0]["amount_set"] = {
        "shop_money": {"amount": "101.25", "currency_code": "CAD"},
        "presentment_money": {"amount": "75.00", "currency_code": "USD"},
    }

    event = translate("refunds/create", body, RECEIVED)

    assert isinstance(event, RefundObserved)
    assert (event.amount, event.currency) == (Decimal("101.25"), "CAD")


def test_refunds_embedded_in_an_order_payload_are_translated_too() -> None:
    event = translate("orders/updated", order(refunds=[refund()]), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert [(r.refund_id, r.order_id, r.amount) for r in event.refunds] == [
        (str(REFUND_ID), str(ORDER_ID), Decimal("85.00"))
    ]


def test_an_embedded_refund_without_order_id_belongs_to_its_order() -> None:
    embedded = refund()
    del embedded["order_id"]

    event = translate("orders/updated", order(refunds=[embedded]), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert event.refunds[0].order_id == str(ORDER_ID)


def test_consent_updates_carry_channel_state_and_consent_time() -> None:
    email = translate("customers/email_marketing_consent_update", email_consent_update(), RECEIVED)
    sms = translate("customers_marketing_consent/update", sms_consent_update(), RECEIVED)

    assert isinstance(email, ConsentChanged) and isinstance(sms, ConsentChanged)
    assert (email.channel, email.state, email.customer_id) == ("email", "unsubscribed", str(CUSTOMER_ID))
    assert email.updated_at == datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    assert (sms.channel, sms.state, sms.phone) == ("sms", "subscribed", "+16135551111")


def test_shopifys_documented_empty_consent_sample_reads_as_unknown() -> None:
    body = email_consent_update()
    body["email_marketing_consent"] = {"state": None, "opt_in_level": None, "consent_updated_at": None}

    event = translate("customers_email_marketing_consent/update", body, RECEIVED)

    assert isinstance(event, ConsentChanged)
    assert (event.state, event.updated_at) == ("unknown", None)


def test_upper_case_or_unheard_of_consent_states_are_read_safely() -> None:
    upper = translate("customers_email_marketing_consent/update", email_consent_update("SUBSCRIBED"), RECEIVED)
    odd = translate("customers_email_marketing_consent/update", email_consent_update("confused"), RECEIVED)

    assert isinstance(upper, ConsentChanged) and isinstance(odd, ConsentChanged)
    assert (upper.state, odd.state) == ("subscribed", "unknown")


def test_purchasing_summary_reads_graphql_ids_and_money() -> None:
    event = translate("customers/purchasing_summary", purchasing_summary(), RECEIVED)

    assert isinstance(event, PurchasingSummary)
    assert event.customer_id == str(CUSTOMER_ID)
    assert event.last_order_id == str(ORDER_ID)
    assert (event.orders_count, event.amount_spent, event.currency) == (1, Decimal("100.00"), "USD")


def test_a_checkout_names_its_token_customer_and_last_activity() -> None:
    event = translate("checkouts/update", checkout(updated_at="2022-01-02T10:00:00Z"), RECEIVED)

    assert isinstance(event, CheckoutObserved)
    assert (event.token, event.customer_id) == (CHECKOUT_TOKEN, str(CUSTOMER_ID))
    assert event.last_activity_at == datetime(2022, 1, 2, 10, 0, tzinfo=UTC)
    assert event.completed_at is None


def test_customers_delete_is_stamped_with_the_receipt_time() -> None:
    event = translate("customers/delete", CURRENT_SAMPLES["customers/delete"](), RECEIVED)

    assert isinstance(event, CustomerDeleted)
    assert (event.customer_id, event.deleted_at) == (str(CUSTOMER_ID), RECEIVED)


def test_compliance_requests_name_the_customer_and_orders() -> None:
    data = translate("customers/data_request", CURRENT_SAMPLES["customers/data_request"](), RECEIVED)
    redact = translate("customers/redact", CURRENT_SAMPLES["customers/redact"](), RECEIVED)
    shop = translate("shop/redact", CURRENT_SAMPLES["shop/redact"](), RECEIVED)

    assert isinstance(data, DataRequested)
    assert (data.customer_id, data.orders_requested, data.data_request_id) == (
        "191167",
        ("299938", "280263", "220458"),
        "9999",
    )
    assert isinstance(redact, CustomerRedactRequested)
    assert (redact.customer_id, redact.email_normalized, redact.orders) == (
        "191167",
        "john@example.com",
        ("299938", "280263", "220458"),
    )
    assert isinstance(shop, ShopRedactRequested)
    assert (shop.shop_id, shop.shop_domain, shop.customer_id) == ("954889", "{shop}.myshopify.com", None)


def test_unused_fields_of_any_type_are_ignored() -> None:
    body = {**order(), "brand_new_field": {"nested": [1, 2, {"x": None}]}, "note_attributes": "odd"}

    assert isinstance(translate("orders/create", body, RECEIVED), OrderObserved)


def test_events_expose_the_resource_clock_used_for_ordering() -> None:
    event = translate("orders/updated", order(updated_at="2022-02-02T00:00:00Z"), RECEIVED)

    assert event.resource_updated_at == datetime(2022, 2, 2, tzinfo=UTC)
