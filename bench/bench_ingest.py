"""Ingest figures: DynamoDB requests and handler time per Shopify webhook, by topic, on in-process moto.

ingest.ddb_requests_per_webhook  {topic: requests}   first delivery of each sample; every DynamoDB API call
                                                     (GetItem, BatchGetItem, Query, UpdateItem, TransactWriteItems, ...)
                                                     is one request
ingest.ddb_operations            {"topic: Operation": calls}   the same, by operation
ingest.handler_ms_p50            {topic: ms}         the whole Lambda handler, median
ingest.floor_ms_p50              ms                  HMAC check + one consistent GetItem + one conditional write
                                                     of the raw body (the fair floor of a webhook)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import io
import json
import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench.myshopify.com"
SECRET = "bench-shopify-secret"
ROUNDS = 30

# topic -> sample payload in events/shopify, in the order a store produces them
SAMPLES = [
    ("customers/create", "customers_create.json"),
    ("orders/create", "orders_create.json"),
    ("orders/paid", "orders_paid.json"),
    ("refunds/create", "refunds_create.json"),
    ("checkouts/create", "checkouts_create.json"),
    ("customers_email_marketing_consent/update", "customers_email_marketing_consent_update.json"),
    ("customers/update", "customers_update.json"),
    ("orders/cancelled", "orders_cancelled.json"),
    ("customers/data_request", "customers_data_request.json"),
    ("customers/redact", "customers_redact.json"),
]


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_SERVICE_NAME": "evergreen",
            "POWERTOOLS_METRICS_NAMESPACE": "Evergreen",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


def _load_handler() -> ModuleType:
    path = ROOT / "functions" / "shopify_webhook" / "app.py"
    spec = importlib.util.spec_from_file_location("bench_shopify_webhook_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(topic: str, body: bytes) -> dict[str, Any]:
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.http_api import build_http_api_v2_event  # noqa: PLC0415 - after the environment is set

    headers = shopify_headers(body, topic, SHOP, SECRET)
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)


def _vary(topic: str, body: dict[str, Any], n: int) -> bytes:
    """The sample for round n's customer and order, so every round is one customer's life, first deliveries."""
    varied = json.loads(json.dumps(body))
    customer_id, order_id = 7_000_000_000_000_000 + n, 9_000_000_000_000_000 + n
    if topic.startswith("customers/"):
        varied["id"] = customer_id
    if topic.startswith("orders/"):
        varied["id"] = order_id
    if "order_id" in varied:
        varied["order_id"] = order_id
    if "customer_id" in varied:
        varied["customer_id"] = customer_id
    if isinstance(varied.get("customer"), dict):
        varied["customer"]["id"] = customer_id
    if "shop_domain" in varied:  # a compliance request names the shop it is for
        varied["shop_domain"] = SHOP
    return json.dumps(varied).encode()


def run() -> dict[str, object]:
    _environment()
    from moto import mock_aws  # noqa: PLC0415

    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        from evergreen_cli.local_stack.inprocess import create_resources  # noqa: PLC0415
        from evergreen_cli.local_stack.lambda_runtime import LambdaContext  # noqa: PLC0415

        os.environ.update(create_resources({SHOP: SECRET}, {}))
        handler = _load_handler()
        calls: Counter[str] = Counter()
        operations: Counter[str] = Counter()

        def count(event_name: str, **_: Any) -> None:
            calls.update(["n"])
            operations.update([event_name.rsplit(".", 1)[-1]])

        handler.edges.dynamodb.meta.events.register("after-call.dynamodb", count)
        context = LambdaContext(
            "bench", 512, "arn:aws:lambda:us-east-1:123456789012:function:bench", timeout_seconds=10
        )
        requests: dict[str, list[int]] = {}
        by_operation: dict[str, list[int]] = {}
        timings: dict[str, list[float]] = {}
        for n in range(ROUNDS):
            for topic, sample in SAMPLES:
                event = _event(topic, _vary(topic, json.loads((ROOT / "events" / "shopify" / sample).read_text()), n))
                calls.clear()
                operations.clear()
                started = time.perf_counter()
                answer = handler.lambda_handler(event, context)
                timings.setdefault(topic, []).append((time.perf_counter() - started) * 1000)
                assert answer["statusCode"] == 200, (topic, answer)
                requests.setdefault(topic, []).append(calls["n"])
                for operation, number in operations.items():
                    by_operation.setdefault(f"{topic}: {operation}", []).append(number)
                if topic == "orders/create":
                    calls.clear()
                    handler.lambda_handler(event, context)  # the same delivery again: a retry
                    requests.setdefault("orders/create (re-delivery)", []).append(calls["n"])
        floor = _floor_ms(handler.edges.dynamodb)
    return {
        "ingest.ddb_requests_per_webhook": {topic: statistics.median(counts) for topic, counts in requests.items()},
        "ingest.ddb_operations": {name: statistics.median(counts) for name, counts in by_operation.items()},
        "ingest.handler_ms_p50": {topic: round(statistics.median(values), 2) for topic, values in timings.items()},
        "ingest.floor_ms_p50": floor,
    }


def _floor_ms(dynamodb: Any) -> float:
    body = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(expected, signature)
        key = {"pk": {"S": "floor"}, "sk": {"S": str(uuid.uuid4())}}
        dynamodb.get_item(TableName="profiles", Key=key, ConsistentRead=True)
        dynamodb.put_item(
            TableName="profiles",
            Item={**key, "body": {"S": body.decode()}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
