"""Orders: what one order is (its newest snapshot and its refunds) and the bounded aggregates a profile keeps.

Each order lives in its own item (`OrderState`); the profile carries only `OrderStats`, whose size does not
grow with the number of orders. The aggregates move by contributions: applying an event to an order
replaces that order's old contribution with its new one, so updates, cancels, refunds and re-delivery stay
exact.

Sums and counts are exact by arithmetic. The facts that need an order statistic (first and last order time,
the smallest product types and tags) come from bounded windows: each window is always a prefix of the
sorted values of the counted orders, so it answers exactly while it is not empty. A window shrinks only
when an order inside it stops counting (a cancel, a void, a test flag); new orders refill it from the top.
Only when a window has run out (`needs_rebuild`) must the service read the customer's order items and
`rebuild` from them: for the time windows that takes more than `ORDER_TIMES_KEPT` of the newest (or oldest)
counted orders ceasing to count without newer ones arriving; for product types and tags, more than
`SET_VALUES_KEPT - BOUNDED_SET_SIZE` of the smallest distinct values disappearing.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from evergreen.domain.facts import BOUNDED_SET_SIZE, is_counted
from evergreen.domain.location import Address

ORDER_TIMES_KEPT = 20
"""How many of the newest and of the oldest counted orders' times a profile keeps."""
SET_VALUES_KEPT = 2 * BOUNDED_SET_SIZE
"""How many of the smallest distinct product types (and order tags) a profile counts."""
CHECKOUT_TOKENS_KEPT = 20
"""Checkout tokens of the most recently seen orders, so a late checkout event cannot reopen them."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class OrderRecord(_Model):
    """The newest snapshot of one order: what it contributes to the profile."""

    order_id: str
    created_at: datetime
    updated_at: datetime | None = None
    total: Decimal = Decimal(0)
    currency: str | None = None
    financial_status: str | None = None
    cancelled: bool = False
    test: bool = False
    checkout_token: str | None = None
    product_types: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)
    product_ids: list[str] = Field(default_factory=list)
    discount_codes: list[str] = Field(default_factory=list)
    shipping_address: Address | None = None


class RefundRecord(_Model):
    """One refund, keyed by its id, so a refund before its order or twice counts once."""

    refund_id: str
    order_id: str
    amount: Decimal
    created_at: datetime | None = None


OrderMark = tuple[datetime, str]
"""When a counted order was placed, and its id (which breaks ties)."""

VALUE_SETS = ("product_types", "tags", "vendors", "product_ids", "discount_codes")
"""The per-order value lists whose smallest values the profile counts (same name on the order and the stats)."""


@dataclass(frozen=True)
class Contribution:
    """What one counted order adds to its profile's aggregates."""

    mark: OrderMark
    amount: Decimal
    product_types: frozenset[str]
    tags: frozenset[str]
    vendors: frozenset[str] = frozenset()
    product_ids: frozenset[str] = frozenset()
    discount_codes: frozenset[str] = frozenset()
    address: Address | None = None
    """The order's shipping address, when it has one."""


class OrderState(_Model):
    """Everything known about one order: its newest snapshot (None while only refunds are known) and refunds."""

    order: OrderRecord | None = None
    refunds: dict[str, RefundRecord] = Field(default_factory=dict)

    def contribution(self) -> Contribution | None:
        """What this order adds to the profile's facts; None when it does not count."""
        order = self.order
        if order is None or not is_counted(order):
            return None
        refunded = sum((refund.amount for refund in self.refunds.values()), Decimal(0))
        return Contribution(
            mark=(order.created_at, order.order_id),
            amount=order.total - refunded,
            product_types=frozenset(t for t in order.product_types if t),
            tags=frozenset(t for t in order.tags if t),
            vendors=frozenset(v for v in order.vendors if v),
            product_ids=frozenset(p for p in order.product_ids if p),
            discount_codes=frozenset(c for c in order.discount_codes if c),
            address=None if order.shipping_address is None or order.shipping_address.empty else order.shipping_address,
        )


def _window_add(window: list[OrderMark], mark: OrderMark, count_before: int, newest_first: bool) -> list[OrderMark]:
    """The window with `mark` added, kept a prefix of all counted marks in its order."""
    if len(window) != count_before:  # the window does not hold every counted order
        if not window:
            return window
        beyond = mark < window[-1] if newest_first else mark > window[-1]
        if beyond:
            return window
    if newest_first:
        position = next((index for index, kept in enumerate(window) if mark > kept), len(window))
    else:
        position = bisect.bisect_left(window, mark)
    return [*window[:position], mark, *window[position:]][:ORDER_TIMES_KEPT]


def _window_merge(
    first: list[OrderMark], first_count: int, second: list[OrderMark], second_count: int, newest_first: bool
) -> list[OrderMark]:
    """The window over two disjoint sets of orders, cut where either side's knowledge ends."""
    ordered = sorted([*first, *second], reverse=newest_first)
    for window, count in ((first, first_count), (second, second_count)):
        if len(window) == count:
            continue
        if not window:
            return []
        last = window[-1]
        ordered = [m for m in ordered if (m >= last if newest_first else m <= last)]
    return ordered[:ORDER_TIMES_KEPT]


class ValueCounts(_Model):
    """How many counted orders carry each value, for the smallest values only.

    `counts` always holds the smallest `len(counts)` distinct values present; `complete` says it holds them all.
    """

    counts: dict[str, int] = Field(default_factory=dict)
    complete: bool = True

    def changed(self, removed: Iterable[str], added: Iterable[str]) -> ValueCounts:
        counts = dict(self.counts)
        for value in removed:
            if value in counts:
                counts[value] -= 1
                if counts[value] <= 0:
                    del counts[value]
        complete = self.complete
        for value in added:
            if value in counts:
                counts[value] += 1
            elif complete or (counts and value < max(counts)):
                counts[value] = 1
            if len(counts) > SET_VALUES_KEPT:
                del counts[max(counts)]
                complete = False
        if counts == self.counts and complete == self.complete:
            return self
        return ValueCounts(counts=counts, complete=complete)

    def merged(self, other: ValueCounts) -> ValueCounts:
        counts = dict(self.counts)
        for value, count in other.counts.items():
            counts[value] = counts.get(value, 0) + count
        for side in (self, other):
            if side.complete:
                continue
            if not side.counts:
                return ValueCounts(counts={}, complete=False)
            limit = max(side.counts)
            counts = {value: count for value, count in counts.items() if value <= limit}
        complete = self.complete and other.complete
        kept = dict(sorted(counts.items())[:SET_VALUES_KEPT])
        return ValueCounts(counts=kept, complete=complete and len(kept) == len(counts))

    def smallest(self) -> frozenset[str]:
        """The fact: the first `BOUNDED_SET_SIZE` values in sorted order."""
        return frozenset(sorted(self.counts)[:BOUNDED_SET_SIZE])

    @property
    def exhausted(self) -> bool:
        return not self.complete and len(self.counts) < BOUNDED_SET_SIZE


def _addresses_in(latest: list[OrderMark], addresses: dict[str, Address]) -> dict[str, Address]:
    """The addresses of the orders still in the `latest` window, newest first."""
    return {order_id: addresses[order_id] for _, order_id in latest if order_id in addresses}


def _value_counts(counts: Counter[str]) -> ValueCounts:
    kept = dict(sorted(counts.items())[:SET_VALUES_KEPT])
    return ValueCounts(counts=kept, complete=len(kept) == len(counts))


class OrderStats(_Model):
    """A profile's order aggregates: bounded, whatever the number of orders."""

    count: int = 0
    """Counted orders (see `facts.is_counted`)."""
    net_spent: Decimal = Decimal(0)
    """Totals of counted orders less their refunds."""
    latest: list[OrderMark] = Field(default_factory=list)
    """The newest counted orders, newest first (a prefix of all of them)."""
    earliest: list[OrderMark] = Field(default_factory=list)
    """The oldest counted orders, oldest first (a prefix of all of them)."""
    product_types: ValueCounts = Field(default_factory=ValueCounts)
    tags: ValueCounts = Field(default_factory=ValueCounts)
    vendors: ValueCounts = Field(default_factory=ValueCounts)
    product_ids: ValueCounts = Field(default_factory=ValueCounts)
    discount_codes: ValueCounts = Field(default_factory=ValueCounts)
    addresses: dict[str, Address] = Field(default_factory=dict)
    """Shipping addresses of the orders in `latest` that have one, by order id."""
    last_placed_at: datetime | None = None
    """The newest creation time of any order seen, counted or not (an order closes older checkouts)."""
    checkout_tokens: list[str] = Field(default_factory=list)
    """Checkout tokens of the most recently seen orders."""

    def replaced(self, old: Contribution | None, new: Contribution | None) -> OrderStats:
        """The aggregates after one order's contribution changed from `old` to `new`."""
        if old == new:
            return self
        count, net, latest, earliest = self.count, self.net_spent, list(self.latest), list(self.earliest)
        same_mark = old is not None and new is not None and old.mark == new.mark
        if old is not None:
            count -= 1
            net -= old.amount
            if not same_mark:
                latest = [m for m in latest if m != old.mark]
                earliest = [m for m in earliest if m != old.mark]
        if new is not None:
            if not same_mark:
                latest = _window_add(latest, new.mark, count, newest_first=True)
                earliest = _window_add(earliest, new.mark, count, newest_first=False)
            count += 1
            net += new.amount
        update: dict[str, object] = {"count": count, "net_spent": net, "latest": latest, "earliest": earliest}
        for name in VALUE_SETS:
            before: frozenset[str] = getattr(old, name) if old else frozenset()
            after: frozenset[str] = getattr(new, name) if new else frozenset()
            update[name] = getattr(self, name).changed(sorted(before - after), sorted(after - before))
        addresses = dict(self.addresses)
        if old is not None:
            addresses.pop(old.mark[1], None)
        if new is not None and new.address is not None:
            addresses[new.mark[1]] = new.address
        update["addresses"] = _addresses_in(latest, addresses)
        return self.model_copy(update=update)

    def observed(self, order: OrderRecord) -> OrderStats:
        """Remember that an order exists, counted or not (for closing checkouts)."""
        last = self.last_placed_at if self.last_placed_at and self.last_placed_at >= order.created_at else None
        tokens = self.checkout_tokens
        token = order.checkout_token
        if token and token not in tokens:
            tokens = [*tokens, token][-CHECKOUT_TOKENS_KEPT:]
        update = {"last_placed_at": last or order.created_at, "checkout_tokens": tokens}
        if update == {"last_placed_at": self.last_placed_at, "checkout_tokens": self.checkout_tokens}:
            return self
        return self.model_copy(update=update)

    def closes_checkout(self, token: str | None, at: datetime) -> bool:
        """Whether an order seen already ended a checkout last active at `at`."""
        if token is not None and token in self.checkout_tokens:
            return True
        return self.last_placed_at is not None and self.last_placed_at >= at

    def merged(self, other: OrderStats) -> OrderStats:
        """The aggregates over two disjoint sets of orders (a guest folded into a customer)."""
        tokens = [*self.checkout_tokens, *(t for t in other.checkout_tokens if t not in self.checkout_tokens)]
        placed = [at for at in (self.last_placed_at, other.last_placed_at) if at is not None]
        latest = _window_merge(self.latest, self.count, other.latest, other.count, newest_first=True)
        return OrderStats(
            count=self.count + other.count,
            net_spent=self.net_spent + other.net_spent,
            latest=latest,
            earliest=_window_merge(self.earliest, self.count, other.earliest, other.count, newest_first=False),
            **{name: getattr(self, name).merged(getattr(other, name)) for name in VALUE_SETS},
            addresses=_addresses_in(latest, {**other.addresses, **self.addresses}),
            last_placed_at=max(placed) if placed else None,
            checkout_tokens=tokens[-CHECKOUT_TOKENS_KEPT:],
        )

    @property
    def needs_rebuild(self) -> bool:
        """A window ran out: the facts it answers need the order items themselves."""
        windows_empty = self.count > 0 and (not self.latest or not self.earliest)
        return windows_empty or any(getattr(self, name).exhausted for name in VALUE_SETS)

    def rebuilt(self, states: Iterable[OrderState]) -> OrderStats:
        """Fresh windows and sums from every order of the profile; order-presence facts are kept."""
        contributions = [c for c in (state.contribution() for state in states) if c is not None]
        marks = [c.mark for c in contributions]
        latest = heapq.nlargest(ORDER_TIMES_KEPT, marks)
        return OrderStats(
            count=len(contributions),
            net_spent=sum((c.amount for c in contributions), Decimal(0)),
            latest=latest,
            earliest=heapq.nsmallest(ORDER_TIMES_KEPT, marks),
            **{name: _value_counts(Counter(v for c in contributions for v in getattr(c, name))) for name in VALUE_SETS},
            addresses=_addresses_in(latest, {c.mark[1]: c.address for c in contributions if c.address is not None}),
            last_placed_at=self.last_placed_at,
            checkout_tokens=self.checkout_tokens,
        )

    @property
    def first_order_at(self) -> datetime | None:
        return self.earliest[0][0] if self.count and self.earliest else None

    @property
    def last_order_at(self) -> datetime | None:
        return self.latest[0][0] if self.count and self.latest else None
