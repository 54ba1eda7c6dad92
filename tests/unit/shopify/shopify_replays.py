"""Replaying real Shopify bodies under other topics and shops: the bodies, and the test's own oracle of which
writes a body's shape justifies (from Shopify's topic names alone, not from Evergreen's rules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evergreen.shopify.topics import SUPPORTED_TOPICS, canonical_topic
from tests.unit.shopify.shopify_samples_2025_10 import CURRENT_SAMPLES

SHARED = Path(__file__).resolve().parents[4] / "shared" / "shopify" / "webhooks"
TOPICS = sorted({canonical_topic(topic) for topic in SUPPORTED_TOPICS})
COMPLIANCE_CUSTOMER = 191167


def family(topic: str) -> str:
    """What a topic name promises about its body."""
    exact = {"customers/delete", "customers/redact", "customers/data_request", "shop/redact"}
    if topic in exact:
        return topic
    if topic in ("customers/create", "customers/update", "customers/enable", "customers/disable"):
        return "customer record"
    return topic.split("/", maxsplit=1)[0].split(".", maxsplit=1)[0]


def compliance(shop: str, **extra: Any) -> dict[str, Any]:
    return {"shop_id": 954889, "shop_domain": shop, **extra}


def customers_redact(shop: str) -> dict[str, Any]:
    customer = {"id": COMPLIANCE_CUSTOMER, "email": "john@example.com", "phone": "555-625-1199"}
    return compliance(shop, customer=customer, orders_to_redact=[])


def data_request(shop: str) -> dict[str, Any]:
    customer = {"id": COMPLIANCE_CUSTOMER, "email": "john@example.com"}
    return compliance(shop, customer=customer, orders_requested=[], data_request={"id": 9999})


def real_bodies(*shops: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic it was sent under, body): the 2025-10 shapes, Shopify's published samples in ../shared (when
    present), and compliance requests naming each of `shops`."""
    bodies = [(canonical_topic(topic), builder()) for topic, builder in CURRENT_SAMPLES.items()]
    if SHARED.is_dir():
        for path in sorted(SHARED.glob("*.json")):
            bodies.append((path.stem.replace("__", "/"), json.loads(path.read_bytes())))
    for shop in shops:
        bodies += [("customers/redact", customers_redact(shop)), ("shop/redact", compliance(shop))]
        bodies.append(("customers/data_request", data_request(shop)))
    return bodies


def justified(source: str, body: dict[str, Any], topic: str, shop: str) -> bool:
    """Whether the body's own shape justifies a write under `topic` for `shop`."""
    if family(source) != family(topic):
        return False
    if topic == "orders/cancelled" and not body.get("cancelled_at"):
        return False
    named = body.get("shop_domain")
    return named is None or named == shop
