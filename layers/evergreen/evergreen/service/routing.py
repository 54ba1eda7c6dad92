"""Which profile an event belongs to."""

from __future__ import annotations

from evergreen.domain.profile import Profile
from evergreen.service.ports import ProfileStore

CUSTOMER_PREFIX = "customer#"
GUEST_PREFIX = "guest#"


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
