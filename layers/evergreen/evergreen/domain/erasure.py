"""What an erasure leaves behind: tombstones that name who was forgotten without keeping who it was (pure).

A `customers/redact` tombstones the customer id, the order ids it names or finds, and hashes of the email and
phone; a `shop/redact` tombstones the shop. Every later write checks the tombstones its delivery names
(`ErasureGuard`): an id tombstone stops every delivery, an address or shop tombstone stops deliveries whose
own timestamp is not after the erasure (a customer who comes back later with the same email is new).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from evergreen.domain.events import DomainEvent
from evergreen.domain.profile import normalise_email

TombstoneKind = Literal["customer", "order", "email", "phone", "shop"]

PERMANENT_KINDS: frozenset[str] = frozenset({"customer", "order"})
"""Kept for good: Shopify ids identify nobody once Shopify itself has forgotten them, and a signed body can be
replayed at any time (its signature never expires)."""
ADDRESS_TOMBSTONE_KEPT = timedelta(days=30)
"""How long address (email, phone) and shop tombstones are kept: Shopify retries for 4 hours, Klaviyo for 24
(and Evergreen refuses a Klaviyo delivery signed more than 25 hours ago), so 30 days leaves a wide margin. An
email hash is still personal data (it can be confirmed by hashing a guess), so it is not kept for good."""


@dataclass(frozen=True)
class Tombstone:
    """One erased name: a Shopify customer or order id, a hashed address, or the shop itself (`name` empty)."""

    kind: TombstoneKind
    name: str = ""

    @property
    def permanent(self) -> bool:
        """Whether it stops every delivery that names it, whatever the delivery's age."""
        return self.kind in PERMANENT_KINDS


def address_hash(shop: str, value: str) -> str:
    """SHA-256 of the shop and a normalised email or phone: the tombstone's name, never the address itself."""
    return hashlib.sha256(f"{shop}\n{value}".encode()).hexdigest()


def normalise_phone(phone: str | None) -> str | None:
    """The digits of a phone number (Shopify and Klaviyo format the same number differently)."""
    digits = re.sub(r"\D", "", phone or "")
    return digits or None


def tombstones_for(
    shop: str,
    *,
    customer_ids: Iterable[str | None] = (),
    order_ids: Iterable[str] = (),
    emails: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
) -> tuple[Tombstone, ...]:
    """The tombstones naming these ids and addresses (emails as given: they are normalised here)."""
    found: list[Tombstone] = [Tombstone("customer", c) for c in customer_ids if c]
    found += [Tombstone("order", order_id) for order_id in order_ids if order_id]
    found += [Tombstone("email", address_hash(shop, e)) for e in map(normalise_email, emails) if e]
    found += [Tombstone("phone", address_hash(shop, p)) for p in map(normalise_phone, phones) if p]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class ErasureGuard:
    """The tombstones one delivery names, and how old it is: what a write must not cross."""

    tombstones: tuple[Tombstone, ...]
    occurred_at: datetime | None = None
    """The delivery's own timestamp; None (no timestamp) counts as older than any erasure."""

    def crosses(self, tombstone: Tombstone, erased_at: datetime) -> bool:
        """Whether this delivery is stopped by `tombstone`, written at `erased_at`."""
        return tombstone.permanent or self.occurred_at is None or self.occurred_at <= erased_at

    def blocked_by(self, erased: Mapping[Tombstone, datetime]) -> bool:
        """Whether any of the stored tombstones (tombstone -> when it was written) stops this delivery."""
        return any(self.crosses(t, erased[t]) for t in self.tombstones if t in erased)


NO_GUARD = ErasureGuard(())
"""For writes no delivery caused (tests, tools): nothing to check."""


def guard_for(shop: str, event: DomainEvent) -> ErasureGuard:
    """The tombstones `event` names: its shop, customer, order, email and phone."""
    order_id = getattr(event, "order_id", None)
    phone = getattr(event, "phone", None)
    named = tombstones_for(
        shop,
        customer_ids=[event.customer_id],
        order_ids=[order_id] if isinstance(order_id, str) else [],
        emails=[event.email],
        phones=[phone if isinstance(phone, str) else None],
    )
    return ErasureGuard((Tombstone("shop"), *named), event.resource_updated_at)
