"""Facts as Klaviyo profile properties: the definitions' `klaviyo_properties` travel beside `evergreen_segments`,
in the same upserts, and only when one of them changed. Real ingest on in-process moto, the Klaviyo sandbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evergreen.clock import FixedClock
from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.sync import SegmentSync
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer

from .conftest import START, World, edges_with_segments

SEGMENTS = """\
klaviyo_properties: [net_spent, orders_count, last_order_at, rfm_score, expected_next_order_at, country_code]
rfm:
  recency_days: [30, 60, 120, 240]
  frequency: [1, 2, 3, 5]
  monetary: ["50.00", "150.00", "400.00", "1000.00"]
segments:
  repeat:
    description: Two or more orders.
    when: {orders_count: {gte: 2}}
"""


@pytest.fixture
def edges(settings: Settings, clock: FixedClock, tmp_path: Path) -> Edges:
    return edges_with_segments(settings, clock, tmp_path, SEGMENTS)


def order(world: World, number: int, days_ago: int, total: str = "40.00") -> None:
    at = (START - timedelta(days=days_ago)).isoformat()
    body = {
        "id": number,
        "email": "c1@example.com",
        "customer": {"id": 1, "email": "c1@example.com"},
        "created_at": at,
        "updated_at": at,
        "currency": "CAD",
        "financial_status": "paid",
        "total_price": total,
        "shipping_address": {"country_code": "CA", "province_code": "ON", "city": "Ottawa"},
    }
    assert world.shopify("orders/create", body).status == 200


def changes(world: World) -> list[SegmentChange]:
    return [SegmentChange.model_validate(body) for body in world.queued()]


def test_listed_facts_are_sent_when_they_change_and_only_then(
    world: World, edges: Edges, klaviyo_sandbox: SandboxServer, klaviyo_client: KlaviyoClient
) -> None:
    order(world, 101, days_ago=20)
    (first,) = changes(world)
    assert first.entered == [] and first.properties == {
        "net_spent": 40.0,
        "orders_count": 1,
        "last_order_at": (START - timedelta(days=20)).isoformat().replace("+00:00", "Z"),
        "rfm_score": 5 + 2 + 1,
        "expected_next_order_at": None,
        "country_code": "CA",
    }, "a first order changes no segment here, and still sends the facts"

    consent = {"customer_id": 1, "email_address": "c1@example.com"}
    consent["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": START.isoformat()}
    assert world.shopify("customers_email_marketing_consent/update", consent).status == 200
    assert changes(world) == [], "consent is not a listed fact: nothing to send"

    order(world, 102, days_ago=2, total="60.00")
    (second,) = changes(world)
    assert second.entered == ["repeat"]
    assert (second.properties["net_spent"], second.properties["orders_count"]) == (100.0, 2)

    report = SegmentSync(edges.store, lambda shop: KlaviyoPusher(klaviyo_client, {}), world.clock).sync([second])

    assert report.failed == set()
    (upsert,) = [request for request in klaviyo_sandbox.requests() if request["path"] == "/api/profile-import"]
    properties = upsert["json"]["data"]["attributes"]["properties"]
    assert properties["evergreen_segments"] == ["repeat"]
    assert (properties["evergreen_net_spent"], properties["evergreen_orders_count"]) == (100.0, 2)
    assert properties["evergreen_country_code"] == "CA"


def test_the_default_pack_lists_no_facts_and_sends_none(settings: Settings, clock: FixedClock) -> None:
    world = World(Edges(settings, clock), clock)
    order(world, 101, days_ago=20)

    (change,) = changes(world)

    assert change.properties == {}
