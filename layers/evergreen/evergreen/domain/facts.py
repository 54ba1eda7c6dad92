"""Flat facts derived from a profile: the only input the segment engine sees.

Counted orders: every order that is neither cancelled nor a test order nor voided, paid or
still pending payment (Shopify's own "orders count" counts pending orders too). Net spent is
the sum of their totals less every refund recorded against them. The profile carries these as
bounded aggregates (`domain/orders.py`), kept exact per order.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evergreen.domain.location import Address
    from evergreen.domain.orders import OrderRecord
    from evergreen.domain.profile import Profile

UNCOUNTED_FINANCIAL_STATUSES = frozenset({"voided"})
BOUNDED_SET_SIZE = 50
"""At most this many product types, product ids, vendors, discount codes and order tags are kept as facts."""
MIN_ORDERS_FOR_PREDICTION = 3
"""`expected_next_order_at` needs this many counted orders (two gaps between them) before it has a value."""
AB_BUCKETS = 100
"""`ab_bucket` is 0 to AB_BUCKETS - 1."""

FACT_TYPES: dict[str, str] = {
    "orders_count": "number",
    "net_spent": "money",
    "average_order_value": "money",
    "first_order_at": "timestamp",
    "last_order_at": "timestamp",
    "product_types_bought": "set",
    "order_tags": "set",
    "customer_tags": "set",
    "customer_state": "string",
    "customer_created_at": "timestamp",
    "email_consent": "string",
    "email_consent_updated_at": "timestamp",
    "sms_consent": "string",
    "sms_consent_updated_at": "timestamp",
    "has_email": "boolean",
    "has_phone": "boolean",
    "last_email_open_at": "timestamp",
    "last_email_click_at": "timestamp",
    "last_sms_click_at": "timestamp",
    "last_engaged_at": "timestamp",
    "email_bounced": "boolean",
    "email_marked_spam": "boolean",
    "open_checkout_at": "timestamp",
    "country_code": "string",
    "province_code": "string",
    "city": "string",
    "postal_code": "string",
    "coordinates": "point",
    "expected_next_order_at": "timestamp",
    "ab_bucket": "number",
    "vendors_bought": "set",
    "product_ids_bought": "set",
    "discount_codes_used": "set",
    "shopify_segments": "set",
}
"""Every fact name with its kind; the segment definitions schema checks against this."""


def is_counted(order: OrderRecord) -> bool:
    return not (order.cancelled or order.test or order.financial_status in UNCOUNTED_FINANCIAL_STATUSES)


def _latest(*instants: datetime | None) -> datetime | None:
    present = [at for at in instants if at is not None]
    return max(present) if present else None


def location(profile: Profile) -> Address | None:
    """The address the location facts read: the newest counted order's shipping address (among the
    `ORDER_TIMES_KEPT` newest orders, skipping those shipped nowhere), else the customer's default address."""
    newest_shipped = next(iter(profile.order_stats.addresses.values()), None)  # newest first
    return newest_shipped or profile.default_address


def expected_next_order_at(order_times: list[datetime], orders_count: int) -> datetime | None:
    """The last order plus the median gap between consecutive counted orders (the newest ones the profile keeps),
    once there are `MIN_ORDERS_FOR_PREDICTION` orders; `order_times` is newest first."""
    if orders_count < MIN_ORDERS_FOR_PREDICTION or len(order_times) < MIN_ORDERS_FOR_PREDICTION:
        return None
    gaps = sorted([newer - older for newer, older in itertools.pairwise(order_times)])
    middle = len(gaps) // 2
    median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    return order_times[0] + median


@functools.lru_cache(maxsize=65_536)
def ab_bucket(shop: str, profile_key: str) -> int:
    """A stable pseudo-random bucket, 0-99, from the shop and the profile's key (SHA-256, so uniform)."""
    digest = hashlib.sha256(f"{shop}\n{profile_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % AB_BUCKETS


def profile_facts(profile: Profile) -> dict[str, Any]:
    stats = profile.order_stats
    engagement = profile.engagement
    address = location(profile)
    return {
        "orders_count": stats.count,
        "net_spent": stats.net_spent,
        "average_order_value": (stats.net_spent / stats.count).quantize(Decimal("0.01")) if stats.count else None,
        "first_order_at": stats.first_order_at,
        "last_order_at": stats.last_order_at,
        "product_types_bought": stats.product_types.smallest(),
        "order_tags": stats.tags.smallest(),
        "customer_tags": frozenset(profile.customer_tags),
        "customer_state": profile.customer_state,
        "customer_created_at": profile.customer_created_at,
        "email_consent": profile.email_consent.state,
        "email_consent_updated_at": profile.email_consent.updated_at,
        "sms_consent": profile.sms_consent.state,
        "sms_consent_updated_at": profile.sms_consent.updated_at,
        "has_email": profile.email_normalized is not None,
        "has_phone": profile.phone is not None,
        "last_email_open_at": engagement.last_email_open_at,
        "last_email_click_at": engagement.last_email_click_at,
        "last_sms_click_at": engagement.last_sms_click_at,
        "last_engaged_at": _latest(
            engagement.last_email_open_at, engagement.last_email_click_at, engagement.last_sms_click_at
        ),
        "email_bounced": engagement.email_bounced,
        "email_marked_spam": engagement.email_marked_spam,
        "open_checkout_at": profile.open_checkout_at,
        "country_code": address.country_code if address else None,
        "province_code": address.province_code if address else None,
        "city": address.city if address else None,
        "postal_code": address.postal_code if address else None,
        "coordinates": address.coordinates if address else None,
        "expected_next_order_at": None
        if stats.count < MIN_ORDERS_FOR_PREDICTION
        else expected_next_order_at([at for at, _ in stats.latest], stats.count),
        "ab_bucket": ab_bucket(profile.shop, profile.key),
        "vendors_bought": stats.vendors.smallest(),
        "product_ids_bought": stats.product_ids.smallest(),
        "discount_codes_used": stats.discount_codes.smallest(),
        "shopify_segments": frozenset(key for key, presence in profile.shopify_segments.items() if presence.member),
    }
