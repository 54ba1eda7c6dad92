"""The handlers accept the events AWS's own tooling generates (`sam local generate-event`).

The events are committed under tests/contract/aws_events/ with the command that made each (README there).
Each is fed as generated (a clear answer, never a crash) and then adapted only where Evergreen needs real
content: the webhook body and signature headers, the SQS message body, the shop.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from tests.lambda_functions import load_function, use_test_environment

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).resolve().parent / "aws_events"
SHOP = "aws-events.myshopify.com"
SHOPIFY_SECRET = "aws-events-shopify-secret"
KLAVIYO_SECRET = "aws-events-klaviyo-secret"
FUNCTIONS = ("shopify_webhook", "klaviyo_webhook", "segment_sync", "staleness_sweep", "engagement_poll")


def generated(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox("127.0.0.1", 0, None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def handlers(sandbox: SandboxServer) -> Iterator[dict[str, ModuleType]]:
    patch = pytest.MonkeyPatch()
    use_test_environment(patch)
    with mock_aws():
        environment = create_resources(
            {SHOP: SHOPIFY_SECRET}, {SHOP: {"api_key": "pk_test", "webhook_secret": KLAVIYO_SECRET}}
        )
        for name, value in {**environment, "KLAVIYO_BASE_URL": sandbox.url}.items():
            patch.setenv(name, value)
        yield {name: load_function(name, f"aws_events_{name}") for name in FUNCTIONS}
    patch.undo()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext("test", 512, "arn:aws:lambda:us-east-1:123456789012:function:test", timeout_seconds=60)


def shopify_delivery(body: bytes, topic: str) -> dict[str, Any]:
    """The generated HTTP API event carrying a signed Shopify delivery."""
    event = generated("http_api_proxy.json")
    event["body"] = base64.b64encode(body).decode()
    event["headers"] = {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SHOPIFY_SECRET),
        "x-shopify-webhook-id": f"aws-events-{hashlib.sha256(body).hexdigest()[:12]}",
        "x-shopify-api-version": SHOPIFY_API_VERSION,
    }
    return event


def klaviyo_delivery(body: bytes) -> dict[str, Any]:
    """The generated HTTP API event carrying a signed Klaviyo delivery, with ?shop=."""
    event = generated("http_api_proxy.json")
    event["body"] = base64.b64encode(body).decode()
    signed = sign_klaviyo_body(body, KLAVIYO_SECRET, datetime.now(UTC))
    event["headers"] = {"content-type": "application/json", **{k.lower(): v for k, v in signed.items()}}
    event["rawQueryString"] = f"shop={SHOP}"
    event["queryStringParameters"] = {"shop": SHOP}
    return event


def test_the_generated_http_api_event_gets_a_clear_4xx_from_both_webhook_handlers(handlers, context):
    for name in ("shopify_webhook", "klaviyo_webhook"):
        answer = handlers[name].lambda_handler(generated("http_api_proxy.json"), context)

        assert answer["statusCode"] in (400, 401), name
        assert isinstance(json.loads(answer["body"]), dict)


def test_a_signed_shopify_order_in_the_generated_http_api_event_is_applied_and_enqueued(handlers, context):
    body = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()

    answer = handlers["shopify_webhook"].lambda_handler(shopify_delivery(body, "orders/create"), context)

    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["status"] == "written"


def test_a_signed_klaviyo_delivery_in_the_generated_http_api_event_is_accepted(handlers, context):
    body = (ROOT / "events" / "klaviyo" / "email_opened.json").read_bytes()

    answer = handlers["klaviyo_webhook"].lambda_handler(klaviyo_delivery(body), context)

    assert answer["statusCode"] == 200, answer["body"]


def test_the_generated_sqs_event_as_is_is_reported_failed_not_raised(handlers, context):
    event = generated("sqs_receive_message.json")

    answer = handlers["segment_sync"].lambda_handler(event, context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_the_generated_sqs_event_carrying_an_enqueued_change_reaches_klaviyo(handlers, context, sandbox, capsys):
    body = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    order = json.loads(body)
    order["id"] += 1
    handlers["shopify_webhook"].lambda_handler(shopify_delivery(json.dumps(order).encode(), "orders/create"), context)
    sqs = boto3.client("sqs")
    [message, *_] = sqs.receive_message(
        QueueUrl=handlers["segment_sync"].edges.settings.segment_changes_queue_url, MaxNumberOfMessages=10
    )["Messages"]
    event = generated("sqs_receive_message.json")
    record = copy.deepcopy(event["Records"][0])
    record["body"] = message["Body"]
    record["md5OfBody"] = hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest()
    event["Records"] = [record]
    sandbox.clear()

    answer = handlers["segment_sync"].lambda_handler(event, context)

    assert answer == {"batchItemFailures": []}
    assert [r["path"] for r in sandbox.requests()].count("/api/profile-import") == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("EventToKlaviyoMs" in document for document in emf), "the freshness metric is emitted"


def test_the_generated_scheduled_event_runs_the_due_sweep(handlers, context):
    answer = handlers["staleness_sweep"].lambda_handler(generated("scheduled_event.json"), context)

    assert answer["mode"] == "due"
    assert answer["complete"] is True


def test_the_generated_scheduled_event_polls_every_klaviyo_account(handlers, context, capsys):
    answer = handlers["engagement_poll"].lambda_handler(generated("scheduled_event.json"), context)

    (account,) = answer["accounts"]
    assert account["shop"] == SHOP and account["completed"] and account["failure"] is None
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("EngagementPollLagSeconds" in document for document in emf), "the lag metric is emitted"
