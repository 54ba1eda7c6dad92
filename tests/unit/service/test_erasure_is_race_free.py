"""A redact that runs between a write's read and its write still wins: the write finds the tombstone.

Each case pauses one delivery's DynamoDB write (a botocore `before-call` hook on the real client) after its
read, runs customers/redact to the end, then lets the write go: the interleaving a random race meets only
rarely, made certain. Through the real adapters on in-process moto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from evergreen.storage import keys
from tests.unit.service.conftest import SHOP

CUSTOMER = 6_100_001
EMAIL = "paused.writer@example.com"
PHONE = "+16135550999"
ORDER = 6_200_001


def order(order_id: int = ORDER, updated_at: str = "2026-10-31T10:00:00Z") -> dict[str, Any]:
    return {
        "id": order_id,
        "email": EMAIL,
        "created_at": "2026-10-31T09:00:00Z",
        "updated_at": updated_at,
        "currency": "USD",
        "financial_status": "paid",
        "total_price": "80.00",
        "current_total_price": "80.00",
        "total_price_set": {"shop_money": {"amount": "80.00", "currency_code": "USD"}},
        "cancelled_at": None,
        "line_items": [],
        "refunds": [],
        "customer": {"id": CUSTOMER, "email": EMAIL, "phone": PHONE},
    }


def customer_update() -> dict[str, Any]:
    return {"id": CUSTOMER, "email": EMAIL, "first_name": "Paused", "updated_at": "2026-10-31T11:00:00Z"}


def refund() -> dict[str, Any]:
    return {
        "id": 6_300_001,
        "order_id": ORDER,
        "created_at": "2026-10-31T12:00:00Z",
        "transactions": [{"kind": "refund", "status": "success", "amount": "10.00"}],
    }


def redact() -> dict[str, Any]:
    return {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": CUSTOMER, "email": EMAIL, "phone": PHONE},
        "orders_to_redact": [ORDER],
    }


def paused_before(world, operation: str) -> tuple[threading.Event, threading.Event]:
    """The first `operation` call on the world's DynamoDB client waits until released; returns (reached, release)."""
    reached, release = threading.Event(), threading.Event()
    first = threading.Lock()

    def hold(**_: Any) -> None:
        if threading.current_thread() is threading.main_thread() or not first.acquire(blocking=False):
            return
        reached.set()
        assert release.wait(10), "the redact did not finish"

    world.edges.dynamodb.meta.events.register(f"before-call.dynamodb.{operation}", hold)
    return reached, release


CASES: list[tuple[str, list[tuple[str, Callable[[], dict[str, Any]]]], str, Callable[[], dict[str, Any]], str]] = [
    ("orders/create creating the customer", [], "orders/create", order, "TransactWriteItems"),
    (
        "orders/updated of a stored order",
        [("orders/create", order)],
        "orders/updated",
        lambda: order(updated_at="2026-10-31T10:30:00Z"),
        "TransactWriteItems",
    ),
    (
        "customers/update of a stored customer",
        [("orders/create", order)],
        "customers/update",
        customer_update,
        "UpdateItem",
    ),
    ("refunds/create parked before its order", [], "refunds/create", refund, "TransactWriteItems"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "before", "topic", "body", "operation"), CASES, ids=[case[0] for case in CASES])
def test_a_write_paused_between_its_read_and_its_write_by_a_redact_writes_nothing(
    world, name, before, topic, body, operation
):
    for earlier_topic, earlier in before:
        world.shopify(earlier_topic, earlier())
    world.queued()
    reached, release = paused_before(world, operation)

    with ThreadPoolExecutor(max_workers=1) as pool:
        raced = pool.submit(world.shopify, topic, body())
        assert reached.wait(10), "the delivery reached its write"
        redacted = world.shopify("customers/redact", redact())
        release.set()
        answer = raced.result()

    assert redacted.status == 200 and answer.status == 200
    assert answer.body["status"] == "erased"
    kept = [item for item in world.items() if not keys.ref_of(item)[1].startswith(keys.TOMBSTONE_PREFIX)]
    assert kept == [], "nothing of the customer is left"
    queued = world.queued()
    assert [message.get("kind") for message in queued if message.get("kind") == "erase"] == ["erase"] * (
        1 if before else 0
    )
    assert not [message for message in queued if "profile_key" in message], "no change is sent for the customer"
    assert EMAIL not in json.dumps(world.items())
