"""Which profile an event belongs to."""

from __future__ import annotations

from evergreen.domain.profile import CUSTOMER_PREFIX, GUEST_PREFIX, Profile, guest_profile_key
from evergreen.service.ports import ProfileStore

__all__ = ["CUSTOMER_PREFIX", "GUEST_PREFIX", "guest_key", "profile_at", "profile_for"]


def profile_for(store: ProfileStore, shop: str, customer_id: str | None, email: str | None) -> Profile | None:
    """The customer by id; else the shop's customer with that email; else a guest keyed by the email.

    Returns a blank profile with the right key (the writer loads what is stored), or None when the
    event names neither a customer nor an email.
    """
    if customer_id is not None:
        return Profile(shop=shop, customer_id=customer_id)
    if email is None:
        return None
    key = store.customer_key_for_email(shop, email)
    if key is not None:
        return Profile(shop=shop, customer_id=key.removeprefix(CUSTOMER_PREFIX))
    return Profile(shop=shop, email_normalized=email)


def profile_at(shop: str, profile_key: str) -> Profile:
    """A blank profile with this key (a customer's or a guest's)."""
    if profile_key.startswith(CUSTOMER_PREFIX):
        return Profile(shop=shop, customer_id=profile_key.removeprefix(CUSTOMER_PREFIX))
    return Profile(shop=shop, email_normalized=profile_key.removeprefix(GUEST_PREFIX))


def guest_key(shop: str, email_normalized: str) -> str:
    """The key of the guest profile for an email (the same in every shop)."""
    return guest_profile_key(email_normalized)
