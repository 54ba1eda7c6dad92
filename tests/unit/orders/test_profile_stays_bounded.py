"""A wholesale customer's profile stays one bounded item, however many orders, with exact facts.

Runs the real Shopify webhook service over the in-memory store (which enforces DynamoDB's 400 KB item
limit and version conditions), so 20,000 orders take seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from evergreen.domain.orders import ORDER_TIMES_KEPT
from tests.fakes.shopify_world import CUSTOMER, SHOP, T0, FakeWorld, order_body, refund_body

ORDERS = 20_000
FIRST_ORDER_ID = 5_000_000_000
PROFILE_ITEM_BOUND = 16 * 1024
"""Far below DynamoDB's 400 KB, and independent of the number of orders."""


@dataclass
class Books:
    """What the shop's own books say, kept without the service."""

    totals: dict[int, Decimal] = field(default_factory=dict)
    created: dict[int, datetime] = field(default_factory=dict)
    refunded: dict[int, Decimal] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)

    def facts(self) -> tuple[int, Decimal, datetime | None, datetime | None]:
        counted = [order for order in self.totals if order not in self.cancelled]
        net = sum((self.totals[o] - self.refunded.get(o, Decimal(0)) for o in counted), Decimal(0))
        times = [self.created[o] for o in counted]
        return len(counted), net, min(times, default=None), max(times, default=None)


def total_of(number: int) -> str:
    return f"{number % 97 + 10}.{number % 100:02d}"


def test_twenty_thousand_orders_with_refunds_and_cancels_answer_200_with_exact_facts() -> None:
    world = FakeWorld()
    books = Books()
    statuses: list[int] = []

    def send(topic: str, body: dict[str, object], event_id: str | None = None) -> None:
        statuses.append(world.shopify(topic, body, event_id).status)

    def cancel(number: int, order_id: int, created: datetime) -> None:
        at = created + timedelta(minutes=30)
        send("orders/cancelled", order_body(order_id, total_of(number), created, updated=at, cancelled=at))
        books.cancelled.add(order_id)

    for number in range(ORDERS):
        order_id = FIRST_ORDER_ID + number
        created = T0 + timedelta(hours=number)
        body = order_body(order_id, total_of(number), created, tags=f"t{number % 130:03d}")
        refund = refund_body(9_000_000_000 + number, order_id, "5.00", created + timedelta(minutes=10))
        if number % 333 == 0:
            cancel(number, order_id, created)  # the cancellation overtakes the creation
        if number % 50 == 0:
            send("refunds/create", refund)  # a refund before its order: parked on the order's item
        send("orders/create", body, event_id=f"create-{order_id}")
        books.totals[order_id], books.created[order_id] = Decimal(total_of(number)), created
        if number % 100 == 0:
            send("orders/create", body, event_id=f"create-{order_id}")  # a retry
            send("orders/paid", body)  # the same snapshot under another topic and event id
        if number % 10 == 0:
            if number % 50 != 0:
                send("refunds/create", refund)
            send("refunds/create", refund)  # delivered twice
            books.refunded[order_id] = Decimal("5.00")
        if number % 25 == 0:
            cancel(number, order_id, created)

    # the newest and the oldest orders stop counting: more than the profile's windows hold
    for number in [*range(ORDERS - 1, ORDERS - 2 * ORDER_TIMES_KEPT - 1, -1), *range(2 * ORDER_TIMES_KEPT)]:
        cancel(number, FIRST_ORDER_ID + number, T0 + timedelta(hours=number))

    facts = world.facts()
    count, net, first, last = books.facts()
    assert set(statuses) == {200}
    assert (facts["orders_count"], facts["net_spent"]) == (count, net)
    assert (facts["first_order_at"], facts["last_order_at"]) == (first, last)
    assert facts["average_order_value"] == (net / count).quantize(Decimal("0.01"))
    assert facts["order_tags"] == frozenset(f"t{n:03d}" for n in range(50))
    assert facts["product_types_bought"] == frozenset({"Outerwear"})
    size = world.store.profile_item_size(SHOP, f"customer#{CUSTOMER}")
    print(f"profile item after {ORDERS} orders: {size} bytes")
    assert size < PROFILE_ITEM_BOUND


def test_the_profile_item_does_not_grow_with_the_number_of_orders() -> None:
    world = FakeWorld()
    sizes = {}
    for number in range(2_000):
        created = T0 + timedelta(hours=number)
        world.shopify("orders/create", order_body(FIRST_ORDER_ID + number, "12.34", created))
        if number + 1 in (200, 2_000):
            sizes[number + 1] = world.store.profile_item_size(SHOP, f"customer#{CUSTOMER}")

    assert sizes[2_000] <= sizes[200] + 64  # only the digits of the sums grow
