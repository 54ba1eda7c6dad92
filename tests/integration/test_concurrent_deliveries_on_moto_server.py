"""Concurrency through the real handlers on moto server: several Lambda containers, one customer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evergreen.domain.profile import Profile
from evergreen.segments import default_definitions
from evergreen.service.membership import reevaluate
from evergreen.storage.profiles import DynamoProfileStore
from evergreen_cli.commands.send_webhook import shopify_headers
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.lambda_runtime import LambdaRuntime
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET
from tests.customers import customer_with_order

ROOT = Path(__file__).resolve().parents[2]
SHOP = "concurrency.myshopify.com"
CUSTOMER = 424242424242424242
CONTAINERS = 4


def order_event(order_id: int, total: str) -> dict[str, Any]:
    body = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    body.update(id=order_id, total_price=total, current_total_price=total)
    body["total_price_set"] = {"shop_money": {"amount": total, "currency_code": "USD"}}
    body["customer"]["id"] = CUSTOMER
    raw = json.dumps(body).encode()
    headers = shopify_headers(raw, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, raw)


@pytest.fixture
def containers(local_resources) -> Iterator[list[LambdaRuntime]]:
    """Independent copies of the functions, as concurrent Lambda containers would be."""
    runtimes = [LambdaRuntime(local_resources) for _ in range(CONTAINERS)]
    yield runtimes
    runtimes[0].restore_environment()


def stored_profile(local_resources) -> Profile:
    store = DynamoProfileStore(local_resources.client("dynamodb"), local_resources.table_name, 8)
    profile = store.load(SHOP, f"customer#{CUSTOMER}")
    assert profile is not None
    return profile


def test_concurrent_order_webhooks_for_one_customer_lose_no_order(containers, local_resources):
    orders = [(1000 + n, f"{n + 1}.00") for n in range(24)]

    def deliver(index: int) -> int:
        order_id, total = orders[index]
        answer = containers[index % CONTAINERS].invoke("ShopifyWebhookFunction", order_event(order_id, total))
        return int(answer["statusCode"])

    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        statuses = list(pool.map(deliver, range(len(orders))))

    assert statuses == [200] * len(orders)
    facts = stored_profile(local_resources).facts()
    assert facts["orders_count"] == len(orders)
    assert facts["net_spent"] == sum((Decimal(total) for _, total in orders), Decimal(0))


def test_concurrent_duplicate_deliveries_count_once(containers, local_resources):
    event = order_event(5000, "75.00")

    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        statuses = list(
            pool.map(lambda n: containers[n].invoke("ShopifyWebhookFunction", event)["statusCode"], range(CONTAINERS))
        )

    assert statuses == [200] * CONTAINERS
    assert stored_profile(local_resources).facts()["net_spent"] == Decimal("75.00")


def test_a_sweep_racing_webhooks_on_the_same_profiles_loses_no_update(containers, local_resources):
    store = DynamoProfileStore(local_resources.client("dynamodb"), local_resources.table_name, 8)
    now = datetime.now(UTC)
    evaluated_at = now - timedelta(days=2)
    numbers = range(1, 31)  # Shopify ids are positive
    for number in numbers:  # lapsed flipped a day ago; the sweep has not run since
        profile = customer_with_order(
            SHOP,
            number,
            now - timedelta(days=181),
            Decimal(9),
            order_id=f"o{number}",
            email=f"racer{number}@example.com",
        )
        store.save(reevaluate(profile, default_definitions(), evaluated_at, version=1).profile, 0, None, evaluated_at)

    def update(number: int) -> int:
        body = json.dumps(
            {
                "id": number,
                "email": f"racer{number}@example.com",
                "first_name": f"Racer{number}",
                "updated_at": now.isoformat(),
            }
        ).encode()
        headers = shopify_headers(body, "customers/update", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
        event = build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)
        return int(containers[1 + number % (CONTAINERS - 1)].invoke("ShopifyWebhookFunction", event)["statusCode"])

    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        sweep = pool.submit(containers[0].invoke, "StalenessSweepFunction", {})
        statuses = list(pool.map(update, numbers))
        sweep.result()

    assert statuses == [200] * len(numbers)
    for number in numbers:
        stored = store.load(SHOP, f"customer#{number}")
        assert stored is not None
        assert stored.first_name == f"Racer{number}", "the webhook's update survived"
        assert "lapsed" in stored.membership, "the sweep's (or the webhook's) re-evaluation survived"
