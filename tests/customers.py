"""A stored-shape customer for tests: customer `number` of a shop, with one counted order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders


def customer_with_order(
    shop: str,
    number: int,
    ordered_at: datetime,
    total: str | Decimal = "20.00",
    *,
    order_id: str | None = None,
    email: str | None = None,
) -> Profile:
    """Customer `number` (email `c<number>@example.com` unless given) whose one order was placed at `ordered_at`."""
    address = email or f"c{number}@example.com"
    profile = Profile(shop=shop, customer_id=str(number), email=address, email_normalized=address)
    order = OrderRecord(order_id=order_id or str(number), created_at=ordered_at, total=Decimal(total))
    return with_orders(profile, [order])
