"""Domain events: what Evergreen learns from Shopify and Klaviyo, in its own words.

Each event is immutable and carries only what the reducers need. Every event exposes
`customer_id` and `email_normalized` (how the service layer finds the profile) and
`resource_updated_at` (the source resource's own clock, used for ordering).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from evergreen.domain.location import Address
from evergreen.domain.profile import Consent, ConsentState, normalise_email


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("timestamp out of range") from error


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""A tz-aware instant, stored in UTC."""

ORDER_DETAILS_KEPT = 20
"""At most this many product types and tags are kept per order (memory bound)."""
CUSTOMER_TAGS_KEPT = 50
"""At most this many customer tags are kept per profile."""

ConsentChannel = Literal["email", "sms"]
EngagementKind = Literal[
    "email_open",
    "email_click",
    "sms_click",
    "email_bounce",
    "email_spam",
    "email_unsubscribe",
    "sms_unsubscribe",
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str | None = None
    """Shopify customer id as a string; None when the source does not name a customer."""
    email: str | None = None
    """As given by the source, for display."""

    @property
    def email_normalized(self) -> str | None:
        """Identity form of `email`, used to find guest profiles."""
        return normalise_email(self.email)

    @property
    def resource_updated_at(self) -> datetime | None:
        """The source resource's own last-change instant, when it has one."""
        return None


class CustomerUpserted(_Event):
    """customers/create, customers/update, customers/enable, customers/disable."""

    event_type: Literal["customer_upserted"] = "customer_upserted"
    customer_id: str
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    state: str | None = None
    tags: tuple[str, ...] | None = None
    """None when the payload has no tags (Shopify dropped them from customer webhooks in 2025-01)."""
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    email_consent: Consent | None = None
    """Present only when the payload carries email consent (pre-2025-01 payloads)."""
    sms_consent: Consent | None = None
    default_address: Address | None = None
    """The customer's default address; None when the payload has none."""

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.updated_at


class CustomerTagsChanged(_Event):
    """customer.tags_added / customer.tags_removed (2025-01+): some tags added to or removed from a customer."""

    event_type: Literal["customer_tags_changed"] = "customer_tags_changed"
    customer_id: str
    tags: tuple[str, ...]
    present: bool
    """True for tags_added, False for tags_removed."""
    occurred_at: UtcDatetime

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.occurred_at


class CustomerDeleted(_Event):
    """customers/delete. The payload has no timestamp, so `deleted_at` is the receipt time."""

    event_type: Literal["customer_deleted"] = "customer_deleted"
    customer_id: str
    deleted_at: UtcDatetime


class ConsentChanged(_Event):
    """customers_email_marketing_consent/update and customers_marketing_consent/update."""

    event_type: Literal["consent_changed"] = "consent_changed"
    phone: str | None = None
    channel: ConsentChannel
    state: ConsentState
    updated_at: UtcDatetime | None = None
    """Shopify's `consent_updated_at`; None when Shopify does not say."""
    opt_in_level: str | None = None

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.updated_at


class RefundObserved(_Event):
    """refunds/create, and every refund embedded in an order payload."""

    event_type: Literal["refund_observed"] = "refund_observed"
    refund_id: str
    order_id: str
    amount: Decimal
    """Money that actually went back: successful refund transactions only."""
    currency: str | None = None
    created_at: UtcDatetime | None = None

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.created_at


class OrderObserved(_Event):
    """orders/create, orders/paid, orders/updated, orders/cancelled, orders/fulfilled."""

    event_type: Literal["order_observed"] = "order_observed"
    order_id: str
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    cancelled: bool = False
    cancelled_at: UtcDatetime | None = None
    total: Decimal
    """The order's original total (shop money); refunds are recorded and subtracted separately."""
    currency: str | None = None
    financial_status: str | None = None
    test: bool = False
    checkout_token: str | None = None
    product_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    discount_codes: tuple[str, ...] = ()
    shipping_address: Address | None = None
    refunds: tuple[RefundObserved, ...] = ()

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.updated_at


class CheckoutObserved(_Event):
    """checkouts/create and checkouts/update."""

    event_type: Literal["checkout_observed"] = "checkout_observed"
    token: str
    phone: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None

    @property
    def last_activity_at(self) -> datetime | None:
        """When the shopper last touched the checkout."""
        return self.updated_at or self.created_at

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.last_activity_at


class PurchasingSummary(_Event):
    """customers/purchasing_summary: Shopify's own running totals for a customer.

    Informational only: Evergreen's order facts come from per-order records, which stay exact
    under refunds, cancellations and re-delivery. The reducer leaves the profile unchanged.
    """

    event_type: Literal["purchasing_summary"] = "purchasing_summary"
    customer_id: str
    orders_count: int | None = None
    amount_spent: Decimal | None = None
    currency: str | None = None
    last_order_id: str | None = None
    occurred_at: UtcDatetime | None = None

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.occurred_at


class DataRequested(_Event):
    """customers/data_request (compliance): export what is stored about the customer."""

    event_type: Literal["data_requested"] = "data_requested"
    shop_id: str | None = None
    shop_domain: str | None = None
    phone: str | None = None
    orders_requested: tuple[str, ...] = ()
    data_request_id: str | None = None
    requested_at: UtcDatetime


class CustomerRedactRequested(_Event):
    """customers/redact (compliance): delete everything stored about the customer."""

    event_type: Literal["customer_redact_requested"] = "customer_redact_requested"
    shop_id: str | None = None
    shop_domain: str | None = None
    phone: str | None = None
    orders: tuple[str, ...] = ()
    requested_at: UtcDatetime


class ShopRedactRequested(_Event):
    """shop/redact (compliance): delete everything stored about the shop."""

    event_type: Literal["shop_redact_requested"] = "shop_redact_requested"
    shop_id: str | None = None
    shop_domain: str | None = None
    requested_at: UtcDatetime


class BulkOperationFinished(_Event):
    """bulk_operations/finish: a bulk operation of this app ended (a wake-up for a waiting backfill).

    Not a profile write: the reducer leaves profiles unchanged. The backfill still asks Shopify for the
    operation's status, so a replayed or stray notice costs one poll and decides nothing.
    """

    event_type: Literal["bulk_operation_finished"] = "bulk_operation_finished"
    operation_id: str
    status: str | None = None
    error_code: str | None = None
    completed_at: UtcDatetime | None = None


class EngagementRecorded(_Event):
    """A Klaviyo engagement (open, click, bounce, spam, unsubscribe) for one person."""

    event_type: Literal["engagement_recorded"] = "engagement_recorded"
    kind: EngagementKind
    occurred_at: UtcDatetime
    phone: str | None = None
    klaviyo_profile_id: str | None = None

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.occurred_at


class ShopifySegmentChanged(_Event):
    """customer.joined_segment / customer.left_segment: a customer joined or left a Shopify customer segment.

    Shopify's documented body is `{"shop_id": gid, "customer_id": gid, "segment_id": gid}`: no time and no
    segment name, so `occurred_at` is the delivery's X-Shopify-Triggered-At (kept across retries), else its
    receipt time.
    """

    event_type: Literal["shopify_segment_changed"] = "shopify_segment_changed"
    customer_id: str
    segment_id: str
    member: bool
    """True for joined_segment, False for left_segment."""
    occurred_at: UtcDatetime

    @property
    def resource_updated_at(self) -> datetime | None:
        return self.occurred_at


ShopifyEvent = (
    CustomerUpserted
    | CustomerTagsChanged
    | ShopifySegmentChanged
    | CustomerDeleted
    | ConsentChanged
    | OrderObserved
    | RefundObserved
    | CheckoutObserved
    | PurchasingSummary
    | DataRequested
    | CustomerRedactRequested
    | ShopRedactRequested
    | BulkOperationFinished
)
"""Everything `evergreen.shopify.topics.translate` can return."""

DomainEvent = ShopifyEvent | EngagementRecorded
"""Everything `evergreen.domain.reducers.apply` accepts."""

DOMAIN_EVENTS: TypeAdapter[DomainEvent] = TypeAdapter(Annotated[DomainEvent, Field(discriminator="event_type")])
"""(De)serialises any domain event by its `event_type`, e.g. for queues and dead letters."""
