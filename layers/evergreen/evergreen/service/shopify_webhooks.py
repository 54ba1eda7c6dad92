"""Receiving one Shopify webhook: verify, translate, route to the right profile, apply."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import erasure_for
from evergreen.domain.events import (
    CustomerRedactRequested,
    DataRequested,
    OrderObserved,
    RefundObserved,
    ShopifyEvent,
    ShopRedactRequested,
)
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, merge_guest
from evergreen.service.ports import DataExporter, ProfileStore
from evergreen.service.profile_writer import Outcome, ProfileWriter, WriteResult
from evergreen.service.routing import CUSTOMER_PREFIX, GUEST_PREFIX, profile_for
from evergreen.shopify.hmac import verify_shopify_hmac
from evergreen.shopify.topics import SUPPORTED_TOPICS, MalformedPayload, translate
from evergreen.storage.orders import OrderLink

logger = Logger(child=True)


@dataclass(frozen=True)
class ShopifyDelivery:
    """One HTTP delivery, as the headers and raw body came."""

    shop: str | None
    topic: str | None
    hmac: str | None
    body: bytes
    event_id: str | None = None
    webhook_id: str | None = None
    api_version: str | None = None

    @property
    def delivery_id(self) -> str | None:
        """X-Shopify-Event-Id names the event across retries; the webhook id is the fallback."""
        if self.event_id:
            return f"shopify:event:{self.event_id}"
        return f"shopify:webhook:{self.webhook_id}" if self.webhook_id else None


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]
    topic: str = "unknown"
    outcome: str = ""
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)


class OrderLinks(Protocol):
    def get(self, shop: str, order_id: str) -> OrderLink | None: ...
    def link(self, shop: str, order_id: str, profile_key: str) -> OrderLink: ...
    def park_refund(self, shop: str, order_id: str, refund_id: str, refund: dict[str, Any], now: datetime) -> bool: ...
    def keys_for(self, order_ids: list[str]) -> list[str]: ...


def fingerprint(value: str | None) -> str | None:
    """A short, non-reversible tag for logging a PII value."""
    if not value:
        return None
    return hashlib.sha256(value.encode()).hexdigest()[:12]


class ShopifyWebhooks:
    def __init__(
        self,
        secrets_for_shop: Callable[[str], tuple[str, ...]],
        writer: ProfileWriter,
        store: ProfileStore,
        order_links: OrderLinks,
        exporter: DataExporter,
        clock: Clock,
        max_body_bytes: int,
    ) -> None:
        self._secrets_for_shop = secrets_for_shop
        self._writer = writer
        self._store = store
        self._links = order_links
        self._exporter = exporter
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    def receive(self, delivery: ShopifyDelivery) -> WebhookAnswer:
        topic = delivery.topic or "unknown"
        if len(delivery.body) > self._max_body_bytes:
            return WebhookAnswer(413, {"error": "payload too large", "limit_bytes": self._max_body_bytes}, topic)
        secrets = self._secrets_for_shop(delivery.shop) if delivery.shop else ()
        if not any(verify_shopify_hmac(delivery.body, delivery.hmac, secret) for secret in secrets):
            return WebhookAnswer(401, {"error": "invalid signature"}, topic, "signature_failed")
        if topic not in SUPPORTED_TOPICS:
            logger.info("Ignoring unsupported topic", extra={"topic": topic, "shop": delivery.shop})
            return WebhookAnswer(200, {"status": "ignored", "reason": "unsupported topic"}, topic, "ignored")
        try:
            payload = json.loads(delivery.body)
            event = translate(topic, payload, self._clock.now())
        except (ValueError, MalformedPayload) as error:
            reason = str(error) if isinstance(error, MalformedPayload) else "body is not valid JSON"
            return WebhookAnswer(400, {"error": "malformed payload", "reason": reason}, topic, "malformed")
        assert delivery.shop is not None
        return self._dispatch(delivery.shop, topic, event, delivery.delivery_id)

    def _dispatch(self, shop: str, topic: str, event: ShopifyEvent, delivery_id: str | None) -> WebhookAnswer:
        match event:
            case ShopRedactRequested():
                deleted = self._store.delete(shop, list(self._store.keys_in_shop(shop)))
                logger.info("Shop redacted", extra={"shop": shop, "items_deleted": deleted})
                return WebhookAnswer(200, {"status": "redacted", "items": deleted}, topic, "redacted")
            case CustomerRedactRequested():
                deleted = self._redact_customer(shop, event)
                return WebhookAnswer(200, {"status": "redacted", "items": deleted}, topic, "redacted")
            case DataRequested():
                key = self._export_customer(shop, event)
                return WebhookAnswer(200, {"status": "exported", "key": key}, topic, "exported")
            case RefundObserved():
                return self._refund(shop, topic, event, delivery_id)
            case _:
                blank = profile_for(self._store, shop, event.customer_id, event.email_normalized)
                if blank is None:
                    logger.info("Event names no customer or email; nothing to attach", extra={"topic": topic})
                    return WebhookAnswer(200, {"status": "ignored", "reason": "no customer"}, topic, "ignored")
                result = self._write(blank, event, delivery_id)
                if isinstance(event, OrderObserved):
                    result = self._link_order(shop, event, result, delivery_id)
                return _answer(topic, result)

    def _write(self, blank: Profile, event: ShopifyEvent | RefundObserved, delivery_id: str | None) -> WriteResult:
        return self._writer.write(blank, lambda profile: apply(profile, event), delivery_id, merge=merge_guest)

    def _link_order(self, shop: str, event: OrderObserved, result: WriteResult, delivery_id: str | None) -> WriteResult:
        """Record which profile owns a new order, then fold in refunds that arrived before it.

        A re-delivery links again, so a link lost to a failure after the profile write is restored.
        """
        if result.profile is None or result.outcome is Outcome.UNCHANGED:
            return result
        if result.outcome is Outcome.WRITTEN and result.before is not None and event.order_id in result.before.orders:
            return result
        profile = result.profile
        link = self._links.link(shop, event.order_id, profile.key)
        missing = [
            RefundObserved.model_validate(refund)
            for refund_id, refund in link.parked_refunds.items()
            if refund_id not in profile.refunds
        ]
        blank = Profile(shop=shop, customer_id=profile.customer_id, email_normalized=profile.email_normalized)
        for refund in missing:
            result = self._write(blank, refund, None)
        return result

    def _refund(self, shop: str, topic: str, event: RefundObserved, delivery_id: str | None) -> WebhookAnswer:
        link = self._links.get(shop, event.order_id)
        if link is None or link.profile_key is None:
            parked = event.model_dump(mode="json")
            if self._links.park_refund(shop, event.order_id, event.refund_id, parked, self._clock.now()):
                return WebhookAnswer(200, {"status": "parked", "reason": "order not seen yet"}, topic, "parked")
            link = self._links.get(shop, event.order_id)
        assert link is not None and link.profile_key is not None
        owner = link.profile_key
        customer_id = owner.removeprefix(CUSTOMER_PREFIX) if owner.startswith(CUSTOMER_PREFIX) else None
        email = owner.removeprefix(GUEST_PREFIX) if customer_id is None else None
        blank = Profile(shop=shop, customer_id=customer_id, email_normalized=email)
        return _answer(topic, self._write(blank, event, delivery_id))

    def _customer_keys(self, shop: str, customer_id: str | None, email: str | None) -> list[Profile]:
        found: list[Profile] = []
        candidates = []
        if customer_id:
            candidates.append(Profile(shop=shop, customer_id=customer_id).key)
        if email:
            candidates.append(Profile(shop=shop, email_normalized=email).key)
            candidates += self._store.keys_with_email(shop, email)
        for key in dict.fromkeys(candidates):
            profile = self._store.load(shop, key)
            if profile is not None:
                found.append(profile)
        return found

    def _redact_customer(self, shop: str, event: CustomerRedactRequested) -> int:
        profiles = self._customer_keys(shop, event.customer_id, event.email_normalized)
        order_ids = sorted({*event.orders, *(order for profile in profiles for order in profile.orders)})
        keys = [profile.key for profile in profiles] + self._links.keys_for(order_ids)
        # Klaviyo clean-up first: once the rows are gone nothing would know what to clear there.
        self._writer.enqueue_erasure(erasure_for(shop, profiles, self._clock.now()))
        deleted = self._store.delete(shop, keys)
        logger.info(
            "Customer redacted",
            extra={"shop": shop, "customer_id": event.customer_id, "email_hash": fingerprint(event.email_normalized)},
        )
        return deleted

    def _export_customer(self, shop: str, event: DataRequested) -> str:
        profiles = self._customer_keys(shop, event.customer_id, event.email_normalized)
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%SZ")
        request_id = event.data_request_id or stamp
        key = f"data-requests/{shop}/{event.customer_id or 'unknown'}/{request_id}.json"
        document = {
            "shop": shop,
            "customer_id": event.customer_id,
            "data_request_id": event.data_request_id,
            "orders_requested": list(event.orders_requested),
            "generated_at": self._clock.now().isoformat(),
            "profiles": [profile.model_dump(mode="json") for profile in profiles],
        }
        self._exporter.export(key, document)
        logger.info("Customer data exported", extra={"shop": shop, "export_key": key})
        return key


def _answer(topic: str, result: WriteResult) -> WebhookAnswer:
    return WebhookAnswer(
        200,
        {"status": result.outcome.value, "entered": list(result.entered), "exited": list(result.exited)},
        topic,
        result.outcome.value,
        result.entered,
        result.exited,
    )
