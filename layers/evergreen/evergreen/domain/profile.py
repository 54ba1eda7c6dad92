"""The unified customer profile: one per (shop, customer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evergreen.domain.facts import profile_facts
from evergreen.domain.location import Address
from evergreen.domain.orders import OrderRecord, OrderStats, RefundRecord

__all__ = ["Consent", "ConsentState", "Engagement", "OrderRecord", "OrderStats", "Profile", "RefundRecord"]

ConsentState = Literal["subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "invalid", "unknown"]

MERGED_GUESTS_KEPT = 20
"""How many merged guest keys a profile remembers (one per email it has had)."""

CUSTOMER_PREFIX = "customer#"
"""A customer profile's key is `customer#<Shopify customer id>`."""
GUEST_PREFIX = "guest#"
"""A guest profile's key (a buyer with no customer id yet) is `guest#<normalised email>`."""


def customer_profile_key(customer_id: str) -> str:
    """The key of a shop's customer profile: `customer#<Shopify customer id>`."""
    return f"{CUSTOMER_PREFIX}{customer_id}"


def guest_profile_key(email_normalized: str | None) -> str:
    """The key of a shop's guest profile: `guest#<normalised email>`."""
    return f"{GUEST_PREFIX}{email_normalized}"


def normalise_email(email: str | None) -> str | None:
    """Identity form of an email: trimmed and lower-cased; None when blank."""
    if email is None:
        return None
    cleaned = email.strip().lower()
    return cleaned or None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class Consent(_Model):
    state: ConsentState = "unknown"
    updated_at: datetime | None = None


class TagChange(_Model):
    """The last known state of one customer tag, and when Shopify said so."""

    tag: str
    present: bool
    at: datetime | None = None


class TagHistory(_Model):
    """Per-tag last changes, so `customer_tags` is exact under reordering and duplicates (newer wins)."""

    as_of: datetime | None = None
    """The newest full tag list applied: a tag it did not list was absent then."""
    changes: dict[str, TagChange] = Field(default_factory=dict)
    """By case-folded tag (Shopify's tags are case-insensitive)."""


class SegmentPresence(_Model):
    """Whether the customer is in one Shopify customer segment, as of Shopify's newest notice about it."""

    member: bool
    at: datetime


class Engagement(_Model):
    last_email_open_at: datetime | None = None
    last_email_click_at: datetime | None = None
    last_sms_click_at: datetime | None = None
    email_bounced: bool = False
    email_marked_spam: bool = False


class Profile(_Model):
    """Everything Evergreen knows about one customer of one shop."""

    shop: str
    customer_id: str | None = None
    """Shopify customer id as a string (exact for 64-bit ids). None for a guest keyed by email."""
    email: str | None = None
    """As given, for display."""
    email_normalized: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    klaviyo_profile_id: str | None = None

    customer_state: str | None = None
    customer_tags: list[str] = Field(default_factory=list)
    customer_tag_history: TagHistory = Field(default_factory=TagHistory)
    customer_created_at: datetime | None = None
    customer_updated_at: datetime | None = None
    default_address: Address | None = None
    """The customer's default address in Shopify (location facts fall back to it)."""
    shopify_segments: dict[str, SegmentPresence] = Field(default_factory=dict)
    """Shopify customer segments by segment id: the newest joined/left notice for each."""
    deleted: bool = False

    email_consent: Consent = Field(default_factory=Consent)
    sms_consent: Consent = Field(default_factory=Consent)

    order_stats: OrderStats = Field(default_factory=OrderStats)
    """Order aggregates; each order itself is its own item (see domain/orders.py)."""
    merged_guests: list[str] = Field(default_factory=list)
    """Keys of guest profiles folded into this one: their order items still name them as owner."""
    open_checkout_at: datetime | None = None
    """Last checkout started and not followed by an order (abandoned until an order arrives)."""
    open_checkout_token: str | None = None

    engagement: Engagement = Field(default_factory=Engagement)

    membership: dict[str, datetime] = Field(default_factory=dict)
    """Current segments, each with the instant the profile entered it."""
    version: int = 0
    next_transition_at: datetime | None = None
    definitions_hash: str | None = None
    klaviyo_properties: dict[str, Any] = Field(default_factory=dict)
    """The fact properties last sent to Klaviyo (the definitions' `klaviyo_properties`), to send only changes."""

    @property
    def key(self) -> str:
        """The profile's sort key inside its shop."""
        if self.customer_id is not None:
            return customer_profile_key(self.customer_id)
        return guest_profile_key(self.email_normalized)

    def facts(self) -> dict[str, Any]:
        """The flat facts the segment engine evaluates. See docs/facts.md."""
        return profile_facts(self)
