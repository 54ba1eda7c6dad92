"""Shopify webhooks delivered through EventBridge go through the same ingest as HTTPS ones: applied once,
refused input dropped without a write, a storage failure retried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.shopify_eventbridge import eventbridge_event, sqs_record

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
CUSTOMER = "customer#115310627314723954"


def _order() -> dict[str, Any]:
    order: dict[str, Any] = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    return order


def _items(handlers: dict[str, Any]) -> list[dict[str, Any]]:
    edges = handlers["shopify_eventbridge"].edges
    items: list[dict[str, Any]] = edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]
    return items


def test_an_order_from_eventbridge_is_applied_once_even_when_delivered_twice(handlers, context):
    app = handlers["shopify_eventbridge"]
    event = eventbridge_event(_order(), "orders/create", SHOP, event_id="bfcm-1")

    first = app.lambda_handler({"Records": [sqs_record(event)]}, context)
    again = app.lambda_handler({"Records": [sqs_record(event)]}, context)

    assert first == again == {"batchItemFailures": []}
    profile = app.edges.store.load(SHOP, CUSTOMER)
    assert profile is not None and profile.order_stats.count == 1
    assert "new" in profile.membership


def test_events_that_are_not_shopify_webhooks_or_that_the_ingest_refuses_are_dropped_unwritten(handlers, context):
    app = handlers["shopify_eventbridge"]
    before = _items(handlers)
    not_shopify = eventbridge_event(_order(), "orders/create", SHOP, source="aws.partner/example.com/1/other")
    malformed = eventbridge_event({"id": "not an order"}, "orders/create", SHOP)
    elsewhere = eventbridge_event(_order(), "orders/create", "not-a-shop.example.com")
    records = [sqs_record(event) for event in (not_shopify, malformed, elsewhere)]
    records.append({**sqs_record(not_shopify), "body": "{not json"})

    answer = app.lambda_handler({"Records": records}, context)

    assert answer == {"batchItemFailures": []}, "retrying cannot fix any of them"
    assert _items(handlers) == before


def test_a_storage_failure_is_reported_so_sqs_retries_the_event(handlers, context):
    app = handlers["shopify_eventbridge"]
    app.edges.dynamodb.delete_table(TableName=app.edges.settings.profiles_table)
    record = sqs_record(eventbridge_event(_order(), "orders/create", SHOP), message_id="retry-me")

    answer = app.lambda_handler({"Records": [record]}, context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "retry-me"}]}
