"""A hot customer: 20 Lambda containers deliver orders for one customer at once, through the real handler."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evergreen.storage.profiles import DynamoProfileStore
from evergreen_cli.commands.send_webhook import shopify_headers
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.lambda_runtime import LambdaRuntime
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET

ROOT = Path(__file__).resolve().parents[2]
SHOP = "hot-customer.myshopify.com"
CUSTOMER = 777000000000000777
CONTAINERS = 20
ORDERS_PER_CONTAINER = 5


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
    """Independent copies of the functions, as 20 concurrent Lambda containers would be."""
    runtimes = [LambdaRuntime(local_resources) for _ in range(CONTAINERS)]
    yield runtimes
    runtimes[0].restore_environment()


def test_twenty_concurrent_deliveries_for_one_customer_lose_nothing_and_almost_never_answer_5xx(
    containers, local_resources
):
    orders = [(90_000 + n, f"{n % 7 + 1}.00") for n in range(CONTAINERS * ORDERS_PER_CONTAINER)]

    def deliver_from(container: int) -> list[tuple[tuple[int, str], int]]:
        mine = orders[container::CONTAINERS]
        runtime = containers[container]
        return [
            (order, int(runtime.invoke("ShopifyWebhookFunction", order_event(*order))["statusCode"])) for order in mine
        ]

    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        answers = [answer for answers in pool.map(deliver_from, range(CONTAINERS)) for answer in answers]

    statuses = Counter(status for _, status in answers)
    assert sum(count for status, count in statuses.items() if status >= 500) <= len(orders) // 100, statuses
    accepted = [order for order, status in answers if status == 200]
    assert len(accepted) == statuses[200] and set(statuses) <= {200, 503}
    store = DynamoProfileStore(local_resources.client("dynamodb"), local_resources.table_name, 8)
    profile = store.load(SHOP, f"customer#{CUSTOMER}")
    assert profile is not None
    facts = profile.facts()
    assert facts["orders_count"] == len(accepted), "every accepted order is counted once, none is lost"
    assert facts["net_spent"] == sum((Decimal(total) for _, total in accepted), Decimal(0))
