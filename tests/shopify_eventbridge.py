"""Shopify webhooks as Shopify puts them on Amazon EventBridge (shopify.dev, "Amazon EventBridge webhook delivery")."""

from __future__ import annotations

import json
import uuid
from typing import Any

SOURCE = "aws.partner/shopify.com/1830279/evergreen-test"
"""A partner event source name as AWS gives it: aws.partner/shopify.com/<app id>/<event source name>."""


def eventbridge_event(
    payload: dict[str, Any], topic: str, shop: str, event_id: str | None = None, source: str = SOURCE
) -> dict[str, Any]:
    """The EventBridge event for one webhook: the body in detail.payload, the HTTPS headers in detail.metadata."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "shopifyWebhook",
        "source": source,
        "account": "123456789012",
        "time": "2026-11-27T05:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "payload": payload,
            "metadata": {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": shop,
                "X-Shopify-API-Version": "2025-10",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
                "X-Shopify-Triggered-At": "2026-11-27T05:00:00.000000Z",
            },
        },
    }


def sqs_record(event: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    """The SQS record the partner bus's rule makes of the event (its body is the whole event)."""
    message_id = message_id or str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:shopify-events",
        "awsRegion": "us-east-1",
    }
