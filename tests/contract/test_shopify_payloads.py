"""Every real Shopify webhook body in ../shared parses, translates and applies (or is knowingly skipped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from evergreen.domain.events import (
    CustomerRedactRequested,
    CustomerUpserted,
    DataRequested,
    OrderObserved,
    RefundObserved,
    ShopRedactRequested,
)
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, apply_order
from evergreen.shopify.topics import SUPPORTED_TOPICS, UnknownTopic, translate

pytestmark = pytest.mark.contract

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEBHOOKS = SHARED / "shopify" / "webhooks"
RECEIVED = datetime(2025, 10, 1, tzinfo=UTC)

NOT_HANDLED = {"carts/update": "a cart carries no customer id or email, so it cannot reach a profile"}
"""Sample topics Evergreen deliberately does not translate, with the reason."""


def sample_files() -> list[Path]:
    return sorted(WEBHOOKS.glob("*.json")) if WEBHOOKS.is_dir() else []


def topic_of(path: Path) -> str:
    return path.stem.replace("__", "/")


@pytest.fixture(autouse=True)
def _shared_is_present() -> None:
    if not WEBHOOKS.is_dir():
        pytest.skip(f"../shared is absent (user clone): no Shopify webhook samples at {WEBHOOKS}")


def test_the_shared_samples_are_all_accounted_for() -> None:
    topics = {topic_of(path) for path in sample_files()}

    assert topics, "no samples found"
    assert topics <= SUPPORTED_TOPICS | set(NOT_HANDLED)


@pytest.mark.parametrize("path", sample_files() or [WEBHOOKS / "absent.json"], ids=lambda path: path.name)
def test_a_real_payload_translates_and_applies_from_its_raw_bytes(path: Path) -> None:
    topic = topic_of(path)
    if topic in NOT_HANDLED:
        with pytest.raises(UnknownTopic):
            translate(topic, path.read_bytes(), RECEIVED)
        return

    event = translate(topic, path.read_bytes(), RECEIVED)
    profile = Profile(shop="shop.myshopify.com", customer_id=event.customer_id)

    if isinstance(event, OrderObserved | RefundObserved):
        once, state = apply_order(profile, None, event)
        assert apply_order(once, state, event) == (once, state)
    else:
        once = apply(profile, event)
        assert apply(once, event) == once
    assert translate(topic, json.loads(path.read_bytes()), RECEIVED) == event


def read(name: str) -> bytes:
    return (WEBHOOKS / name).read_bytes()


def test_the_legacy_customer_sample_keeps_its_64_bit_id_and_legacy_consent() -> None:
    event = translate("customers/create", read("customers__create.json"), RECEIVED)

    assert isinstance(event, CustomerUpserted)
    assert event.customer_id == "706405506930370084"
    assert event.email_normalized == "bob@biller.com"
    assert event.updated_at == datetime(2012, 8, 24, 18, 1, 46, tzinfo=UTC)
    assert event.email_consent is not None and event.email_consent.state == "subscribed"
    assert event.tags == ()


def test_the_legacy_order_sample_is_a_test_order_in_shop_money_with_its_refund() -> None:
    event = translate("orders/create", read("orders__create.json"), RECEIVED)

    assert isinstance(event, OrderObserved)
    assert (event.order_id, event.customer_id) == ("450789469", "207119551")
    assert (event.total, event.currency) == (Decimal("164.86"), "CAD")
    assert event.test and not event.cancelled
    assert event.tags == ("imported",)
    assert [(r.refund_id, r.amount) for r in event.refunds] == [("18423447608", Decimal(0))]

    profile, _ = apply_order(Profile(shop="shop.myshopify.com", customer_id="207119551"), OrderState(), event)
    facts = profile.facts()
    assert (facts["orders_count"], facts["net_spent"]) == (0, Decimal(0))


def test_the_compliance_samples_name_customer_orders_and_shop() -> None:
    data = translate("customers/data_request", read("customers__data_request.json"), RECEIVED)
    redact = translate("customers/redact", read("customers__redact.json"), RECEIVED)
    shop = translate("shop/redact", read("shop__redact.json"), RECEIVED)

    assert isinstance(data, DataRequested) and data.orders_requested == ("299938", "280263", "220458")
    assert isinstance(redact, CustomerRedactRequested) and redact.customer_id == "191167"
    assert isinstance(shop, ShopRedactRequested) and shop.shop_id == "954889"
