"""Receiving one Shopify webhook: verify, translate, route to the right profile, apply."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import ErasedProfile, ProfileErasure, erasure_for, external_id
from evergreen.domain.erasure import ErasureGuard, Tombstone, guard_for, tombstones_for
from evergreen.domain.events import (
    BulkOperationFinished,
    CustomerDeleted,
    CustomerRedactRequested,
    DataRequested,
    OrderObserved,
    PurchasingSummary,
    RefundObserved,
    ShopifyEvent,
    ShopRedactRequested,
)
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, apply_order, merge_guest
from evergreen.domain.shops import is_shop_domain
from evergreen.service.ports import DataExporter, ListMemberNow, OrderItem, ProfileStore, VersionConflict
from evergreen.service.profile_writer import ConflictsExhausted, Outcome, ProfileWriter, WriteResult
from evergreen.service.routing import CUSTOMER_PREFIX, GUEST_PREFIX, profile_at, profile_for
from evergreen.shopify.eventbridge import EnvelopedWebhook, NotShopifyEnvelope, read_envelope
from evergreen.shopify.headers import ConflictingHeaders, ShopifyHeaders, read_shopify_headers
from evergreen.shopify.hmac import verify_shopify_hmac
from evergreen.shopify.topics import SUPPORTED_TOPICS, MalformedPayload, canonical_topic, translate

logger = Logger(child=True)


class UnreadableHeaders(ValueError):
    """Both Shopify header families name a field, with different values (answer 400). Names the header only."""


def read_headers(headers: Mapping[str, str]) -> ShopifyHeaders:
    """The Shopify fields of a request's headers (names case-insensitive). Raises UnreadableHeaders."""
    try:
        return read_shopify_headers(headers)
    except ConflictingHeaders as error:
        raise UnreadableHeaders(str(error)) from error


class UnreadableEnvelope(ValueError):
    """The EventBridge event is not a Shopify webhook: nothing to apply, and retrying cannot fix it."""


def read_eventbridge(event: Mapping[str, Any]) -> EnvelopedWebhook:
    """The webhook inside a Shopify EventBridge event. Raises UnreadableEnvelope (names a field, never a value)."""
    try:
        return read_envelope(event)
    except NotShopifyEnvelope as error:
        raise UnreadableEnvelope(str(error)) from error


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
    triggered_at: str | None = None
    """X-Shopify-Triggered-At: when Shopify raised the event (the same on every retry)."""

    def triggered_before(self, now: datetime) -> datetime | None:
        """The triggered-at instant when it is a readable time not after `now` (a header is not signed, so a
        later one is ignored rather than trusted)."""
        try:
            at = datetime.fromisoformat(self.triggered_at) if self.triggered_at else None
        except ValueError:
            return None
        if at is None or at.tzinfo is None:
            return None
        return at if at <= now else None

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
    def keys_for(self, order_ids: list[str]) -> list[str]:
        """The item keys of these orders (their order items live beside the profiles)."""
        ...


class BulkOperationLog(Protocol):
    def record_finished(self, shop: str, operation_id: str, status: str | None, at: datetime) -> None:
        """Note a bulk_operations/finish webhook, for the shop's waiting backfill to find."""
        ...


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
        bulk_operations: BulkOperationLog | None = None,
    ) -> None:
        """`bulk_operations` notes bulk_operations/finish webhooks; without it they are acknowledged and dropped."""
        self._bulk_operations = bulk_operations
        self._secrets_for_shop = secrets_for_shop
        self._writer = writer
        self._store = store
        self._links = order_links
        self._exporter = exporter
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    def receive(self, delivery: ShopifyDelivery) -> WebhookAnswer:
        """size → headers → signature → topic → parse and check the body's shape → dispatch."""
        topic = _answer_topic(delivery)
        refused = self._refusal(delivery, topic)
        if refused is not None:
            return refused
        secrets = self._secrets_for_shop(delivery.shop) if delivery.shop else ()
        if not any(verify_shopify_hmac(delivery.body, delivery.hmac, secret) for secret in secrets):
            return WebhookAnswer(401, {"error": "invalid signature"}, topic, "signature_failed")
        return self._accept(delivery, topic)

    def receive_enveloped(self, webhook: EnvelopedWebhook) -> WebhookAnswer:
        """A webhook Shopify put on EventBridge: receive()'s path without the signature, which the envelope has
        no bytes for; AWS authenticated the partner event source that delivered it."""
        headers = webhook.headers
        delivery = ShopifyDelivery(
            shop=headers.shop,
            topic=headers.topic,
            hmac=None,
            body=json.dumps(webhook.payload, separators=(",", ":")).encode(),
            event_id=headers.event_id,
            webhook_id=headers.webhook_id,
            api_version=headers.api_version,
        )
        topic = _answer_topic(delivery)
        refused = self._refusal(delivery, topic)
        if refused is not None:
            return refused
        if delivery.shop is None:
            return WebhookAnswer(400, {"error": "bad headers", "reason": "no shop domain"}, topic, "malformed")
        return self._accept(delivery, topic)

    def _refusal(self, delivery: ShopifyDelivery, topic: str) -> WebhookAnswer | None:
        """413 for a body over the limit, 400 for unusable headers; None when the delivery may go on."""
        if len(delivery.body) > self._max_body_bytes:
            return WebhookAnswer(413, {"error": "payload too large", "limit_bytes": self._max_body_bytes}, topic)
        header_problem = _header_problem(delivery)
        if header_problem is not None:
            return WebhookAnswer(400, {"error": "bad headers", "reason": header_problem}, topic, "malformed")
        return None

    def _accept(self, delivery: ShopifyDelivery, topic: str) -> WebhookAnswer:
        """An authenticated delivery: ignore an unsupported topic, parse the body, dispatch."""
        if topic == "unsupported":
            named = canonical_topic(delivery.topic or "")
            logger.info("Ignoring unsupported topic", extra={"topic": named[:100], "shop": delivery.shop})
            return WebhookAnswer(200, {"status": "ignored", "reason": "unsupported topic"}, topic, "ignored")
        assert delivery.shop is not None
        try:
            payload = json.loads(delivery.body)
            now = self._clock.now()
            event = translate(topic, payload, now, shop=delivery.shop, triggered_at=delivery.triggered_before(now))
        except (ValueError, RecursionError, MalformedPayload) as error:
            reason = (
                str(error) if isinstance(error, MalformedPayload) else "body is not valid JSON (or nested too deeply)"
            )
            return WebhookAnswer(400, {"error": "malformed payload", "reason": reason}, topic, "malformed")
        return self._dispatch(delivery.shop, topic, event, delivery.delivery_id)

    def _dispatch(self, shop: str, topic: str, event: ShopifyEvent, delivery_id: str | None) -> WebhookAnswer:
        match event:
            case ShopRedactRequested():
                _log_destructive(topic, shop, event.shop_id)
                deleted = self._redact_shop(shop)
                logger.info("Shop redacted", extra={"shop": shop, "items_deleted": deleted})
                return WebhookAnswer(200, {"status": "redacted", "items": deleted}, topic, "redacted", notes=_DESTROYED)
            case CustomerRedactRequested():
                _log_destructive(topic, shop, event.shop_id, event.customer_id, event.email_normalized)
                deleted = self._redact_customer(shop, event)
                return WebhookAnswer(200, {"status": "redacted", "items": deleted}, topic, "redacted", notes=_DESTROYED)
            case DataRequested():
                key = self._export_customer(shop, event)
                return WebhookAnswer(200, {"status": "exported", "key": key}, topic, "exported")
            case RefundObserved():
                return self._refund(shop, topic, event, delivery_id)
            case BulkOperationFinished():
                return self._bulk_operation_finished(shop, topic, event)
            case PurchasingSummary():
                # Informational (docs/shopify.md): nothing to apply, so nothing to write.
                return WebhookAnswer(200, {"status": Outcome.UNCHANGED.value}, topic, Outcome.UNCHANGED.value)
            case _:
                guard = guard_for(shop, event)
                blank = profile_for(self._store, shop, event.customer_id, event.email_normalized)
                if blank is None:
                    logger.info("Event names no customer or email; nothing to attach", extra={"topic": topic})
                    return WebhookAnswer(200, {"status": "ignored", "reason": "no customer"}, topic, "ignored")
                if isinstance(event, CustomerDeleted):
                    _log_destructive(topic, shop, None, event.customer_id)
                answer = _answer(topic, self._write(blank, event, delivery_id, guard))
                return replace(answer, notes=_DESTROYED) if isinstance(event, CustomerDeleted) else answer

    def _bulk_operation_finished(self, shop: str, topic: str, event: BulkOperationFinished) -> WebhookAnswer:
        """Wake the shop's waiting backfill; no profile is read or written. The backfill still asks Shopify
        for the operation's status, so a replayed notice (even one signed for another shop) decides nothing."""
        if self._bulk_operations is None:
            return WebhookAnswer(200, {"status": "ignored", "reason": "no backfill here"}, topic, "ignored")
        self._bulk_operations.record_finished(shop, event.operation_id, event.status, self._clock.now())
        logger.info("Bulk operation finished", extra={"shop": shop, "operation_id": event.operation_id})
        return WebhookAnswer(200, {"status": "noted"}, topic, "noted")

    def _write(self, blank: Profile, event: ShopifyEvent, delivery_id: str | None, guard: ErasureGuard) -> WriteResult:
        """One consistent read and one conditional write (a transaction when an order item is written)."""
        if isinstance(event, OrderObserved | RefundObserved):
            return self._writer.write_order(
                blank,
                event.order_id,
                lambda profile, state: apply_order(profile, state, event),
                delivery_id,
                merge=merge_guest,
                guest_email=event.email_normalized,
                guard=guard,
            )
        return self._writer.write(
            blank,
            lambda profile: apply(profile, event),
            delivery_id,
            merge=merge_guest,
            guest_email=event.email_normalized,
            guard=guard,
        )

    def _refund(self, shop: str, topic: str, event: RefundObserved, delivery_id: str | None) -> WebhookAnswer:
        """Route a refund to its order's owner; park it on the order's item when the order is not known yet.

        The refund names only its order, so its owner is read first: one GetItem, then the write's own read
        and write (3 requests). Parking is that GetItem, a read of the tombstones the refund names and one
        conditional write that checks them again.
        """
        guard = guard_for(shop, event)
        for _ in range(8):
            item = self._store.load_order(shop, event.order_id)
            if item is not None and item.owner is not None:
                return _answer(topic, self._write(profile_at(shop, item.owner), event, delivery_id, guard))
            if guard.blocked_by(self._store.erased(shop, guard.tombstones)):
                return _answer(topic, WriteResult(Outcome.ERASED))
            state = item.state if item is not None else OrderState()
            _, parked = apply_order(Profile(shop=shop), state, event)
            if item is not None and parked == item.state:
                return WebhookAnswer(200, {"status": "parked", "reason": "order not seen yet"}, topic, "parked")
            version = item.version if item is not None else 0
            try:
                self._store.park_refund(
                    OrderItem(shop, event.order_id, None, parked, version), self._clock.now(), guard
                )
            except VersionConflict:
                continue
            return WebhookAnswer(200, {"status": "parked", "reason": "order not seen yet"}, topic, "parked")
        raise ConflictsExhausted("the order kept changing concurrently")

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

    def _redact_shop(self, shop: str) -> int:
        """Tombstone the shop first (from now on a delivery older than this redact writes nothing), clear in
        Klaviyo every profile Evergreen synced there, then delete every item of the shop but its tombstones."""
        now = self._clock.now()
        self._store.record_erasure(shop, [Tombstone("shop")], now)
        stored = list(self._store.keys_in_shop(shop))
        profile_keys = [key for key in stored if key.startswith((CUSTOMER_PREFIX, GUEST_PREFIX))]
        members = self._store.list_members_now([(shop, key) for key in profile_keys])
        synced = {key: member for (_, key), member in members.items() if member.synced}
        for erasure in shop_erasures(shop, synced, now):
            self._writer.enqueue_erasure(erasure)
        return self._store.delete(shop, stored)

    def _redact_customer(self, shop: str, event: CustomerRedactRequested) -> int:
        """Tombstone what the request names before anything else, so that a write racing this redact either
        lands before the deletion below or is refused by its tombstones; then tombstone what the table adds
        (its other orders, addresses and merged guests), clear Klaviyo and delete."""
        now = self._clock.now()
        named = tombstones_for(
            shop, customer_ids=[event.customer_id], order_ids=event.orders, emails=[event.email], phones=[event.phone]
        )
        self._store.record_erasure(shop, named, now)
        profiles = self._customer_keys(shop, event.customer_id, event.email_normalized)
        owners = {profile.key for profile in profiles} | {key for profile in profiles for key in profile.merged_guests}
        owned = {order_id for owner in sorted(owners) for order_id in self._store.order_ids_of(shop, owner)}
        order_ids = sorted({*event.orders, *owned})
        found = tombstones_for(
            shop,
            customer_ids=[profile.customer_id for profile in profiles],
            order_ids=order_ids,
            emails=[profile.email_normalized for profile in profiles]
            + [owner.removeprefix(GUEST_PREFIX) for owner in owners if owner.startswith(GUEST_PREFIX)],
            phones=[profile.phone for profile in profiles],
        )
        self._store.record_erasure(shop, [tombstone for tombstone in found if tombstone not in named], now)
        # Klaviyo clean-up first: once the rows are gone nothing would know what to clear there.
        self._writer.enqueue_erasure(erasure_for(shop, profiles, now))
        erased = self._store.erase_profiles(shop, [profile.key for profile in profiles])
        deleted = erased + self._store.delete(shop, self._links.keys_for(order_ids))
        logger.info(
            "Customer redacted",
            extra={"shop": shop, "customer_id": event.customer_id, "email_hash": fingerprint(event.email_normalized)},
        )
        return deleted

    def _exported(self, profile: Profile) -> dict[str, Any]:
        """A profile as stored, with every order it owns (each order is its own item)."""
        owned = [
            order for key in (profile.key, *profile.merged_guests) for order in self._store.orders_of(profile.shop, key)
        ]
        orders = {order.order_id: order.state.model_dump(mode="json", exclude_defaults=True) for order in owned}
        return {**profile.model_dump(mode="json"), "orders": orders}

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
            "profiles": [self._exported(profile) for profile in profiles],
        }
        self._exporter.export(key, document)
        logger.info("Customer data exported", extra={"shop": shop, "export_key": key})
        return key


_DESTROYED: dict[str, Any] = {"destructive": True}
"""Notes of an answer that deleted or retired data (the handler counts these as a metric)."""

MAX_DELIVERY_ID_CHARS = 128
"""Delivery ids are remembered on the profile: a longer one is refused rather than stored."""


SHOP_ERASURE_PROFILES = 500
"""Profiles per erasure message of a shop/redact (about 60 KB, well under SQS's 256 KB)."""


def shop_erasures(shop: str, synced: Mapping[str, ListMemberNow], now: datetime) -> list[ProfileErasure]:
    """The Klaviyo clean-up of a redacted shop: its synced profiles, `SHOP_ERASURE_PROFILES` per message."""
    keys = sorted(synced)
    erasures: list[ProfileErasure] = []
    for offset in range(0, len(keys), SHOP_ERASURE_PROFILES):
        chunk = keys[offset : offset + SHOP_ERASURE_PROFILES]
        profiles = [
            ErasedProfile(external_id=external_id(shop, key), klaviyo_profile_id=synced[key].klaviyo_profile_id)
            for key in chunk
        ]
        segments = sorted({segment for key in chunk for segment in synced[key].segments})
        erasures.append(ProfileErasure(shop=shop, profiles=profiles, segments=segments, requested_at=now))
    return erasures


def _answer_topic(delivery: ShopifyDelivery) -> str:
    """The topic as answers and metrics name it: an unsigned header never becomes a metric dimension."""
    named = canonical_topic(delivery.topic or "")
    return named if named in SUPPORTED_TOPICS else "unsupported"


def _header_problem(delivery: ShopifyDelivery) -> str | None:
    """Why the (unsigned) headers cannot be used, naming the header, never its value."""
    if delivery.shop is not None and not is_shop_domain(delivery.shop):
        return "the shop domain header is not a <name>.myshopify.com domain"
    if delivery.topic is not None and "," in delivery.topic:
        # API Gateway joins a repeated header with commas; no Shopify topic has one. Two topics name no topic.
        return "the topic header is repeated (a delivery has one topic)"
    for name, value in (("event id", delivery.event_id), ("webhook id", delivery.webhook_id)):
        if value is not None and len(value) > MAX_DELIVERY_ID_CHARS:
            return f"the {name} header is longer than {MAX_DELIVERY_ID_CHARS} characters"
    return None


def _log_destructive(
    topic: str, shop: str, shop_id: str | None, customer_id: str | None = None, email: str | None = None
) -> None:
    """Every accepted deletion leaves an audit line (ids and hashes only)."""
    logger.warning(
        "Destructive operation accepted",
        extra={
            "topic": topic,
            "shop": shop,
            "shop_id": shop_id,
            "customer_id": customer_id,
            "email_hash": fingerprint(email),
        },
    )


def _answer(topic: str, result: WriteResult) -> WebhookAnswer:
    return WebhookAnswer(
        200,
        {"status": result.outcome.value, "entered": list(result.entered), "exited": list(result.exited)},
        topic,
        result.outcome.value,
        result.entered,
        result.exited,
    )
