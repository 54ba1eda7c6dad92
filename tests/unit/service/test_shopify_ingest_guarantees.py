"""Guarantees of Shopify ingestion, through the real adapters on in-process moto."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3

from evergreen.service.sweep import SweepRequest
from evergreen.storage import keys

CUSTOMER = 7_063_055_069_303_700_840  # beyond 2**53: must stay exact
EMAIL = "Ada.Lovelace@Example.com"


def order(
    order_id: int,
    total: str = "100.00",
    created: str = "2026-10-30T10:00:00Z",
    updated: str | None = None,
    customer_id: int | None = CUSTOMER,
    email: str | None = EMAIL,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": order_id,
        "email": email,
        "created_at": created,
        "updated_at": updated or created,
        "currency": "USD",
        "financial_status": "paid",
        "total_price": total,
        "current_total_price": total,
        "total_price_set": {"shop_money": {"amount": total, "currency_code": "USD"}},
        "test": False,
        "cancelled_at": None,
        "tags": "",
        "line_items": [{"id": order_id * 10, "product_type": "Outerwear", "price": total, "quantity": 1}],
        "refunds": [],
    }
    if customer_id is not None:
        body["customer"] = {"id": customer_id, "email": email, "first_name": "Ada", "last_name": "Lovelace"}
    body.update(extra)
    return body


def refund(refund_id: int, order_id: int, amount: str, created: str = "2026-10-31T09:00:00Z") -> dict[str, Any]:
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": created,
        "note": None,
        "refund_line_items": [],
        "transactions": [
            {"id": refund_id * 3, "kind": "refund", "status": "success", "amount": amount, "currency": "USD"}
        ],
    }


def test_a_signed_order_creates_the_profile_and_enqueues_its_segments(world):
    answer = world.shopify("orders/create", order(1001, "249.00"))

    assert answer.status == 200
    facts = world.facts(CUSTOMER)
    assert facts["orders_count"] == 1
    assert facts["net_spent"] == Decimal("249.00")
    assert world.profile(CUSTOMER).customer_id == str(CUSTOMER)
    changes = world.queued()
    assert len(changes) == 1
    assert "new" in changes[0]["segments"]


def test_a_duplicate_order_webhook_does_not_change_total_spent(world):
    world.shopify("orders/create", order(1001, "80.00"), event_id="evt-1")
    before = world.profile(CUSTOMER)

    answer = world.shopify("orders/create", order(1001, "80.00"), event_id="evt-1")

    assert answer.status == 200
    assert answer.outcome == "unchanged", "the order item already holds this snapshot: nothing to write"
    after = world.profile(CUSTOMER)
    assert after.version == before.version
    assert after.facts()["net_spent"] == Decimal("80.00")


def test_the_same_order_under_a_new_event_id_is_still_counted_once(world):
    world.shopify("orders/create", order(1001, "80.00"))
    world.shopify("orders/paid", order(1001, "80.00", updated="2026-10-30T10:05:00Z"))
    world.shopify("orders/updated", order(1001, "80.00", updated="2026-10-30T10:05:00Z"))

    facts = world.facts(CUSTOMER)
    assert facts["orders_count"] == 1
    assert facts["net_spent"] == Decimal("80.00")


def test_a_refund_before_its_order_ends_in_the_same_totals(world):
    world.shopify("refunds/create", refund(501, 1001, "30.00"))
    world.shopify("orders/create", order(1001, "100.00"))

    assert world.facts(CUSTOMER)["net_spent"] == Decimal("70.00")


def test_a_refund_delivered_twice_is_subtracted_once(world):
    world.shopify("orders/create", order(1001, "100.00"))
    world.shopify("refunds/create", refund(501, 1001, "30.00"))
    world.shopify("refunds/create", refund(501, 1001, "30.00"))

    assert world.facts(CUSTOMER)["net_spent"] == Decimal("70.00")


def test_a_cancelled_order_is_not_counted_even_if_its_create_arrives_late(world):
    cancelled = order(1001, "100.00", updated="2026-10-30T12:00:00Z", cancelled_at="2026-10-30T12:00:00Z")
    world.shopify("orders/create", order(1002, "50.00"))
    world.shopify("orders/cancelled", cancelled)
    world.shopify("orders/create", order(1001, "100.00"))

    facts = world.facts(CUSTOMER)
    assert facts["orders_count"] == 1
    assert facts["net_spent"] == Decimal("50.00")


def test_a_bad_signature_gets_401_and_writes_nothing(world):
    answer = world.shopify("orders/create", order(1001), secret="not-the-secret")

    assert answer.status == 401
    assert world.items() == []
    assert world.queued() == []


def test_a_shop_without_a_configured_secret_fails_closed(world):
    answer = world.shopify("orders/create", order(1001), shop="unknown-shop.myshopify.com")

    assert answer.status == 401
    assert world.items() == []


def test_an_unknown_topic_gets_200_so_shopify_stops_retrying_and_changes_nothing(world):
    answer = world.shopify("inventory_levels/update", {"inventory_item_id": 1})

    assert answer.status == 200
    assert answer.body["status"] == "ignored"
    assert world.items() == []


def test_malformed_json_gets_400_with_a_reason_and_writes_nothing(world):
    answer = world.shopify("orders/create", b"{not json")

    assert answer.status == 400
    assert answer.body["reason"]
    assert world.items() == []


def test_a_payload_missing_what_the_topic_needs_gets_400(world):
    answer = world.shopify("orders/create", {"email": "x@example.com"})

    assert answer.status == 400
    assert world.items() == []


def test_an_oversized_body_gets_413_and_writes_nothing(world):
    huge = order(1001, note="x" * (world.edges.settings.max_body_bytes + 1))

    answer = world.shopify("orders/create", huge)

    assert answer.status == 413
    assert world.items() == []


def test_an_older_customer_update_does_not_overwrite_a_newer_one(world):
    newer = {"id": CUSTOMER, "email": EMAIL, "first_name": "Ada", "updated_at": "2026-10-30T12:00:00Z"}
    older = {"id": CUSTOMER, "email": EMAIL, "first_name": "Augusta", "updated_at": "2026-10-30T11:00:00Z"}
    world.shopify("customers/update", newer)
    world.shopify("customers/update", older)

    assert world.profile(CUSTOMER).first_name == "Ada"


def test_a_guest_order_attaches_to_the_customer_who_appears_later(world):
    world.shopify("orders/create", order(2001, "40.00", customer_id=None, email="guest@example.com"))
    assert world.guest("guest@example.com") is not None

    world.shopify("customers/create", {"id": 42, "email": "Guest@Example.com", "updated_at": "2026-10-30T13:00:00Z"})

    assert world.guest("guest@example.com") is None
    facts = world.facts(42)
    assert facts["orders_count"] == 1
    assert facts["net_spent"] == Decimal("40.00")


def test_an_order_without_customer_id_attaches_to_the_customer_with_that_email(world):
    world.shopify("customers/create", {"id": 42, "email": "buyer@example.com", "updated_at": "2026-10-30T13:00:00Z"})

    world.shopify("orders/create", order(2001, "40.00", customer_id=None, email=" Buyer@Example.com "))

    assert world.guest("buyer@example.com") is None
    assert world.facts(42)["orders_count"] == 1


def test_customer_redact_deletes_every_item_of_that_customer(world):
    world.shopify("orders/create", order(1001))
    world.shopify("refunds/create", refund(501, 1001, "10.00"))
    world.shopify("orders/create", order(3001, customer_id=99, email="someone.else@example.com"))

    answer = world.shopify(
        "customers/redact",
        {
            "shop_id": 1,
            "shop_domain": "evergreen-test.myshopify.com",
            "customer": {"id": CUSTOMER, "email": EMAIL},
            "orders_to_redact": [1001],
        },
    )

    assert answer.status == 200
    dump = world.readable_items(tombstones=False).lower()
    assert str(CUSTOMER) not in dump
    assert EMAIL.lower() not in dump
    assert "1001" not in dump
    assert world.profile(99) is not None
    assert EMAIL.lower() not in world.readable_items().lower(), "tombstones keep ids and hashes, no email"


def test_shop_redact_deletes_every_item_of_the_shop(world):
    world.shopify("orders/create", order(1001))
    world.shopify("orders/create", order(3001, customer_id=99, email="someone.else@example.com"))

    answer = world.shopify("shop/redact", {"shop_id": 1, "shop_domain": "evergreen-test.myshopify.com"})

    assert answer.status == 200
    assert [keys.ref_of(item)[1] for item in world.items()] == ["erased#shop"], "only the shop's tombstone is left"


def test_a_data_request_exports_the_customers_stored_data_to_s3(world):
    world.shopify("orders/create", order(1001, "249.00"))

    answer = world.shopify(
        "customers/data_request",
        {
            "shop_id": 1,
            "shop_domain": "evergreen-test.myshopify.com",
            "customer": {"id": CUSTOMER, "email": EMAIL},
            "orders_requested": [1001],
            "data_request": {"id": 9999},
        },
    )

    assert answer.status == 200
    key = answer.body["key"]
    exported = json.loads(boto3.client("s3").get_object(Bucket="exports", Key=key)["Body"].read())
    assert exported["profiles"][0]["customer_id"] == str(CUSTOMER)
    assert "1001" in exported["profiles"][0]["orders"]


def test_a_profile_goes_lapsed_once_time_passes_and_the_sweep_runs(world):
    world.shopify("orders/create", order(1001, created="2026-10-30T10:00:00Z"))
    world.queued()
    profile = world.profile(CUSTOMER)
    assert "lapsed" not in profile.membership

    world.clock.advance(timedelta(days=200))
    report = world.edges.sweep.run(SweepRequest())

    assert report.due >= 1
    assert "lapsed" in world.profile(CUSTOMER).membership
    assert any("lapsed" in change["entered"] for change in world.queued())


def test_a_refund_whose_order_never_arrives_expires_and_an_arriving_order_keeps_its_link(world):
    world.shopify("refunds/create", refund(501, 1001, "30.00"))
    world.shopify("refunds/create", refund(502, 1002, "5.00"))
    world.shopify("orders/create", order(1001, "100.00"))

    links = {keys.ref_of(item)[1]: item for item in world.items() if keys.ref_of(item)[1].startswith("order#")}
    assert "expires_at" not in links["order#1001"], "a linked order is kept"
    assert int(links["order#1002"]["expires_at"]["N"]) > world.clock.now().timestamp(), "a parked refund expires"


def test_a_customer_deleted_in_shopify_exits_every_segment_and_is_never_due(world):
    world.shopify("orders/create", order(1001, "600.00"))
    world.queued()

    world.shopify("customers/delete", {"id": CUSTOMER, "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER}"})

    profile = world.profile(CUSTOMER)
    assert profile.membership == {}
    assert profile.next_transition_at is None
    [change] = world.queued()
    assert set(change["exited"]) >= {"new", "big_spender"}
