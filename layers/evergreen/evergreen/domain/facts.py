"""Flat facts derived from a profile: the only input the segment engine sees.

Counted orders: every order that is neither cancelled nor a test order nor voided, paid or
still pending payment (Shopify's own "orders count" counts pending orders too). Net spent is
the sum of their totals less every refund recorded against them. The profile carries these as
bounded aggregates (`domain/orders.py`), kept exact per order.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evergreen.domain.orders import OrderRecord
    from evergreen.domain.profile import Profile

UNCOUNTED_FINANCIAL_STATUSES = frozenset({"voided"})
BOUNDED_SET_SIZE = 50
"""At most this many product types and order tags are kept as facts."""

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
}
"""Every fact name with its kind; the segment definitions schema checks against this."""


def is_counted(order: OrderRecord) -> bool:
    return not (order.cancelled or order.test or order.financial_status in UNCOUNTED_FINANCIAL_STATUSES)


def _latest(*instants: datetime | None) -> datetime | None:
    present = [at for at in instants if at is not None]
    return max(present) if present else None


def profile_facts(profile: Profile) -> dict[str, Any]:
    stats = profile.order_stats
    engagement = profile.engagement
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
    }
