"""Shopify's EventBridge envelope reads into the same fields an HTTPS delivery's headers give; anything else is
refused with a reason that names a field, never a value."""

from __future__ import annotations

import copy

import pytest

from evergreen.shopify.eventbridge import NotShopifyEnvelope, read_envelope
from tests.shopify_eventbridge import SOURCE, eventbridge_event

SHOP = "envelope-test.myshopify.com"


def test_the_documented_envelope_gives_the_headers_and_the_body() -> None:
    event = eventbridge_event({"id": 1, "email": "a@example.com"}, "orders/create", SHOP, event_id="e-1")

    webhook = read_envelope(event)

    assert webhook.source == SOURCE
    assert (webhook.headers.topic, webhook.headers.shop, webhook.headers.event_id) == ("orders/create", SHOP, "e-1")
    assert webhook.headers.api_version == "2025-10"
    assert webhook.headers.hmac is None
    assert webhook.payload == {"id": 1, "email": "a@example.com"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda e: e.update({"detail-type": "Scheduled Event"}), "detail-type"),
        (lambda e: e.update({"source": "aws.partner/example.com/1/x"}), "source"),
        (lambda e: e.update({"source": "my.app"}), "source"),
        (lambda e: e.update({"detail": []}), "detail"),
        (lambda e: e["detail"].update({"payload": "{}"}), "detail.payload"),
        (lambda e: e["detail"].update({"metadata": {"X-Shopify-Topic": 1}}), "detail.metadata"),
        (lambda e: e["detail"]["metadata"].update({"shopify-topic": "customers/redact"}), "shopify-topic"),
    ],
)
def test_anything_but_a_shopify_webhook_event_is_refused(change, named) -> None:
    event = copy.deepcopy(eventbridge_event({"id": 1}, "orders/create", SHOP))
    change(event)

    with pytest.raises(NotShopifyEnvelope) as refused:
        read_envelope(event)

    assert named in str(refused.value)
    assert SHOP not in str(refused.value)
