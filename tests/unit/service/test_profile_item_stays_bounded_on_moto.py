"""On (in-process moto) DynamoDB, a customer with more orders than one item could once hold keeps a small item.

Before order items existed, the profile item held every order and hit moto's item size limit at order 658
(DynamoDB's 400 KB at about 1,330), after which every webhook for that customer answered 503.

The first 1,500 orders run through the real service on the in-memory store (moto copies the whole table for
every TransactWriteItems, so 1,500 transactions would take minutes); the profile they produce is then stored
through the real DynamoDB adapter, and the customer's next orders, a refund and a cancel go through the
webhook service on moto.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from evergreen.service.ports import OrderItem
from evergreen.storage import keys
from tests.fakes.shopify_world import CUSTOMER, SHOP, T0, FakeWorld, order_body, refund_body

ORDERS = 1_500
FIRST_ORDER_ID = 8_000_000_000
MOTO_SHOP = "evergreen-test.myshopify.com"


def _total(number: int) -> str:
    return f"{number % 90 + 10}.50"


def _dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers about 1 byte per 2 digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += len(value["N"]) // 2 + 2
        else:
            size += len(str(value).encode())
    return size


def test_a_customer_past_the_old_limit_keeps_a_small_profile_item_and_every_answer_200(world, settings, clock):
    fake = FakeWorld()
    for number in range(ORDERS):
        created = T0 + timedelta(hours=number)
        assert fake.shopify("orders/create", order_body(FIRST_ORDER_ID + number, _total(number), created)).status == 200
    seeded = fake.profile().model_copy(update={"shop": MOTO_SHOP, "version": 0})
    store = world.edges.store
    newest = fake.store.load_order(SHOP, str(FIRST_ORDER_ID + ORDERS - 1))
    assert newest is not None
    store.save(
        seeded.model_copy(update={"version": 1}),
        0,
        None,
        clock.now(),
        order=OrderItem(MOTO_SHOP, newest.order_id, seeded.key, newest.state),
    )

    statuses = set()
    more = range(ORDERS, ORDERS + 5)
    for number in more:
        body = order_body(FIRST_ORDER_ID + number, _total(number), T0 + timedelta(hours=number))
        statuses.add(world.shopify("orders/create", body).status)
    last = ORDERS + 4
    refund = refund_body(9_000_000_001, FIRST_ORDER_ID + last, "5.00", T0 + timedelta(hours=last, minutes=5))
    statuses.add(world.shopify("refunds/create", refund).status)
    cancelled_at = T0 + timedelta(hours=last, minutes=30)
    cancelled = order_body(
        FIRST_ORDER_ID + last, _total(last), T0 + timedelta(hours=last), updated=cancelled_at, cancelled=cancelled_at
    )
    statuses.add(world.shopify("orders/cancelled", cancelled).status)

    facts = world.facts(CUSTOMER)
    counted = range(ORDERS + 4)
    assert statuses == {200}
    assert facts["orders_count"] == len(counted)
    assert facts["net_spent"] == sum((Decimal(_total(n)) for n in counted), Decimal(0))
    assert facts["last_order_at"] == T0 + timedelta(hours=ORDERS + 3)
    item = world.edges.dynamodb.get_item(
        TableName=settings.profiles_table,
        Key=keys.profile_key(MOTO_SHOP, f"customer#{CUSTOMER}"),
    )["Item"]
    size = _dynamodb_item_bytes(item)
    print(f"profile item on moto after {ORDERS + 5} orders: {size} bytes")
    assert size < 16 * 1024
