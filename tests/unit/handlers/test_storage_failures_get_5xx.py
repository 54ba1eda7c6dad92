"""When storage fails, the webhook answers 5xx so Shopify retries (and nothing half-written remains), and the 503
is counted in the metric its alarm watches (Lambda's Errors stay at 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evergreen.observability import WEBHOOK_UNAVAILABLE
from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event
from evergreen_cli.local_stack.template import resources

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"


def _emitted(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_a_dynamodb_failure_gets_503_so_shopify_retries_and_moves_the_alarms_metric(
    handlers, context, capsys, template
):
    edges = handlers["shopify_webhook"].edges
    edges.dynamodb.delete_table(TableName=edges.settings.profiles_table)
    body = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SECRET),
    }
    capsys.readouterr()

    answer = handlers["shopify_webhook"].lambda_handler(
        build_http_api_v2_event("POST", "/webhooks/shopify", headers, body), context
    )

    assert answer["statusCode"] == 503
    alarm = resources(template, "AWS::CloudWatch::Alarm")["WebhookUnavailableAlarm"]["Properties"]
    assert alarm["MetricName"] == WEBHOOK_UNAVAILABLE and alarm["Threshold"] == 0
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Namespace"] == namespace
    watched = {item["Name"]: item["Value"] for item in alarm["Dimensions"]}
    (emitted,) = [metric for metric in _emitted(capsys.readouterr().out) if WEBHOOK_UNAVAILABLE in metric]
    assert emitted[WEBHOOK_UNAVAILABLE] == [1.0]
    (directive,) = emitted["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [sorted(watched)], "the alarm watches exactly the dimensions emitted"
    assert {name: emitted[name] for name in watched} == watched
