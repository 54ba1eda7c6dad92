"""Signed deliveries about one customer, as API Gateway hands them to the real handlers (erasure tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evergreen_cli.commands.send_webhook import klaviyo_headers, shopify_headers
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET, DEFAULT_LOCAL_SHOPIFY_SECRET

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class Customer:
    """One customer of one shop: its id, email, phone and orders, and the deliveries that name them."""

    def __init__(self, shop: str, customer_id: int, email: str, phone: str | None = None) -> None:
        self.shop = shop
        self.customer_id = customer_id
        self.email = email
        self.phone = phone or f"+1613{customer_id % 10**7:07d}"

    def shopify(self, topic: str, body: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        raw = json.dumps(body).encode()
        headers = shopify_headers(raw, topic, self.shop, DEFAULT_LOCAL_SHOPIFY_SECRET, event_id)
        return build_http_api_v2_event("POST", "/webhooks/shopify", headers, raw)

    def _customer(self) -> dict[str, Any]:
        return {"id": self.customer_id, "email": self.email, "phone": self.phone, "first_name": "Ada"}

    def order(self, order_id: int, updated_at: datetime, total: str = "120.00") -> dict[str, Any]:
        body = sample("shopify/orders_create.json")
        body.update(
            id=order_id,
            email=self.email,
            phone=self.phone,
            created_at=utc(updated_at - timedelta(hours=1)),
            updated_at=utc(updated_at),
            total_price=total,
            current_total_price=total,
            total_price_set={"shop_money": {"amount": total, "currency_code": "USD"}},
            customer=self._customer(),
            refunds=[],
        )
        return body

    def refund(self, refund_id: int, order_id: int, at: datetime) -> dict[str, Any]:
        body = sample("shopify/refunds_create.json")
        body.update(id=refund_id, order_id=order_id, created_at=utc(at), processed_at=utc(at))
        return body

    def customer_update(self, at: datetime) -> dict[str, Any]:
        body = sample("shopify/customers_update.json")
        body.update(id=self.customer_id, email=self.email, phone=self.phone, updated_at=utc(at))
        return body

    def checkout(self, token: str, at: datetime) -> dict[str, Any]:
        body = sample("shopify/checkouts_create.json")
        body.update(token=token, email=self.email, phone=self.phone, updated_at=utc(at), customer=self._customer())
        return body

    def redact(self, order_ids: list[int]) -> dict[str, Any]:
        return {
            "shop_id": 1,
            "shop_domain": self.shop,
            "customer": {"id": self.customer_id, "email": self.email, "phone": self.phone},
            "orders_to_redact": order_ids,
        }

    def klaviyo_open(self, external_id: str, at: datetime) -> dict[str, Any]:
        """A Klaviyo 'opened email' delivery for this email, that happened `at` and is signed then."""
        body = sample("klaviyo/email_opened.json")
        entry = body["data"][0]
        entry["external_id"] = external_id
        attributes = entry["payload"]["data"]["attributes"]
        attributes["timestamp"] = int(at.timestamp())
        attributes["datetime"] = utc(at)
        profile = entry["payload"]["included"][-1]["attributes"]
        profile.update(email=self.email, phone_number=self.phone, external_id=None)
        body["meta"]["timestamp"] = utc(at)
        raw = json.dumps(body).encode()
        headers = klaviyo_headers(raw, DEFAULT_LOCAL_KLAVIYO_SECRET, at)
        return build_http_api_v2_event("POST", "/webhooks/klaviyo", headers, raw, {"shop": self.shop})
