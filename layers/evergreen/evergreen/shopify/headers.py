"""Shopify's two webhook header families, read with one rule (pure).

Shopify sends `X-Shopify-Hmac-Sha256`, `X-Shopify-Topic`, ... and, in its newer deliveries, the same
fields without the prefix: `shopify-hmac-sha256`, `shopify-topic`, ... (Shopify's own libraries read
either; see docs/shopify.md). The rule: **each field is read from whichever family carries it; where
both carry it, the two values must be equal, or the delivery is refused.** Picking one family over the
other would let a sender who adds the other family's header choose which value Evergreen believes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FIELDS: Mapping[str, str] = {
    "hmac": "hmac-sha256",
    "topic": "topic",
    "shop": "shop-domain",
    "webhook_id": "webhook-id",
    "event_id": "event-id",
    "api_version": "api-version",
    "triggered_at": "triggered-at",
}
"""Field → header name without its family prefix (`X-Shopify-` or `shopify-`)."""


class ConflictingHeaders(ValueError):
    """Both header families carry a field, with different values. The message names the header only."""

    def __init__(self, suffix: str) -> None:
        self.header = f"shopify-{suffix}"
        super().__init__(f"X-Shopify-{suffix} and shopify-{suffix} disagree")


@dataclass(frozen=True)
class ShopifyHeaders:
    hmac: str | None = None
    topic: str | None = None
    shop: str | None = None
    webhook_id: str | None = None
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: str | None = None


def read_shopify_headers(headers: Mapping[str, str]) -> ShopifyHeaders:
    """The Shopify fields of a request's headers (names case-insensitive). Raises ConflictingHeaders."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found: dict[str, str | None] = {}
    for field, suffix in FIELDS.items():
        legacy = lowered.get(f"x-shopify-{suffix}") or None
        current = lowered.get(f"shopify-{suffix}") or None
        if legacy is not None and current is not None and legacy.strip() != current.strip():
            raise ConflictingHeaders(suffix)
        found[field] = legacy if legacy is not None else current
    return ShopifyHeaders(**found)
