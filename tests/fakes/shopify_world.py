"""ShopifyWebhooks wired to the in-memory store: the real service code, no AWS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from evergreen.clock import FixedClock
from evergreen.domain.profile import Profile
from evergreen.segments import default_definitions
from evergreen.service.profile_writer import ProfileWriter
from evergreen.service.shopify_webhooks import ShopifyDelivery, ShopifyWebhooks, WebhookAnswer
from evergreen.shopify.hmac import sign_shopify_body
from tests.fakes.profile_store import DictExporter, InMemoryProfileStore, ListPublisher

SHOP = "bounded.myshopify.com"
SECRET = "fake-store-shopify-secret"
CUSTOMER = 7_063_055_069_303_700_841
EMAIL = "wholesale@example.com"
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def order_body(
    order_id: int,
    total: str,
    created: datetime,
    updated: datetime | None = None,
    cancelled: datetime | None = None,
    customer_id: int | None = CUSTOMER,
    email: str | None = EMAIL,
    product_type: str = "Outerwear",
    tags: str = "",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": order_id,
        "email": email,
        "created_at": stamp(created),
        "updated_at": stamp(updated or created),
        "currency": "USD",
        "financial_status": "voided" if cancelled else "paid",
        "total_price": total,
        "total_price_set": {"shop_money": {"amount": total, "currency_code": "USD"}},
        "test": False,
        "cancelled_at": stamp(cancelled) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "tags": tags,
        "line_items": [{"id": order_id * 10, "product_type": product_type, "price": total, "quantity": 1}],
        "refunds": [],
    }
    if customer_id is not None:
        body["customer"] = {"id": customer_id, "email": email, "first_name": "Wholesale", "last_name": "Buyer"}
    return body


def refund_body(refund_id: int, order_id: int, amount: str, created: datetime) -> dict[str, Any]:
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": stamp(created),
        "refund_line_items": [],
        "transactions": [
            {"id": refund_id * 3, "kind": "refund", "status": "success", "amount": amount, "currency": "USD"}
        ],
    }


class FakeWorld:
    """The Shopify webhook use case over the in-memory store."""

    def __init__(self, now: datetime = T0 + timedelta(days=3000)) -> None:
        self.store = InMemoryProfileStore()
        self.publisher = ListPublisher()
        self.clock = FixedClock(now)
        writer = ProfileWriter(self.store, self.publisher, default_definitions(), self.clock)
        self.webhooks = ShopifyWebhooks(
            secrets_for_shop=lambda shop: (SECRET,) if shop == SHOP else (),
            writer=writer,
            store=self.store,
            order_links=self.store,
            exporter=DictExporter(),
            clock=self.clock,
            max_body_bytes=1_000_000,
        )

    def shopify(self, topic: str, payload: dict[str, Any], event_id: str | None = None) -> WebhookAnswer:
        body = json.dumps(payload).encode()
        delivery = ShopifyDelivery(
            shop=SHOP,
            topic=topic,
            hmac=sign_shopify_body(body, SECRET),
            body=body,
            event_id=event_id or str(uuid.uuid4()),
            webhook_id=str(uuid.uuid4()),
        )
        return self.webhooks.receive(delivery)

    def profile(self, customer_id: int = CUSTOMER) -> Profile:
        profile = self.store._profile(SHOP, f"customer#{customer_id}")
        assert profile is not None
        return profile

    def facts(self, customer_id: int = CUSTOMER) -> dict[str, Any]:
        return self.profile(customer_id).facts()
