"""Segments the way merchants think: where customers are and when they are overdue, from real webhooks.

Customers in three countries and two provinces, with orders carrying Shopify's shipping coordinates, go
through the ingest path into moto; a "local" segment (`within_km`), province and postal-prefix segments and
an "overdue" segment (`expected_next_order_at older_than 14d`) are evaluated by the deployed code. The
overdue instants pass during the test, and each flip arrives through the exact-instant transition path.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from evergreen.clock import FixedClock
from evergreen.service.sweep import SweepRequest
from evergreen.service.transitions import DueTransition, TransitionOutcome
from evergreen.settings import Settings
from evergreen.wiring import Edges

from .conftest import START, World, edges_with_segments

SHOP_AT = (45.4215, -75.6972)
"""The shop, in Ottawa."""

SEGMENTS = f"""\
segments:
  local:
    description: Ships within 25 km of the shop.
    when: {{coordinates: {{within_km: {{latitude: {SHOP_AT[0]}, longitude: {SHOP_AT[1]}, km: 25}}}}}}
  ontario:
    description: Lives in Ontario, Canada.
    when:
      all:
        - country_code: {{eq: CA}}
        - province_code: {{in: ["ON"]}}  # quoted: YAML reads a bare ON as true
  north_america:
    description: Canada or the United States.
    when: {{country_code: {{in: [CA, US]}}}}
  ottawa_postcodes:
    description: Postal codes of central Ottawa.
    when: {{postal_code: {{starts_with: [K1, "k2 p"]}}}}
  overdue:
    description: Expected to have ordered again 14 days ago or more.
    when: {{expected_next_order_at: {{older_than: 14d}}}}
  local_overdue:
    description: Local and overdue.
    when:
      all:
        - coordinates: {{within_km: {{latitude: {SHOP_AT[0]}, longitude: {SHOP_AT[1]}, km: 25}}}}
        - expected_next_order_at: {{older_than: 14d}}
"""


@pytest.fixture
def edges(settings: Settings, clock: FixedClock, tmp_path: Path) -> Edges:
    url = boto3.client("sqs").create_queue(QueueName="transitions")["QueueUrl"]
    return edges_with_segments(settings, clock, tmp_path, SEGMENTS, transitions_queue_url=url)


def address(country: str, province: str, city: str, postal: str, at: tuple[float, float] | None) -> dict[str, Any]:
    latitude, longitude = at if at else (None, None)
    return {
        "country_code": country,
        "province_code": province,
        "city": city,
        "zip": postal,
        "latitude": None if latitude is None else str(latitude),  # older payloads send strings, newer numbers
        "longitude": longitude,
    }


OTTAWA = address("CA", "ON", "Ottawa", "K1P 1J1", (45.4236, -75.7009))
GATINEAU = address("CA", "QC", "Gatineau", "J8X 3X7", (45.4765, -75.7013))
MONTREAL = address("CA", "QC", "Montréal", "H2X 1Y4", (45.5088, -73.5617))
TORONTO = address("CA", "ON", "Toronto", "M5V 2T6", (43.6426, -79.3871))
NEW_YORK = address("US", "NY", "New York", "10001", (40.7506, -73.9972))
LONDON = address("GB", "ENG", "London", "SW1A 1AA", None)


def join(world: World, number: int, home: dict[str, Any]) -> None:
    body = {
        "id": number,
        "email": f"c{number}@example.com",
        "created_at": (START - timedelta(days=400)).isoformat(),
        "updated_at": (START - timedelta(days=400)).isoformat(),
        "state": "enabled",
        "default_address": home,
    }
    assert world.shopify("customers/create", body).status == 200


def order(world: World, number: int, sequence: int, days_ago: int, shipped_to: dict[str, Any] | None) -> None:
    at = (START - timedelta(days=days_ago)).isoformat()
    body = {
        "id": number * 100 + sequence,
        "email": f"c{number}@example.com",
        "customer": {"id": number, "email": f"c{number}@example.com"},
        "created_at": at,
        "updated_at": at,
        "currency": "CAD",
        "financial_status": "paid",
        "total_price": "40.00",
        "test": False,
        "cancelled_at": None,
        "line_items": [{"product_id": 7001, "vendor": "Maple Co", "title": "Syrup"}],
        "discount_codes": [{"code": "WELCOME10", "amount": "4.00", "type": "percentage"}] if sequence == 1 else [],
        "shipping_address": shipped_to,
        "refunds": [],
    }
    assert world.shopify("orders/create", body).status == 200


def membership(world: World, number: int) -> set[str]:
    profile = world.profile(number)
    assert profile is not None
    return set(profile.membership)


def delivered(edges: Edges) -> Iterator[DueTransition]:
    """The delayed transition messages as the consumer receives them once their delay is over."""
    name = edges.settings.transitions_queue_url.rsplit("/", 1)[1]
    for message in sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues[name]._messages:
        message.delayed_until = 0
    url = edges.settings.transitions_queue_url
    while messages := edges.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            yield DueTransition.model_validate_json(message["Body"])
            edges.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def pass_instant(
    edges: Edges, clock: FixedClock, world: World, instant: datetime
) -> list[tuple[str, list[str], datetime]]:
    """Let time reach `instant` the way production does: a sweep a minute before hands the profile due then to
    the delayed queue, and the transition consumer applies it at its instant. Returns the changes time made at
    `instant` (the sweep also re-sends, from its outbox, earlier changes no sync has confirmed: none runs here)."""
    clock.set(instant - timedelta(minutes=1))
    edges.sweep.run(SweepRequest())
    clock.set(instant)
    results = [edges.transitions.apply(due) for due in delivered(edges)]
    assert results and all(result.outcome is TransitionOutcome.APPLIED for result in results)
    return [
        (change["profile_key"], sorted(change["entered"]), datetime.fromisoformat(change["transition_at"]))
        for change in world.queued()
        if change["transition_at"] is not None and datetime.fromisoformat(change["transition_at"]) == instant
    ]


def test_every_profile_lands_in_exactly_its_location_and_overdue_segments_and_flips_at_its_instant(
    edges: Edges, clock: FixedClock, world: World
) -> None:

    # 1: Ottawa, orders every 30 days, last 40 days ago -> expected 10 days ago -> overdue in 4 days.
    join(world, 1, OTTAWA)
    for sequence, days_ago in enumerate((100, 70, 40), start=1):
        order(world, 1, sequence, days_ago, OTTAWA)
    # 2: Gatineau (Quebec, across the river: local), one order -> no prediction.
    join(world, 2, GATINEAU)
    order(world, 2, 1, 5, GATINEAU)
    # 3: Montreal, orders every 20 days, last 20 days ago -> expected now -> overdue in 14 days.
    join(world, 3, MONTREAL)
    for sequence, days_ago in enumerate((60, 40, 20), start=1):
        order(world, 3, sequence, days_ago, MONTREAL)
    # 4: New York, orders 10 days apart, last 30 days ago -> expected 20 days ago -> overdue already.
    join(world, 4, NEW_YORK)
    for sequence, days_ago in enumerate((50, 40, 30), start=1):
        order(world, 4, sequence, days_ago, NEW_YORK)
    # 5: London, no coordinates anywhere: a country, no distance.
    join(world, 5, LONDON)
    order(world, 5, 1, 3, None)
    # 6: lives in Ottawa, but the latest order shipped to Toronto: the latest shipping address wins.
    join(world, 6, OTTAWA)
    order(world, 6, 1, 30, OTTAWA)
    order(world, 6, 2, 2, TORONTO)
    world.queued()

    assert {number: membership(world, number) for number in range(1, 7)} == {
        1: {"local", "ontario", "north_america", "ottawa_postcodes"},
        2: {"local", "north_america"},
        3: {"north_america"},
        4: {"north_america", "overdue"},
        5: set(),
        6: {"ontario", "north_america"},
    }
    facts = world.facts(1)
    assert (facts["country_code"], facts["province_code"], facts["city"], facts["postal_code"]) == (
        "CA",
        "ON",
        "Ottawa",
        "K1P1J1",
    )
    assert facts["expected_next_order_at"] == START - timedelta(days=10)
    assert world.facts(5)["country_code"] == "GB" and world.facts(5)["coordinates"] is None
    assert world.facts(6)["city"] == "Toronto"
    assert world.facts(2)["expected_next_order_at"] is None

    ottawa_due = START + timedelta(days=4)
    assert world.profile(1).next_transition_at == ottawa_due
    changes = pass_instant(edges, clock, world, ottawa_due)
    assert changes == [("customer#1", ["local_overdue", "overdue"], ottawa_due)]
    assert world.profile(1).membership["overdue"] == ottawa_due

    montreal_due = START + timedelta(days=14)
    changes = pass_instant(edges, clock, world, montreal_due)
    assert changes == [("customer#3", ["overdue"], montreal_due)]
    assert {number: membership(world, number) for number in range(1, 7)} == {
        1: {"local", "ontario", "north_america", "ottawa_postcodes", "overdue", "local_overdue"},
        2: {"local", "north_america"},
        3: {"north_america", "overdue"},
        4: {"north_america", "overdue"},
        5: set(),
        6: {"ontario", "north_america"},
    }


def test_a_new_order_ends_overdue_at_once(edges: Edges, clock: FixedClock, world: World) -> None:

    join(world, 4, NEW_YORK)
    for sequence, days_ago in enumerate((50, 40, 30), start=1):
        order(world, 4, sequence, days_ago, NEW_YORK)
    assert "overdue" in membership(world, 4)
    world.queued()

    order(world, 4, 4, 0, NEW_YORK)

    assert "overdue" not in membership(world, 4)
    assert [change["exited"] for change in world.queued()] == [["overdue"]]


def test_purchase_facts_keep_vendors_product_ids_and_discount_codes(world: World) -> None:
    join(world, 1, OTTAWA)
    order(world, 1, 1, 10, OTTAWA)

    facts = world.facts(1)

    assert facts["vendors_bought"] == {"Maple Co"}
    assert facts["product_ids_bought"] == {"7001"}
    assert facts["discount_codes_used"] == {"WELCOME10"}
