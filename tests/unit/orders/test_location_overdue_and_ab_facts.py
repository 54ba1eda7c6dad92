"""Location, the predicted next order and the A/B bucket, as the pure domain derives them from orders."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evergreen.domain.events import OrderObserved
from evergreen.domain.facts import ab_bucket
from evergreen.domain.location import Address, great_circle_km
from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.shopify.topics import translate

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SHOP = "evergreen-test.myshopify.com"
HOME = Address(country_code="CA", province_code="ON", city="Ottawa", postal_code="K1P1J1")
TORONTO = Address(country_code="CA", province_code="ON", city="Toronto", latitude=43.6426, longitude=-79.3871)
MONTREAL = Address(country_code="CA", province_code="QC", city="Montréal", latitude=45.5088, longitude=-73.5617)


def placed(order_id: str, days: float, to: Address | None = None, cancelled: bool = False) -> OrderRecord:
    return OrderRecord(
        order_id=order_id,
        created_at=T0 + timedelta(days=days),
        total=Decimal("10.00"),
        shipping_address=to,
        cancelled=cancelled,
    )


def facts(*orders: OrderRecord, home: Address | None = HOME) -> dict[str, Any]:
    profile = Profile(shop=SHOP, customer_id="1", default_address=home)
    return with_orders(profile, orders).facts()


def test_the_newest_counted_order_with_a_shipping_address_decides_the_location() -> None:
    located = facts(placed("1", 0, TORONTO), placed("2", 10, MONTREAL), placed("3", 20, None))
    assert (located["city"], located["province_code"], located["coordinates"]) == (
        "Montréal",
        "QC",
        (45.5088, -73.5617),
    )


def test_a_cancelled_order_no_longer_decides_the_location() -> None:
    located = facts(placed("1", 0, TORONTO), placed("2", 10, MONTREAL, cancelled=True))
    assert located["city"] == "Toronto"


def test_without_a_shipped_order_the_default_address_decides_and_has_no_coordinates() -> None:
    located = facts(placed("1", 0, None))
    assert (located["country_code"], located["city"], located["postal_code"], located["coordinates"]) == (
        "CA",
        "Ottawa",
        "K1P1J1",
        None,
    )
    assert facts(home=None)["country_code"] is None


def test_expected_next_order_is_the_last_order_plus_the_median_gap_after_three_orders() -> None:
    assert facts(placed("1", 0), placed("2", 10))["expected_next_order_at"] is None
    assert facts(placed("1", 0), placed("2", 10), placed("3", 40))["expected_next_order_at"] == T0 + timedelta(
        days=40 + 20
    )
    four = facts(placed("1", 0), placed("2", 10), placed("3", 40), placed("4", 41))
    assert four["expected_next_order_at"] == T0 + timedelta(days=41 + 10), "median of 1, 10 and 30 days"
    cancelled = facts(placed("1", 0), placed("2", 10), placed("3", 40), placed("4", 41, cancelled=True))
    assert cancelled["expected_next_order_at"] == T0 + timedelta(days=60), "a cancelled order is no gap"


def test_the_ab_bucket_is_stable_uniform_and_differs_between_shops() -> None:
    keys = [f"customer#{n}" for n in range(10_000)]
    buckets = [ab_bucket(SHOP, key) for key in keys]
    assert buckets == [ab_bucket(SHOP, key) for key in keys]
    assert set(buckets) == set(range(100))
    deciles = Counter(bucket // 10 for bucket in buckets)
    assert all(850 <= count <= 1150 for count in deciles.values()), deciles
    other = [ab_bucket("another-shop.myshopify.com", key) for key in keys]
    assert sum(a == b for a, b in zip(buckets, other, strict=True)) < 200
    assert Profile(shop=SHOP, customer_id="7").facts()["ab_bucket"] == ab_bucket(SHOP, "customer#7")


def test_great_circle_distances_match_known_city_pairs() -> None:
    assert great_circle_km((45.4215, -75.6972), (45.4215, -75.6972)) == 0
    assert 165 < great_circle_km((45.4215, -75.6972), (45.5019, -73.5674)) < 168  # Ottawa - Montreal
    assert 5_560 < great_circle_km((40.7128, -74.0060), (51.5072, -0.1276)) < 5_580  # New York - London


SHARED_ORDER = Path(__file__).parents[3] / ".." / "shared" / "shopify" / "webhooks" / "orders__create.json"


def test_a_real_order_payload_gives_its_shipping_address_with_coordinates_and_discount_codes() -> None:
    if not SHARED_ORDER.exists():
        pytest.skip("../shared/shopify/webhooks/orders__create.json is absent (a clone without ../shared)")
    event = translate("orders/create", SHARED_ORDER.read_bytes(), T0)
    assert isinstance(event, OrderObserved)
    assert event.shipping_address == Address(
        country_code="CA",
        province_code="ON",
        city="Ottawa",
        postal_code="K2P0V6",
        latitude=45.41634,
        longitude=-75.6868,
    )
    assert event.discount_codes == ("SPRING30",)


def test_coordinates_shopify_could_not_give_are_unknown_not_a_reason_to_refuse_the_order() -> None:
    body = {
        "id": 1,
        "created_at": T0.isoformat(),
        "total_price": "10.00",
        "shipping_address": {"country_code": "ca", "zip": " k1p 1j1 ", "latitude": "north", "longitude": 500},
    }
    event = translate("orders/create", body, T0)
    assert isinstance(event, OrderObserved)
    assert event.shipping_address == Address(country_code="CA", postal_code="K1P1J1")
