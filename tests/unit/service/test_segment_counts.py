"""Per-segment totals kept as changes reach Klaviyo: exact under replays and races, never by scanning, and
spread over shards so one busy segment is no hot key. Real ingest and sync on in-process moto."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.domain.segment_counts import SegmentTotals, SyncedSnapshot
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.sync import SegmentSync
from evergreen.storage import keys
from evergreen.storage.segment_counts import COUNT_PREFIX, COUNT_SHARDS, SegmentCounts
from evergreen.wiring import Edges

from .conftest import SHOP, START, World


@pytest.fixture
def sync(edges: Edges, klaviyo_client: KlaviyoClient, clock: Any) -> SegmentSync:
    return SegmentSync(edges.store, lambda shop: KlaviyoPusher(klaviyo_client, {}), clock)


def order(world: World, customer: int, number: int, days_ago: int, total: str, cancelled: bool = False) -> None:
    at = (START - timedelta(days=days_ago)).isoformat()
    body = {
        "id": number,
        "email": f"c{customer}@example.com",
        "customer": {"id": customer, "email": f"c{customer}@example.com"},
        "created_at": at,
        "updated_at": (START - timedelta(days=days_ago) + timedelta(minutes=5 if cancelled else 0)).isoformat(),
        "cancelled_at": at if cancelled else None,
        "financial_status": "voided" if cancelled else "paid",
        "total_price": total,
    }
    assert world.shopify("orders/cancelled" if cancelled else "orders/create", body).status == 200


def changes(world: World) -> list[SegmentChange]:
    return [SegmentChange.model_validate(body) for body in world.queued()]


def truth(world: World) -> dict[str, int]:
    """What a scan would say (the test may scan; the product never does)."""
    items = [item for item in world.items() if "profile" in item]
    return dict(Counter(segment["S"] for item in items for segment in item["membership"]["L"]))


def counted(edges: Edges) -> dict[str, int]:
    return {name: totals.members for name, totals in edges.store.segment_counts.totals(SHOP).items() if totals.members}


def test_totals_follow_every_change_that_reaches_klaviyo_and_ignore_replays(world: World, edges: Edges, sync) -> None:
    order(world, 1, 11, days_ago=3, total="600.00")  # new, big_spender
    order(world, 2, 21, days_ago=3, total="40.00")  # new
    order(world, 2, 22, days_ago=1, total="30.00")  # + repeat
    order(world, 3, 31, days_ago=200, total="20.00")  # lapsed
    first = changes(world)
    assert sync.sync(first).failed == set()

    assert counted(edges) == {"new": 2, "big_spender": 1, "repeat": 1, "lapsed": 1}
    assert counted(edges) == truth(world)

    sync.sync(first)  # a replay of the same versions
    assert counted(edges) == {"new": 2, "big_spender": 1, "repeat": 1, "lapsed": 1}

    order(world, 1, 11, days_ago=3, total="600.00", cancelled=True)  # customer 1 leaves new and big_spender
    assert sync.sync(changes(world)).failed == set()
    assert counted(edges) == {"new": 1, "repeat": 1, "lapsed": 1}

    totals = edges.store.segment_counts.totals(SHOP)
    assert totals["new"].net_spent == Decimal("70.00") and totals["new"].average_net_spent == Decimal("70.00")
    today = edges.store.segment_counts.days(SHOP, "big_spender", START.date())
    assert [(day.entered, day.exited) for day in today] == [(1, 1)]


def test_a_version_marked_twice_at_once_counts_once(edges: Edges) -> None:
    counts = edges.store.segment_counts
    profile_key = "customer#9"
    edges.dynamodb.put_item(
        TableName=edges.settings.profiles_table,
        Item={**keys.profile_key(SHOP, profile_key), "version": {"N": "1"}},
    )
    snapshot = SyncedSnapshot(frozenset({"vip"}), Decimal("10"), True)

    outcomes = [counts.mark_counted(SHOP, profile_key, 1, snapshot, START) for _ in range(2)]

    assert outcomes == [True, False]
    assert counts.totals(SHOP) == {"vip": SegmentTotals(1, Decimal("10"), 1)}


def test_one_busy_segment_is_spread_over_its_shards(edges: Edges) -> None:
    table = edges.settings.profiles_table
    counts = SegmentCounts(edges.dynamodb, table)
    snapshot = SyncedSnapshot(frozenset({"new"}))
    for number in range(200):
        edges.dynamodb.put_item(
            TableName=table,
            Item={**keys.profile_key(SHOP, f"customer#{number}"), "version": {"N": "1"}},
        )
        counts.mark_counted(SHOP, f"customer#{number}", 1, snapshot, START)

    items = [
        item
        for item in edges.dynamodb.scan(TableName=table)["Items"]
        if keys.ref_of(item)[1].startswith(COUNT_PREFIX) and keys.ref_of(item)[0] == SHOP
    ]

    assert len(items) == COUNT_SHARDS, "every shard took a share"
    assert max(int(item["members"]["N"]) for item in items) < 40, "no shard took most of them"
    assert counts.totals(SHOP)["new"].members == 200


def test_a_redacted_customer_leaves_the_totals_it_was_counted_in(world: World, edges: Edges, sync) -> None:
    order(world, 1, 11, days_ago=3, total="600.00")  # new, big_spender
    order(world, 2, 21, days_ago=3, total="40.00")  # new
    assert sync.sync(changes(world)).failed == set()
    assert counted(edges) == {"new": 2, "big_spender": 1}

    redact = {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": 1, "email": "c1@example.com"},
        "orders_to_redact": [11],
    }
    assert world.shopify("customers/redact", redact).status == 200

    assert counted(edges) == {"new": 1}
    assert counted(edges) == truth(world)
    assert edges.store.segment_counts.totals(SHOP)["new"].net_spent == Decimal("40.00")
