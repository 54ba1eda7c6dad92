# ruff: noqa: E501
"""Hostile senders: a signed body cannot be replayed as another topic or shop, poison gets 4xx once, and a
shop's own secret is the only one that verifies it. Through the real adapters on in-process moto.

The case lists (REPLAYS, POISON, TENANTS) are what docs/architecture.md's threat model and the issue's
table count: every case must answer as listed and write nothing it should not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evergreen.service.shopify_webhooks import ShopifyDelivery, WebhookAnswer
from evergreen.shopify.hmac import sign_shopify_body
from evergreen.storage import keys
from tests.unit.shopify.shopify_replays import (
    COMPLIANCE_CUSTOMER,
    TOPICS,
    compliance,
    customers_redact,
    data_request,
    justified,
    real_bodies,
)
from tests.unit.shopify.shopify_samples_2025_10 import (
    CURRENT_SAMPLES,
    CUSTOMER_ID,
    ORDER_ID,
    customer_create,
    order,
    refund,
)

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
SHOP_C = "shop-c.myshopify.com"
APP_SECRET = "app-wide-client-secret"
SECRET_A = "shop-a-own-secret"
SECRET_B = "shop-b-own-secret"
SECRET_B_PREVIOUS = "shop-b-previous-secret"


class Hostile:
    """The Shopify use case with a chosen secrets document, and helpers to read what was written."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.edges = world.edges

    def secrets(self, document: dict[str, Any]) -> None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.edges.settings.shopify_secrets_id, SecretString=json.dumps(document)
        )

    def send(
        self,
        topic: str,
        body: dict[str, Any] | bytes,
        shop: str = SHOP_A,
        secret: str = APP_SECRET,
        event_id: str | None = None,
    ) -> WebhookAnswer:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.world.webhooks.receive(
            ShopifyDelivery(
                shop=shop,
                topic=topic,
                hmac=sign_shopify_body(raw, secret),
                body=raw,
                event_id=event_id or str(uuid.uuid4()),
                webhook_id=str(uuid.uuid4()),
            )
        )

    def snapshot(self) -> dict[str, Any]:
        """Every table item and every export object: what a delivery could have written."""
        items = {keys.ref_of(i): json.dumps(i, sort_keys=True, default=bytes.hex) for i in self.world.items()}
        bucket = self.edges.settings.exports_bucket
        exports = [o["Key"] for o in self.edges.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return {"items": items, "exports": sorted(exports)}

    def seed(self, shop: str, secret: str = APP_SECRET) -> None:
        """A customer with an order, and the customer the compliance samples name, in `shop`."""
        seeds: list[tuple[str, dict[str, Any]]] = [
            ("customers/create", customer_create()),
            ("orders/create", order()),
            (
                "customers/create",
                customer_with(id=COMPLIANCE_CUSTOMER, email="john@example.com"),
            ),
        ]
        for number, (topic, body) in enumerate(seeds):
            answer = self.send(topic, body, shop=shop, secret=secret, event_id=f"seed-{shop}-{number}")
            assert answer.status == 200, answer.body


@pytest.fixture
def hostile(world: Any) -> Hostile:
    """Two shops sharing the app-wide secret (Shopify's default), each with a customer and an order."""
    hostile = Hostile(world)
    hostile.secrets({"*": APP_SECRET})
    hostile.seed(SHOP_A)
    hostile.seed(SHOP_B)
    return hostile


def key_of(item_key: tuple[str, str]) -> str:
    return item_key[1]


# --- authentication and replay ----------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    name: str
    topic: str
    body: Callable[[], dict[str, Any]]
    shop: str = SHOP_A
    status: int = 400


REPLAYS = [
    Replay("a captured orders/create re-sent as orders/cancelled", "orders/cancelled", order),
    Replay("a captured orders/create re-sent as shop/redact for another shop", "shop/redact", order, SHOP_B),
    Replay("a captured orders/create re-sent as customers/redact", "customers/redact", order),
    Replay("a captured orders/create re-sent as customers/delete", "customers/delete", order),
    Replay("a captured orders/create re-sent as customers/update", "customers/update", order),
    Replay("a captured orders/create re-sent as checkouts/create", "checkouts/create", order),
    Replay("a captured orders/create re-sent as refunds/create", "refunds/create", order),
    Replay("a captured refunds/create re-sent as orders/create", "orders/create", refund),
    Replay("a captured customers/create re-sent as customers/delete", "customers/delete", customer_create),
    Replay("a captured customers/create re-sent as orders/create", "orders/create", customer_create),
    Replay("shop X's signed shop/redact sent with shop Y's header", "shop/redact", lambda: compliance(SHOP_A), SHOP_B),
    Replay("shop X's customers/redact sent with shop Y's header", "customers/redact", lambda: customers_redact(SHOP_A), SHOP_B),
    Replay("a customers/redact body re-sent as shop/redact of its own shop", "shop/redact", lambda: customers_redact(SHOP_A)),
    Replay("a data request re-sent as customers/redact", "customers/redact", lambda: data_request(SHOP_A)),
    Replay("a shop/redact without shop_id", "shop/redact", lambda: {"shop_domain": SHOP_A}),
    Replay("a customers/redact naming no customer", "customers/redact", lambda: compliance(SHOP_A, customer={}, orders_to_redact=[])),
]  # fmt: skip


@pytest.mark.parametrize("case", REPLAYS, ids=lambda case: case.name)
def test_a_signed_body_replayed_under_another_topic_or_shop_is_refused_and_writes_nothing(hostile, case):
    before = hostile.snapshot()

    answer = hostile.send(case.topic, case.body(), shop=case.shop)

    assert answer.status == case.status, answer.body
    assert "reason" in answer.body
    assert hostile.snapshot() == before


def test_after_a_replayed_cancellation_the_order_still_counts(hostile):
    hostile.send("orders/cancelled", order())

    assert hostile.edges.store.load(SHOP_A, f"customer#{CUSTOMER_ID}").facts()["orders_count"] == 1


def test_genuine_destructive_deliveries_still_apply_and_are_marked_for_the_audit_metric(hostile):
    cancelled = hostile.send(
        "orders/cancelled", order(cancelled_at="2026-10-31T10:00:00Z", updated_at="2026-10-31T10:00:00Z")
    )
    deleted = hostile.send("customers/delete", CURRENT_SAMPLES["customers/delete"]())
    redacted = hostile.send("customers/redact", customers_redact(SHOP_A))
    shop_gone = hostile.send("shop/redact", compliance(SHOP_B), shop=SHOP_B)

    assert [a.status for a in (cancelled, deleted, redacted, shop_gone)] == [200, 200, 200, 200]
    assert [a.notes.get("destructive") for a in (deleted, redacted, shop_gone)] == [True, True, True]
    assert hostile.edges.store.load(SHOP_A, f"customer#{CUSTOMER_ID}").deleted
    assert hostile.edges.store.load(SHOP_A, f"customer#{COMPLIANCE_CUSTOMER}") is None
    assert [key for key in hostile.snapshot()["items"] if key[0] == SHOP_B] == [(SHOP_B, "erased#shop")], (
        "only the shop's tombstone is left"
    )
    assert [key for key in hostile.snapshot()["items"] if key[0] == SHOP_A], "shop A is untouched by B's redact"


def test_an_upper_case_topic_is_the_same_topic(hostile):
    answer = hostile.send("ORDERS/CREATE", order(order_id=ORDER_ID + 1), shop=SHOP_A)

    assert answer.status == 200
    assert answer.topic == "orders/create"
    assert hostile.edges.store.load(SHOP_A, f"customer#{CUSTOMER_ID}").facts()["orders_count"] == 2


def test_a_bad_or_missing_signature_is_401_and_writes_nothing(hostile):
    before = hostile.snapshot()
    raw = json.dumps(order(order_id=5)).encode()
    unsigned = ShopifyDelivery(shop=SHOP_A, topic="orders/create", hmac=None, body=raw)
    forged = ShopifyDelivery(shop=SHOP_A, topic="orders/create", hmac=sign_shopify_body(raw, "guess"), body=raw)

    assert [hostile.world.webhooks.receive(d).status for d in (unsigned, forged)] == [401, 401]
    assert hostile.snapshot() == before


# --- secret rotation ------------------------------------------------------------------------------


def test_during_a_rotation_the_current_and_the_previous_secret_both_verify(hostile):
    hostile.secrets({SHOP_B: [SECRET_B, SECRET_B_PREVIOUS]})

    with_current = hostile.send("orders/create", order(order_id=11), shop=SHOP_B, secret=SECRET_B)
    with_previous = hostile.send("orders/create", order(order_id=12), shop=SHOP_B, secret=SECRET_B_PREVIOUS)
    with_neither = hostile.send("orders/create", order(order_id=13), shop=SHOP_B, secret="retired-long-ago")

    assert [with_current.status, with_previous.status, with_neither.status] == [200, 200, 401]
    assert hostile.edges.store.load(SHOP_B, f"customer#{CUSTOMER_ID}").facts()["orders_count"] == 3


def test_after_the_rotation_the_previous_secret_no_longer_verifies(hostile):
    hostile.secrets({SHOP_B: [SECRET_B, SECRET_B_PREVIOUS]})
    assert hostile.send("orders/create", order(order_id=21), shop=SHOP_B, secret=SECRET_B_PREVIOUS).status == 200

    hostile.secrets({SHOP_B: SECRET_B})

    assert hostile.send("orders/create", order(order_id=22), shop=SHOP_B, secret=SECRET_B_PREVIOUS).status == 401
    assert hostile.send("orders/create", order(order_id=23), shop=SHOP_B, secret=SECRET_B).status == 200


# --- tenant isolation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    name: str
    shop: str
    secret: str
    status: int


TENANTS = [
    Tenant("the wildcard secret does not verify a shop with its own secret (* -> B)", SHOP_B, APP_SECRET, 401),
    Tenant("shop A's secret does not verify shop B (A -> B)", SHOP_B, SECRET_A, 401),
    Tenant("shop B's secret does not verify shop A (B -> A)", SHOP_A, SECRET_B, 401),
    Tenant("shop A's secret does not verify a shop without its own entry (A -> C)", SHOP_C, SECRET_A, 401),
    Tenant("B's previous secret does not verify shop A", SHOP_A, SECRET_B_PREVIOUS, 401),
    Tenant("the wildcard verifies a shop without its own entry (* -> C)", SHOP_C, APP_SECRET, 200),
    Tenant("a shop's own secret verifies it (A -> A)", SHOP_A, SECRET_A, 200),
    Tenant("a shop's previous secret verifies it (B' -> B)", SHOP_B, SECRET_B_PREVIOUS, 200),
]


@pytest.mark.parametrize("case", TENANTS, ids=lambda case: case.name)
def test_only_a_shops_own_secret_verifies_it_and_the_wildcard_only_covers_shops_without_one(hostile, case):
    hostile.secrets({"*": APP_SECRET, SHOP_A: SECRET_A, SHOP_B: [SECRET_B, SECRET_B_PREVIOUS]})
    before = hostile.snapshot()

    answer = hostile.send("orders/create", order(order_id=31), shop=case.shop, secret=case.secret)

    assert answer.status == case.status
    if case.status == 401:
        assert hostile.snapshot() == before
    else:
        written = set(hostile.snapshot()["items"]) - set(before["items"])
        assert written and {shop for shop, _ in written} <= {case.shop}, "writes land in the shop that verified"


# --- malformed and oversized ----------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"id": 1, "note": ' + b"[" * depth + b"]" * depth + b"}"


def customer_with(**fields: Any) -> dict[str, Any]:
    body = {**customer_create(), **fields}
    return body | {"admin_graphql_api_id": f"gid://shopify/Customer/{body['id']}"}


@dataclass(frozen=True)
class Poison:
    name: str
    topic: str
    body: Callable[[], dict[str, Any] | bytes]
    statuses: tuple[int, ...] = (400, 413)


POISON = [
    Poison("a body nested 100,000 deep", "orders/create", lambda: nested(100_000)),
    Poison("a body nested 100,000 deep (compliance topic)", "customers/redact", lambda: nested(100_000)),
    Poison("an email of 2,003 characters", "customers/create", lambda: customer_with(email="a" * 1991 + "@example.com")),
    Poison("an order email of 2,003 characters", "orders/create", lambda: order(email="a" * 1991 + "@example.com")),
    Poison("a customer id of 2,000 digits", "customers/create", lambda: customer_with(id="9" * 2000)),
    Poison("an order naming a customer id of 2,000 digits", "orders/create", lambda: order(customer_id=int("9" * 2000))),
    Poison("20 order tags of 45,000 characters", "orders/create", lambda: {**order(), "tags": ", ".join(chr(97 + n) * 45_000 for n in range(20))}),
    Poison("a first name of 300,000 characters", "customers/update", lambda: customer_with(first_name="N" * 300_000)),
    Poison("an order total below zero", "orders/create", lambda: order(total="-10.00")),
    Poison("an order with 300 embedded refunds", "orders/create", lambda: order(refunds=[refund(refund_id=n) for n in range(1, 301)])),
    Poison("a customer with 300 tags", "customers/update", lambda: customer_with(tags=", ".join(f"t{n}" for n in range(300)))),
    Poison("a checkout token of 1,000 characters", "checkouts/create", lambda: {**CURRENT_SAMPLES["checkouts/create"](), "token": "t" * 1000}),
    Poison("a redaction listing 20,000 orders", "customers/redact", lambda: {**customers_redact(SHOP_A), "orders_to_redact": list(range(1, 20_001))}),
    Poison("a tag event with a tag of 300 characters", "customer.tags_added", lambda: CURRENT_SAMPLES["customer.tags_added"](tags=["x" * 300])),
    Poison("a body over the size limit", "orders/create", lambda: {**order(), "note": "x" * 1_100_000}, (413,)),
]  # fmt: skip


@pytest.mark.parametrize("case", POISON, ids=lambda case: case.name)
def test_poison_gets_a_4xx_with_a_reason_once_and_writes_nothing(hostile, case):
    before = hostile.snapshot()

    answer = hostile.send(case.topic, case.body())

    assert answer.status in case.statuses, answer.body
    assert answer.body.get("reason") or answer.body.get("limit_bytes")
    assert hostile.snapshot() == before


def test_after_a_poison_name_the_customers_next_order_still_answers_200(hostile):
    hostile.send("customers/update", customer_with(first_name="N" * 300_000))

    assert hostile.send("orders/create", order(order_id=41)).status == 200


@pytest.mark.parametrize(
    ("header", "delivery"),
    [
        ("event id", {"event_id": "e" * 5000}),
        ("webhook id", {"webhook_id": "w" * 5000, "event_id": None}),
        ("shop domain", {"shop": "x" * 3000}),
        ("shop domain", {"shop": "evil.example.com"}),
    ],
)
def test_oversized_or_foreign_headers_get_400_and_write_nothing(hostile, header, delivery):
    before = hostile.snapshot()
    raw = json.dumps(order(order_id=51)).encode()
    fields = {"shop": SHOP_A, "topic": "orders/create", "event_id": "ok", "webhook_id": "ok"} | delivery

    answer = hostile.world.webhooks.receive(
        ShopifyDelivery(hmac=sign_shopify_body(raw, APP_SECRET), body=raw, **fields)
    )

    assert answer.status == 400
    assert header in answer.body["reason"]
    assert hostile.snapshot() == before


# --- every real body under every other topic and shop ---------------------------------------------


BODIES = real_bodies(SHOP_A, SHOP_B)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, len(BODIES) - 1), topic=st.sampled_from(TOPICS), shop=st.sampled_from([SHOP_A, SHOP_B]))
def test_a_real_body_re_signed_under_any_topic_and_shop_writes_only_what_its_shape_justifies(
    hostile, pick, topic, shop
):
    source, body = BODIES[pick]
    hostile.seed(SHOP_A)
    hostile.seed(SHOP_B)
    before = hostile.snapshot()

    answer = hostile.send(topic, body, shop=shop)

    assert answer.status in (200, 400), answer.body
    if not justified(source, body, topic, shop):
        assert hostile.snapshot() == before, f"{source} body under {topic} for {shop} wrote: {answer.body}"
