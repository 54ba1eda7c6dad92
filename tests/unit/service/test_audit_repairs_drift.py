"""`evergreen audit` finds drift injected into the Klaviyo sandbox (a wrong `evergreen_segments`, a list membership
lost, a profile deleted in Klaviyo) and `--repair` mends it through the normal sync path. In-process moto."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evergreen.clock import FixedClock
from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.holdings import KlaviyoHoldings
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.audit import Audit
from evergreen.service.sync import SegmentSync
from evergreen.settings import Settings
from evergreen.storage.shop_profiles import DynamoShopProfiles
from evergreen.wiring import Edges
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer

from .conftest import SHOP, START, World, edges_with_segments

SEGMENTS = """\
segments:
  buyer:
    description: At least one order.
    klaviyo_list_id: BuyersL1
    when: {orders_count: {gte: 1}}
  repeat:
    description: Two or more orders.
    klaviyo_list_id: RepeatL2
    when: {orders_count: {gte: 2}}
"""


@pytest.fixture
def edges(settings: Settings, clock: FixedClock, tmp_path: Path) -> Edges:
    return edges_with_segments(settings, clock, tmp_path, SEGMENTS)


def sync_queue(world: World, edges: Edges, client: KlaviyoClient) -> None:
    changes = [SegmentChange.model_validate(body) for body in world.queued()]
    sync = SegmentSync(edges.store, lambda shop: KlaviyoPusher(client, edges.definitions.klaviyo_list_ids), world.clock)
    assert sync.sync(changes).failed == set()


def buy(world: World, customer: int, orders: int) -> None:
    for number in range(orders):
        at = (START - timedelta(days=10 + number)).isoformat()
        body = {
            "id": customer * 10 + number,
            "email": f"c{customer}@example.com",
            "customer": {"id": customer, "email": f"c{customer}@example.com"},
            "created_at": at,
            "updated_at": at,
            "financial_status": "paid",
            "total_price": "25.00",
        }
        assert world.shopify("orders/create", body).status == 200


def audit(edges: Edges, client: KlaviyoClient) -> Audit:
    profiles = DynamoShopProfiles(edges.dynamodb, edges.settings.profiles_table)
    lists = edges.definitions.klaviyo_list_ids
    return Audit(profiles, KlaviyoHoldings(client), lists, edges.store, edges.publisher)


def test_the_audit_finds_injected_drift_and_repair_mends_it(
    world: World, edges: Edges, klaviyo_sandbox: SandboxServer, klaviyo_client: KlaviyoClient
) -> None:
    client = klaviyo_client
    for customer, orders in ((1, 1), (2, 2), (3, 2), (4, 1)):
        buy(world, customer, orders)
    sync_queue(world, edges, client)
    clean = audit(edges, client).run(SHOP, None, world.clock.now())
    assert (clean.checked, clean.drift) == (4, [])

    state = klaviyo_sandbox.state
    with state.lock:
        by_external = {stored["external_id"]: kid for kid, stored in state.profiles.items()}
        state.profiles[by_external[f"{SHOP}/customer#1"]]["properties"]["evergreen_segments"] = ["vip"]
        state.lists["RepeatL2"].remove(by_external[f"{SHOP}/customer#2"])
        state.profiles.pop(by_external[f"{SHOP}/customer#3"])
        for members in state.lists.values():
            if by_external[f"{SHOP}/customer#3"] in members:
                members.remove(by_external[f"{SHOP}/customer#3"])

    found = audit(edges, client).run(SHOP, None, world.clock.now(), repair=True)

    assert {drift.profile_key: drift.problems for drift in found.drift} == {
        "customer#1": ("evergreen_segments is ['vip'], the table says ['buyer']",),
        "customer#2": ("not in list RepeatL2, the table says in",),
        "customer#3": ("missing in Klaviyo",),
    }
    assert found.repaired == 3
    sync_queue(world, edges, client)  # the normal sync path: the queue, then SegmentSync
    after = audit(edges, client).run(SHOP, None, world.clock.now())
    assert (after.checked, after.in_flight, after.drift) == (4, 0, [])


def test_a_sample_audits_that_many_and_a_change_in_flight_is_not_drift(
    world: World, edges: Edges, klaviyo_client: KlaviyoClient
) -> None:
    client = klaviyo_client
    for customer in range(1, 6):
        buy(world, customer, 1)
    sync_queue(world, edges, client)
    buy(world, 1, 2)  # a newer change for customer 1, not yet synced

    report = audit(edges, client).run(SHOP, 2, world.clock.now(), seed=3)

    assert (report.checked, report.in_flight, report.drift) == (2, 1, [])
