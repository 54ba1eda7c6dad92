"""Each order counts for exactly one profile, and a webhook costs one read and one write (in-memory store)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.fakes.shopify_world import CUSTOMER, EMAIL, SHOP, T0, FakeWorld, order_body, refund_body


def customer_body(updated_hours: int = 1) -> dict[str, object]:
    stamp = (T0 + timedelta(hours=updated_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": CUSTOMER,
        "email": EMAIL,
        "first_name": "Wholesale",
        "last_name": "Buyer",
        "state": "enabled",
        "created_at": stamp,
        "updated_at": stamp,
    }


def requests_of(world: FakeWorld, topic: str, body: dict[str, object]) -> int:
    world.store.requests.clear()
    assert world.shopify(topic, body).status == 200
    return sum(world.store.requests.values())


def test_orders_cost_one_read_and_one_write_customers_a_delivery_note_more_and_a_refund_one_more_read() -> None:
    world = FakeWorld()

    assert requests_of(world, "customers/create", customer_body()) == 3  # read, write, the delivery's note
    assert requests_of(world, "orders/create", order_body(1, "50.00", T0)) == 2
    assert requests_of(world, "refunds/create", refund_body(11, 1, "5.00", T0 + timedelta(hours=1))) == 3
    assert dict(world.store.requests) == {"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}


def test_a_redelivered_order_costs_one_read_and_writes_nothing() -> None:
    world = FakeWorld()
    world.shopify("orders/create", order_body(1, "50.00", T0), event_id="evt-1")

    assert requests_of_redelivery(world) == {"BatchGetItem": 1}


def requests_of_redelivery(world: FakeWorld) -> dict[str, int]:
    world.store.requests.clear()
    assert world.shopify("orders/create", order_body(1, "50.00", T0), event_id="evt-1").status == 200
    return dict(world.store.requests)


def test_a_refund_before_its_order_is_parked_on_the_order_item_and_counted_when_the_order_arrives() -> None:
    world = FakeWorld()

    parked = world.shopify("refunds/create", refund_body(11, 1, "5.00", T0))
    world.shopify("orders/create", order_body(1, "50.00", T0))

    assert parked.body["status"] == "parked"
    assert (world.facts()["orders_count"], world.facts()["net_spent"]) == (1, Decimal("45.00"))


def test_a_guest_order_merged_into_the_customer_still_takes_its_refund_and_cancel_exactly_once() -> None:
    world = FakeWorld()
    world.shopify("orders/create", order_body(1, "40.00", T0, customer_id=None))
    world.shopify("orders/create", order_body(2, "60.00", T0 + timedelta(hours=2)))  # merges the guest

    world.shopify("refunds/create", refund_body(11, 1, "5.00", T0 + timedelta(hours=3)))
    assert (world.facts()["orders_count"], world.facts()["net_spent"]) == (2, Decimal("95.00"))

    later = T0 + timedelta(hours=4)
    world.shopify("orders/cancelled", order_body(1, "40.00", T0, updated=later, cancelled=later))
    assert (world.facts()["orders_count"], world.facts()["net_spent"]) == (1, Decimal("60.00"))
    assert world.store._profile(SHOP, f"guest#{EMAIL}") is None


def test_an_order_owned_by_a_guest_not_yet_merged_is_updated_on_the_guest_and_counted_once() -> None:
    world = FakeWorld()
    other = "someone.else@example.com"
    world.shopify("orders/create", order_body(1, "40.00", T0, customer_id=None, email=other))
    world.shopify("customers/create", customer_body())  # a customer with another email: no merge

    later = T0 + timedelta(hours=4)
    world.shopify("orders/updated", order_body(1, "30.00", T0, updated=later, email=other))

    guest = world.store._profile(SHOP, f"guest#{other}")
    assert guest is not None
    assert (guest.facts()["orders_count"], guest.facts()["net_spent"]) == (1, Decimal("30.00"))
    assert world.facts()["orders_count"] == 0


def test_customer_redact_deletes_the_order_items_of_the_customer_and_of_the_guest_it_absorbed() -> None:
    world = FakeWorld()
    world.shopify("orders/create", order_body(1, "40.00", T0, customer_id=None))
    world.shopify("orders/create", order_body(2, "60.00", T0 + timedelta(hours=2)))

    world.shopify(
        "customers/redact",
        {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": CUSTOMER, "email": EMAIL}, "orders_to_redact": []},
    )

    assert world.store.orders == {}
    assert world.store.profiles == {}
