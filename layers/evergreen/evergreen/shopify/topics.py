"""Topic translation: one Shopify webhook (topic + body) in, one domain event out.

`translate` never raises anything but `UnknownTopic` (the topic is not handled) and
`MalformedPayload` (the body lacks what the topic needs). Reasons name fields and error
kinds only, never values, so they are safe to log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from evergreen.domain.events import (
    CUSTOMER_TAGS_KEPT,
    ORDER_DETAILS_KEPT,
    BulkOperationFinished,
    CheckoutObserved,
    ConsentChanged,
    CustomerDeleted,
    CustomerRedactRequested,
    CustomerTagsChanged,
    CustomerUpserted,
    DataRequested,
    OrderObserved,
    PurchasingSummary,
    RefundObserved,
    ShopifyEvent,
    ShopifySegmentChanged,
    ShopRedactRequested,
)
from evergreen.domain.location import Address, normalise_postal_code
from evergreen.domain.profile import Consent, ConsentState
from evergreen.shopify.payloads import (
    AddressPayload,
    BulkOperationFinishedPayload,
    CheckoutPayload,
    CustomerDeletePayload,
    CustomerPayload,
    CustomerRedactPayload,
    CustomerSegmentPayload,
    CustomerTagsPayload,
    DataRequestPayload,
    EmailConsentUpdatePayload,
    MarketingConsent,
    OrderPayload,
    PurchasingSummaryPayload,
    RefundPayload,
    ShopRedactPayload,
    SmsConsentUpdatePayload,
)
from evergreen.shopify.shapes import shape_problem

Translator = Callable[[Mapping[str, Any], datetime], ShopifyEvent]

REASON_ERRORS_SHOWN = 3
TOPIC_SHOWN_CHARS = 100


class UnknownTopic(LookupError):
    """The topic is not one Evergreen handles (answer 200 and drop it, or log it)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic[:TOPIC_SHOWN_CHARS]
        super().__init__(f"unsupported Shopify topic {self.topic!r}")


class MalformedPayload(ValueError):
    """The body does not carry what its topic needs. `reason` is short and free of PII."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# --- helpers -----------------------------------------------------------------------------------


def _location(loc: Iterable[int | str]) -> str:
    """A field path like `customer.id` or `line_items.0.price`, skipping pydantic's type tags."""
    parts = [str(part) for part in loc if isinstance(part, int) or part.replace("_", "").isalnum()]
    return ".".join(parts) or "body"


def _reason(topic: str, error: ValidationError) -> str:
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    described = [
        f"{_location(item['loc'])} {'is missing' if item['type'] == 'missing' else 'is invalid'} ({item['type']})"
        for item in errors[:REASON_ERRORS_SHOWN]
    ]
    more = len(errors) - REASON_ERRORS_SHOWN
    suffix = f" (+{more} more)" if more > 0 else ""
    return f"{topic} payload: {'; '.join(described)}{suffix}"


def _validate[ModelT: BaseModel](model: type[ModelT], body: Mapping[str, Any], topic: str) -> ModelT:
    try:
        return model.model_validate(dict(body))
    except ValidationError as error:
        raise MalformedPayload(_reason(topic, error)) from None
    except RecursionError:
        raise MalformedPayload(f"{topic} payload is nested too deeply") from None


def _as_body(topic: str, payload: Mapping[str, Any] | bytes) -> Mapping[str, Any]:
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            parsed = json.loads(bytes(payload))
        except (ValueError, RecursionError):
            raise MalformedPayload(f"{topic} payload is not valid JSON") from None
    else:
        parsed = payload
    if not isinstance(parsed, Mapping):
        raise MalformedPayload(f"{topic} payload is not a JSON object")
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPayload(f"{topic} payload has a string that is not valid Unicode (a lone surrogate)") from None
    except (TypeError, ValueError, RecursionError):
        raise MalformedPayload(f"{topic} payload is not plain JSON (or nested too deeply)") from None
    return parsed


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _bounded(values: Iterable[str | None], limit: int) -> tuple[str, ...]:
    """Distinct non-blank values in first-seen order, at most `limit` of them."""
    kept: list[str] = []
    for value in values:
        if value and value not in kept:
            kept.append(value)
            if len(kept) == limit:
                break
    return tuple(kept)


_CONSENT_STATES: frozenset[str] = frozenset(
    {"subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "invalid"}
)


def _consent_state(raw: str | None) -> ConsentState:
    if raw in _CONSENT_STATES:
        return raw  # type: ignore[return-value]
    return "unknown"


def _consent(consent: MarketingConsent | None) -> Consent | None:
    if consent is None:
        return None
    return Consent(state=_consent_state(consent.state), updated_at=consent.consent_updated_at)


def _legacy_email_consent(customer: CustomerPayload) -> Consent | None:
    """Email consent from a customer payload: the consent object, else legacy `accepts_marketing`."""
    if customer.email_marketing_consent is not None:
        return _consent(customer.email_marketing_consent)
    if customer.accepts_marketing is None:
        return None
    return Consent(
        state="subscribed" if customer.accepts_marketing else "not_subscribed",
        updated_at=customer.accepts_marketing_updated_at,
    )


def _address(address: AddressPayload | None) -> Address | None:
    """The location-fact parts of an address: codes upper-case, the postal code without spaces."""
    if address is None:
        return None
    kept = Address(
        country_code=address.country_code.upper() if address.country_code else None,
        province_code=address.province_code.upper() if address.province_code else None,
        city=address.city.strip() if address.city else None,
        postal_code=normalise_postal_code(address.zip),
        latitude=address.latitude,
        longitude=address.longitude,
    )
    return None if kept.empty else kept


# --- translators ---------------------------------------------------------------------------------


def _customer(topic: str) -> Translator:
    def translate_customer(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
        customer = _validate(CustomerPayload, body, topic)
        return CustomerUpserted(
            customer_id=customer.id,
            email=customer.email,
            phone=customer.phone,
            first_name=customer.first_name,
            last_name=customer.last_name,
            state=customer.state,
            tags=None if customer.tags is None else _bounded(customer.tags, CUSTOMER_TAGS_KEPT),
            created_at=customer.created_at,
            updated_at=customer.updated_at,
            email_consent=_legacy_email_consent(customer),
            sms_consent=_consent(customer.sms_marketing_consent),
            default_address=_address(customer.default_address),
        )

    return translate_customer


def _customer_tags(topic: str) -> Translator:
    def translate_tags(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
        change = _validate(CustomerTagsPayload, body, topic)
        return CustomerTagsChanged(
            customer_id=change.customer_id,
            tags=_bounded(change.tags, len(change.tags)),
            present=topic == TAGS_ADDED_TOPIC,
            occurred_at=change.occurred_at,
        )

    return translate_tags


def _customer_segment(topic: str) -> Translator:
    def translate_segment(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
        change = _validate(CustomerSegmentPayload, body, topic)
        return ShopifySegmentChanged(
            customer_id=change.customer_id,
            segment_id=change.segment_id,
            member=topic == JOINED_SEGMENT_TOPIC,
            occurred_at=received_at,
        )

    return translate_segment


def _customer_deleted(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    deleted = _validate(CustomerDeletePayload, body, "customers/delete")
    return CustomerDeleted(customer_id=deleted.id, deleted_at=received_at)


def _email_consent(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    update = _validate(EmailConsentUpdatePayload, body, "customers_email_marketing_consent/update")
    consent = update.email_marketing_consent
    return ConsentChanged(
        customer_id=update.customer_id,
        email=update.email_address,
        channel="email",
        state=_consent_state(consent.state),
        updated_at=consent.consent_updated_at,
        opt_in_level=consent.opt_in_level,
    )


def _sms_consent(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    update = _validate(SmsConsentUpdatePayload, body, "customers_marketing_consent/update")
    consent = update.sms_marketing_consent
    return ConsentChanged(
        customer_id=update.id,
        phone=update.phone,
        channel="sms",
        state=_consent_state(consent.state),
        updated_at=consent.consent_updated_at,
        opt_in_level=consent.opt_in_level,
    )


def _purchasing_summary(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    summary = _validate(PurchasingSummaryPayload, body, "customers/purchasing_summary")
    spent = summary.amount_spent
    return PurchasingSummary(
        customer_id=summary.customer_id,
        orders_count=summary.number_of_orders,
        amount_spent=spent.amount if spent else None,
        currency=spent.currency_code if spent else None,
        last_order_id=summary.last_order_id,
        occurred_at=summary.occurred_at,
    )


def _refund_event(refund: RefundPayload, order_id: str | None, topic: str) -> RefundObserved:
    owner = refund.order_id or order_id
    if owner is None:
        raise MalformedPayload(f"{topic} payload: order_id is missing (missing)")
    amount, currency = refund.refunded()
    return RefundObserved(
        refund_id=refund.id,
        order_id=owner,
        amount=amount,
        currency=currency,
        created_at=refund.created_at or refund.processed_at,
    )


def _refund(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    return _refund_event(_validate(RefundPayload, body, "refunds/create"), None, "refunds/create")


def _order(topic: str) -> Translator:
    def translate_order(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
        order = _validate(OrderPayload, body, topic)
        total = order.total()
        if total is None:
            raise MalformedPayload(f"{topic} payload: total_price is missing (missing)")
        amount, currency = total
        customer = order.customer if order.customer is not None and order.customer.id else None
        return OrderObserved(
            order_id=order.id,
            customer_id=customer.id if customer else None,
            email=(customer.email if customer else None) or order.email or order.contact_email,
            phone=(customer.phone if customer else None) or order.phone,
            first_name=customer.first_name if customer else None,
            last_name=customer.last_name if customer else None,
            created_at=order.created_at,
            updated_at=order.updated_at,
            cancelled=order.cancelled_at is not None,
            cancelled_at=order.cancelled_at,
            total=amount,
            currency=currency,
            financial_status=order.financial_status,
            test=order.test,
            checkout_token=order.checkout_token,
            product_types=_bounded((item.product_type for item in order.line_items), ORDER_DETAILS_KEPT),
            tags=_bounded(order.tags or (), ORDER_DETAILS_KEPT),
            vendors=_bounded((item.vendor for item in order.line_items), ORDER_DETAILS_KEPT),
            product_ids=_bounded((item.product_id for item in order.line_items), ORDER_DETAILS_KEPT),
            discount_codes=_bounded((code.code for code in order.discount_codes), ORDER_DETAILS_KEPT),
            shipping_address=_address(order.shipping_address),
            refunds=tuple(_refund_event(refund, order.id, topic) for refund in order.refunds),
        )

    return translate_order


def _checkout(topic: str) -> Translator:
    def translate_checkout(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
        checkout = _validate(CheckoutPayload, body, topic)
        customer = checkout.customer if checkout.customer is not None and checkout.customer.id else None
        return CheckoutObserved(
            token=checkout.token,
            customer_id=customer.id if customer else None,
            email=(customer.email if customer else None) or checkout.email,
            phone=(customer.phone if customer else None) or checkout.phone,
            created_at=checkout.created_at,
            updated_at=checkout.updated_at,
            completed_at=checkout.completed_at,
        )

    return translate_checkout


def _data_request(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    request = _validate(DataRequestPayload, body, "customers/data_request")
    return DataRequested(
        shop_id=request.shop_id,
        shop_domain=request.shop_domain,
        customer_id=request.customer.id,
        email=request.customer.email,
        phone=request.customer.phone,
        orders_requested=tuple(request.orders_requested),
        data_request_id=request.data_request.id if request.data_request else None,
        requested_at=received_at,
    )


def _customer_redact(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    request = _validate(CustomerRedactPayload, body, "customers/redact")
    return CustomerRedactRequested(
        shop_id=request.shop_id,
        shop_domain=request.shop_domain,
        customer_id=request.customer.id,
        email=request.customer.email,
        phone=request.customer.phone,
        orders=tuple(request.orders_to_redact),
        requested_at=received_at,
    )


def _shop_redact(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    request = _validate(ShopRedactPayload, body, "shop/redact")
    return ShopRedactRequested(shop_id=request.shop_id, shop_domain=request.shop_domain, requested_at=received_at)


def _bulk_operation_finished(body: Mapping[str, Any], received_at: datetime) -> ShopifyEvent:
    notice = _validate(BulkOperationFinishedPayload, body, BULK_OPERATION_FINISH_TOPIC)
    return BulkOperationFinished(
        operation_id=notice.admin_graphql_api_id,
        status=notice.status,
        error_code=notice.error_code,
        completed_at=notice.completed_at,
    )


# --- registry ------------------------------------------------------------------------------------

CUSTOMER_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")
ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled", "orders/fulfilled")
CHECKOUT_TOPICS = ("checkouts/create", "checkouts/update")
EMAIL_CONSENT_TOPIC = "customers_email_marketing_consent/update"
SMS_CONSENT_TOPIC = "customers_marketing_consent/update"
TAGS_ADDED_TOPIC = "customer.tags_added"
TAGS_REMOVED_TOPIC = "customer.tags_removed"
JOINED_SEGMENT_TOPIC = "customer.joined_segment"
LEFT_SEGMENT_TOPIC = "customer.left_segment"
SEGMENT_TOPICS = (JOINED_SEGMENT_TOPIC, LEFT_SEGMENT_TOPIC)
"""Their bodies carry no time: the event is stamped with the delivery's triggered-at (see `translate`)."""
BULK_OPERATION_FINISH_TOPIC = "bulk_operations/finish"

TOPIC_ALIASES: Mapping[str, str] = {
    "customers/email_marketing_consent_update": EMAIL_CONSENT_TOPIC,
    "customers/marketing_consent_update": SMS_CONSENT_TOPIC,
}
"""Other spellings accepted for Shopify's consent topics (Shopify itself sends the values)."""

_REGISTRY: dict[str, Translator] = {
    **{topic: _customer(topic) for topic in CUSTOMER_TOPICS},
    "customers/delete": _customer_deleted,
    EMAIL_CONSENT_TOPIC: _email_consent,
    SMS_CONSENT_TOPIC: _sms_consent,
    "customers/purchasing_summary": _purchasing_summary,
    TAGS_ADDED_TOPIC: _customer_tags(TAGS_ADDED_TOPIC),
    TAGS_REMOVED_TOPIC: _customer_tags(TAGS_REMOVED_TOPIC),
    **{topic: _customer_segment(topic) for topic in SEGMENT_TOPICS},
    **{topic: _order(topic) for topic in ORDER_TOPICS},
    "refunds/create": _refund,
    **{topic: _checkout(topic) for topic in CHECKOUT_TOPICS},
    "customers/data_request": _data_request,
    "customers/redact": _customer_redact,
    "shop/redact": _shop_redact,
    BULK_OPERATION_FINISH_TOPIC: _bulk_operation_finished,
}

COMPLIANCE_TOPICS: frozenset[str] = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
"""Mandatory privacy topics: configured in the app, never subscribed through the API."""

SUBSCRIPTION_TOPICS: tuple[str, ...] = tuple(topic for topic in _REGISTRY if topic not in COMPLIANCE_TOPICS)
"""Shopify's own names of the topics to subscribe a shop to."""

SUPPORTED_TOPICS: frozenset[str] = frozenset(_REGISTRY) | frozenset(TOPIC_ALIASES)
"""Every topic string `translate` accepts (Shopify's names and the aliases)."""


def canonical_topic(topic: str) -> str:
    """Shopify's own name for a topic (lower-cased, aliases resolved)."""
    cleaned = topic.strip().lower()
    return TOPIC_ALIASES.get(cleaned, cleaned)


def translate(
    topic: str,
    payload: Mapping[str, Any] | bytes,
    received_at: datetime,
    shop: str | None = None,
    triggered_at: datetime | None = None,
) -> ShopifyEvent:
    """The domain event for one webhook delivery.

    `triggered_at` (X-Shopify-Triggered-At, the same on every retry) stamps the topics whose body has no time
    of its own (customer.joined_segment / left_segment); without it they take `received_at`.

    Raises UnknownTopic for a topic Evergreen does not handle and MalformedPayload when the
    body does not carry what the topic needs, has the shape of another topic's body, or (given
    `shop`, the unsigned shop header) names a different shop.
    """
    canonical = canonical_topic(topic)
    translator = _REGISTRY.get(canonical)
    if translator is None:
        raise UnknownTopic(topic)
    body = _as_body(canonical, payload)
    problem = shape_problem(canonical, body, shop)
    if problem is not None:
        raise MalformedPayload(f"{canonical} payload: {problem}")
    try:
        stamp = triggered_at if triggered_at is not None and canonical in SEGMENT_TOPICS else received_at
        return translator(body, _utc(stamp))
    except ValidationError as error:
        raise MalformedPayload(_reason(canonical, error)) from None
