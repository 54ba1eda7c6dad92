"""Forget means forget, through the real handlers on moto server with the Klaviyo sandbox.

After customers/redact, no delivery about the customer (a Shopify retry up to 4 hours later, a Klaviyo retry up
to 24 hours later, or a replay) writes anything or sends anything to Klaviyo; a redact racing the customer's
order deliveries leaves nothing of the customer either.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from evergreen.storage import keys
from evergreen.storage.packed import unpacked
from evergreen_cli.local_stack.lambda_runtime import LambdaRuntime
from evergreen_cli.local_stack.stack import LocalStack
from tests.conftest import local_stack_options
from tests.erased_customer import Customer

SHOP = "erasure.myshopify.com"
ORDER = 7_000_001


@pytest.fixture
def stack(moto_server: str) -> Iterator[LocalStack]:
    """The local stack with its poller off: the test hands queued changes to SegmentSync itself (`drain`)."""
    with LocalStack(local_stack_options(moto_server, "erase", poll=False)) as started:
        yield started


def deliver(stack: LocalStack, function: str, event: dict[str, Any]) -> dict[str, Any]:
    answer = stack.invoke(function, event)
    assert answer["statusCode"] == 200, answer
    body: dict[str, Any] = json.loads(answer["body"])
    return body


def shop_items(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.resources is not None
    dynamodb = stack.resources.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.resources.table_name):
        items += [item for item in page["Items"] if keys.ref_of(item)[0] == SHOP]
    return items


def readable(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its compressed attributes unpacked: what a reader of the table could learn."""
    return {name: {"S": unpacked(value)} if "B" in value else value for name, value in item.items()}


def residue(items: list[dict[str, Any]], customer: Customer, order_ids: list[int]) -> list[str]:
    """The names of items that still hold anything of the customer (tombstones hold ids and hashes only)."""
    names = [str(customer.customer_id), customer.email.lower(), customer.phone, *map(str, order_ids)]
    found = []
    for item in items:
        text = json.dumps(readable(item)).lower()
        name = keys.ref_of(item)[1]
        if name.startswith(keys.TOMBSTONE_PREFIX):
            assert customer.email.lower() not in text and customer.phone not in text, "no address in clear"
            continue
        if any(name in text for name in names):
            found.append(name)
    return found


def test_after_a_redact_no_retried_or_replayed_delivery_brings_the_customer_back(stack):
    assert stack.sandbox is not None
    now = datetime.now(UTC)
    ada = Customer(SHOP, 8_000_001, "ada.erased@example.com")
    placed = now - timedelta(hours=3)
    deliver(stack, "ShopifyWebhookFunction", ada.shopify("orders/create", ada.order(ORDER, placed), "e-create"))
    deliver(stack, "ShopifyWebhookFunction", ada.shopify("checkouts/create", ada.checkout("tok-1", placed)))
    deliver(stack, "KlaviyoWebhookFunction", ada.klaviyo_open("open-before", now - timedelta(hours=20)))
    stack.drain()
    assert any(r["path"] == "/api/profile-import" for r in stack.sandbox.requests()), "Klaviyo had the customer"

    deliver(stack, "ShopifyWebhookFunction", ada.shopify("customers/redact", ada.redact([ORDER])))
    stack.drain()
    erased_at = len(stack.sandbox.requests())
    assert any("patch_properties" in json.dumps(r.get("json")) for r in stack.sandbox.requests()), "Klaviyo cleared"
    assert residue(shop_items(stack), ada, [ORDER]) == []

    replays = [
        ("ShopifyWebhookFunction", ada.shopify("orders/updated", ada.order(ORDER, placed + timedelta(minutes=5)))),
        ("ShopifyWebhookFunction", ada.shopify("orders/create", ada.order(ORDER, placed), "e-create-retry")),
        ("ShopifyWebhookFunction", ada.shopify("refunds/create", ada.refund(9_001, ORDER, placed))),
        ("ShopifyWebhookFunction", ada.shopify("customers/update", ada.customer_update(placed))),
        ("ShopifyWebhookFunction", ada.shopify("checkouts/update", ada.checkout("tok-1", placed))),
        ("KlaviyoWebhookFunction", ada.klaviyo_open("open-before", now - timedelta(hours=20))),
    ]
    answers = [deliver(stack, function, event) for function, event in replays]
    stack.drain()

    assert [a["status"] for a in answers[:-1]] == ["erased"] * 5
    assert answers[-1]["outcomes"] == {"erased": 1}
    assert residue(shop_items(stack), ada, [ORDER]) == [], "the table holds nothing of the customer"
    assert stack.sandbox.requests()[erased_at:] == [], "Klaviyo receives nothing after the erasure"


def test_a_customer_who_comes_back_with_the_same_email_under_a_new_id_is_new(stack):
    now = datetime.now(UTC)
    ada = Customer(SHOP, 8_000_002, "ada.returns@example.com")
    deliver(
        stack, "ShopifyWebhookFunction", ada.shopify("orders/create", ada.order(ORDER + 1, now - timedelta(hours=2)))
    )
    deliver(stack, "ShopifyWebhookFunction", ada.shopify("customers/redact", ada.redact([ORDER + 1])))

    again = Customer(SHOP, 8_000_003, ada.email)
    answer = deliver(
        stack, "ShopifyWebhookFunction", again.shopify("orders/create", again.order(ORDER + 2, datetime.now(UTC)))
    )
    old = deliver(
        stack,
        "ShopifyWebhookFunction",
        again.shopify("checkouts/create", again.checkout("tok-old", now - timedelta(hours=1))),
    )

    assert answer["status"] == "written", "a new customer id with the same email gets a new profile"
    assert old["status"] == "erased", "a delivery dated before the redact is still refused by the email's tombstone"
    names = {keys.ref_of(item)[1] for item in shop_items(stack)}
    assert f"customer#{again.customer_id}" in names and f"order#{ORDER + 2}" in names
    assert f"customer#{ada.customer_id}" not in names and f"order#{ORDER + 1}" not in names


TRIALS = 200


def handler_module(container: LambdaRuntime) -> Any:
    """The loaded module of a container's ShopifyWebhookFunction (its `edges` holds the container's clients)."""
    handler = container.handler("ShopifyWebhookFunction")
    return next(module for module in list(sys.modules.values()) if getattr(module, "lambda_handler", None) is handler)


@pytest.fixture
def containers(stack: LocalStack) -> Iterator[list[LambdaRuntime]]:
    """Three independent copies of the functions, as three concurrent Lambda containers would be."""
    assert stack.resources is not None
    runtimes = [LambdaRuntime(stack.resources) for _ in range(3)]
    yield runtimes
    runtimes[0].restore_environment()


def shop_partition(stack: LocalStack, shop: str) -> list[dict[str, Any]]:
    assert stack.resources is not None
    pages = stack.resources.client("dynamodb").get_paginator("scan")
    found: list[dict[str, Any]] = []
    for page in pages.paginate(TableName=stack.resources.table_name):
        found += [item for item in page["Items"] if keys.ref_of(item)[0] == shop]
    return found


def cleared(stack: LocalStack, items: list[dict[str, Any]]) -> None:
    """Delete a finished trial's items: moto copies the whole table for each item of a transaction, so a table
    that kept every trial would make each trial slower than the last."""
    assert stack.resources is not None
    dynamodb = stack.resources.client("dynamodb")
    for offset in range(0, len(items), 25):
        chunk = items[offset : offset + 25]
        requests = [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in chunk]
        dynamodb.batch_write_item(RequestItems={stack.resources.table_name: requests})


def test_a_redact_racing_its_orders_deliveries_leaves_nothing_in_any_interleaving(stack, containers):
    """Each trial starts the redact 0-24 ms after the two order deliveries and stalls their writes 0-21 ms after
    their reads (25 x 8 = 200 combinations, each once), so the redact lands before, inside and after their reads
    and writes. Without the tombstones' condition checks, about 140 items survive; with them, none."""
    assert stack.sandbox is not None
    now = datetime.now(UTC)
    outcomes: list[Counter[str]] = [Counter(), Counter(), Counter()]
    stall = [0.0]
    for container in containers[1:]:
        client = handler_module(container).edges.dynamodb
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", lambda **_: time.sleep(stall[0]))
    left: list[str] = []

    def trial(pool: ThreadPoolExecutor, number: int) -> list[int]:
        racer = Customer(f"race{number}.myshopify.com", 8_100_000 + number, f"racer{number}@example.com")
        order_id = 7_100_000 + number
        deliveries = [
            racer.shopify("customers/redact", racer.redact([order_id])),
            racer.shopify("orders/create", racer.order(order_id, now - timedelta(minutes=10))),
            racer.shopify("orders/updated", racer.order(order_id, now - timedelta(minutes=5), total="90.00")),
        ]
        start = threading.Barrier(len(deliveries))
        stall[0] = (number % 8) * 0.003

        def send(index: int) -> int:
            start.wait()
            if index == 0:
                time.sleep((number % 25) * 0.001)
            answer = containers[index].invoke("ShopifyWebhookFunction", deliveries[index])
            outcomes[index][json.loads(answer["body"]).get("status")] += 1
            return int(answer["statusCode"])

        statuses = list(pool.map(send, range(len(deliveries))))
        items = shop_partition(stack, racer.shop)
        left.extend(residue(items, racer, [order_id]))
        cleared(stack, items)
        return statuses

    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = [trial(pool, number) for number in range(TRIALS)]
    stack.drain()

    assert all(answer == [200, 200, 200] for answer in statuses)
    assert left == [], f"{len(left)} items of redacted customers survived"
    print(f"outcomes over {TRIALS} trials (redact, orders/create, orders/updated): {outcomes}")
    imported = [r for r in stack.sandbox.requests() if "racer" in json.dumps(r.get("json"))]
    assert imported == [], "no profile of a redacted customer reached Klaviyo: sync dropped every queued change"
