"""TransitionFunction: delayed transitions in, profiles re-evaluated; an unreadable message is retried alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.service.membership import reevaluate
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from tests.lambda_functions import load_function, use_test_environment

SHOP = "transition-test.myshopify.com"


@pytest.fixture(scope="module")
def transition() -> Iterator[ModuleType]:
    patch = pytest.MonkeyPatch()
    use_test_environment(patch)
    with mock_aws():
        import boto3  # noqa: PLC0415

        for name, value in create_resources({}, {}).items():
            patch.setenv(name, value)
        patch.setenv("TRANSITIONS_QUEUE_URL", boto3.client("sqs").create_queue(QueueName="tr")["QueueUrl"])
        yield load_function("transition")
    patch.undo()


def record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tr",
        "awsRegion": "us-east-1",
    }


def test_a_due_transition_is_applied_and_an_unreadable_message_alone_is_retried(transition: ModuleType) -> None:
    edges = transition.edges
    now = datetime.now(UTC).replace(microsecond=0)
    flip = now - timedelta(seconds=1)
    profile = with_orders(
        Profile(shop=SHOP, customer_id="1"),
        [OrderRecord(order_id="o1", created_at=flip - timedelta(days=180), total=Decimal(5))],
    )
    evaluated = reevaluate(profile, edges.definitions, flip - timedelta(minutes=1), version=1).profile
    assert evaluated.next_transition_at == flip
    edges.store.save(evaluated, 0, None, now)
    due = {"shop": SHOP, "profile_key": "customer#1", "due_at": flip.isoformat(), "version": 1}
    event = {"Records": [record("good", json.dumps(due)), record("bad", "{not json")]}
    context = LambdaContext("transition", 512, "arn:aws:lambda:us-east-1:123456789012:function:t", timeout_seconds=30)

    answer = transition.lambda_handler(event, context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    stored = edges.store.load(SHOP, "customer#1")
    assert stored is not None and "lapsed" in stored.membership
