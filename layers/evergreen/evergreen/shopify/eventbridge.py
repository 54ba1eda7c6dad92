"""Shopify's Amazon EventBridge delivery: the event envelope, read into the fields an HTTPS delivery has (pure).

Shopify puts each webhook on the app's partner event source as an EventBridge event (shopify.dev, "Amazon
EventBridge webhook delivery"):

    {"version": "0", "id": "...", "detail-type": "shopifyWebhook",
     "source": "aws.partner/shopify.com/<app id>/<event source name>", "account": "...", "time": "...",
     "region": "...", "resources": [],
     "detail": {"payload": {<the topic's JSON body>},
                "metadata": {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                             "X-Shopify-Shop-Domain": "...", "X-Shopify-API-Version": "...",
                             "X-Shopify-Webhook-Id": "...", "X-Shopify-Event-Id": "...", ...}}}

`detail.metadata` carries the headers an HTTPS delivery would have. There is no signature to check: the body
was re-encoded as JSON inside the event, and AWS itself authenticates the partner source that put it on the bus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evergreen.shopify.headers import ConflictingHeaders, ShopifyHeaders, read_shopify_headers

DETAIL_TYPE = "shopifyWebhook"
"""Every Shopify webhook on EventBridge has this detail-type; the topic is in detail.metadata."""
PARTNER_SOURCE_PREFIX = "aws.partner/shopify.com/"
"""A Shopify partner event source is named aws.partner/shopify.com/<app id>/<event source name>."""
PARTNER_SOURCE_ARN = re.compile(r"arn:aws:events:[a-z0-9-]+::event-source/aws\.partner/shopify\.com/[0-9]+/[\w.\-]+")
"""The ARN a webhook subscription names as its `uri` to be delivered to EventBridge (fullmatch it)."""


class NotShopifyEnvelope(ValueError):
    """The event is not a Shopify webhook in EventBridge's envelope. The message names the field, never a value."""


@dataclass(frozen=True)
class EnvelopedWebhook:
    """A Shopify webhook taken out of its EventBridge envelope."""

    source: str
    headers: ShopifyHeaders
    payload: dict[str, Any]


def read_envelope(event: Mapping[str, Any]) -> EnvelopedWebhook:
    """The webhook inside a Shopify EventBridge event. Raises NotShopifyEnvelope."""
    if event.get("detail-type") != DETAIL_TYPE:
        raise NotShopifyEnvelope(f"detail-type is not {DETAIL_TYPE}")
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith(PARTNER_SOURCE_PREFIX):
        raise NotShopifyEnvelope(f"source is not a {PARTNER_SOURCE_PREFIX}... partner event source")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise NotShopifyEnvelope("detail is not an object")
    metadata, payload = detail.get("metadata"), detail.get("payload")
    if not isinstance(metadata, Mapping) or not all(isinstance(value, str) for value in metadata.values()):
        raise NotShopifyEnvelope("detail.metadata is not an object of header values")
    if not isinstance(payload, dict):
        raise NotShopifyEnvelope("detail.payload is not an object")
    try:
        headers = read_shopify_headers({str(name): value for name, value in metadata.items()})
    except ConflictingHeaders as error:
        raise NotShopifyEnvelope(str(error)) from error
    return EnvelopedWebhook(source, headers, payload)
