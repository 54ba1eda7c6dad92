"""Outages cost time, never data or manual work: the real SegmentSync handler on in-process moto SQS.

The queue and its DLQ are created with template.yaml's properties (VisibilityTimeout, retention, redrive
policy). Lambda's SQS event source is imitated as it behaves: receive a batch, invoke, delete what did not
fail; a failed message comes back when its visibility runs out. Time is simulated: moto's clock is moved,
nothing waits. Klaviyo is tests/unit/klaviyo's FakeKlaviyo, in process.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import moto.core.utils
import pytest
from moto import mock_aws

from evergreen.clock import SystemClock
from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.service.membership import reevaluate
from evergreen.service.sync import RETRY_CAP_S
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_local.inprocess import create_resources
from evergreen_local.lambda_runtime import LambdaContext
from evergreen_local.stack import sqs_record
from evergreen_local.template import load_template
from tests.unit.klaviyo.klaviyo_fakes import BASE_URL, FakeKlaviyo

ROOT = Path(__file__).resolve().parents[3]

SHOP = "outage-test.myshopify.com"
REGION = "us-east-1"
SIX_HOURS = 6 * 3600
STEP_S = 30
"""How far simulated time moves between two polls of the queue."""


class MotoClock:
    """Moto's notion of now, moved by hand (message visibility, receive counts and retention follow it)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 1, 12, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        return (self.now - dt.datetime(2026, 1, 1)).total_seconds()

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Rig:
    app: ModuleType
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    klaviyo: FakeKlaviyo
    clock: MotoClock
    edges: Edges
    max_receive_count: int
    invocations: int = 0
    most_receives: int = 0
    """The highest ApproximateReceiveCount any message reached: what maxReceiveCount is measured against."""

    def poll(self) -> int:
        """One turn of the event source: receive a batch (up to 100), invoke, delete the successes."""
        messages: list[dict[str, Any]] = []
        while len(messages) < 100:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                break
            messages += got
        if not messages:
            return 0
        self.most_receives = max(
            [self.most_receives, *(int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages)]
        )
        event = {"Records": [sqs_record(m, self.queue_arn, REGION) for m in messages]}
        context = LambdaContext(
            "segment-sync", 512, "arn:aws:lambda:us-east-1:123456789012:function:sync", timeout_seconds=120
        )
        result = self.app.lambda_handler(event, context)
        self.invocations += 1
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def run_for(self, seconds: float) -> None:
        end = self.clock.now + dt.timedelta(seconds=seconds)
        while self.clock.now < end:
            self.poll()
            self.clock.advance(STEP_S)

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def synced_external_ids(self) -> set[str]:
        """Profiles Klaviyo accepted (FakeKlaviyo learns an external id only from a successful import)."""
        return set(self.klaviyo.known_ids)

    def outage(self, status: int, retry_after: str | None = None) -> None:
        self.klaviyo.fail(status, retry_after=retry_after)

    def recover(self) -> None:
        self.klaviyo.rules.clear()


def _queue_properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = load_template(ROOT / "template.yaml")["Resources"][name]["Properties"]
    return props


def _load_sync_handler() -> ModuleType:
    path = ROOT / "functions" / "segment_sync" / "app.py"
    spec = importlib.util.spec_from_file_location("segment_sync_under_outage", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "EvergreenTest",
        "POWERTOOLS_SERVICE_NAME": "evergreen",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)
    clock = MotoClock()
    monkeypatch.setattr(moto.core.utils, "utcnow", clock)
    klaviyo = FakeKlaviyo()
    with mock_aws():
        environment = create_resources({SHOP: "unused"}, {SHOP: {"api_key": "pk_test", "webhook_secret": "unused"}})
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = _queue_properties("SegmentChangesDLQ")
        dlq_url = sqs.create_queue(
            QueueName="changes-dlq", Attributes={"MessageRetentionPeriod": str(dlq["MessageRetentionPeriod"])}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = _queue_properties("SegmentChangesQueue")
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": int(queue["RedrivePolicy"]["maxReceiveCount"])}
        queue_url = sqs.create_queue(
            QueueName="changes",
            Attributes={
                "VisibilityTimeout": str(queue["VisibilityTimeout"]),
                "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        environment |= {
            "SEGMENT_CHANGES_QUEUE_URL": queue_url,
            "SEGMENT_CHANGES_DLQ_URL": dlq_url,
            "KLAVIYO_BASE_URL": BASE_URL,
            "SECRETS_CACHE_SECONDS": "0",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        edges = Edges(Settings.from_env(environment), SystemClock())
        app = _load_sync_handler()
        # The handler's own client, except that its back-off sleeps move simulated time instead of waiting.
        http = httpx.Client(transport=httpx.MockTransport(klaviyo))
        app.edges.klaviyo_clients["pk_test"] = KlaviyoClient(
            BASE_URL, "pk_test", http=http, sleep=clock.advance, clock=clock.seconds
        )
        yield Rig(app, sqs, queue_url, queue_arn, dlq_url, klaviyo, clock, edges, redrive["maxReceiveCount"])
        http.close()


def enqueue_changes(rig: Rig, count: int) -> set[str]:
    """`count` customers whose membership changed, written to the table and published, as a webhook leaves them."""
    now = rig.edges.clock.now()
    external_ids: set[str] = set()
    for number in range(1, count + 1):
        profile = with_orders(
            Profile(
                shop=SHOP,
                customer_id=str(number),
                email=f"c{number}@example.com",
                email_normalized=f"c{number}@example.com",
            ),
            [OrderRecord(order_id=str(number), created_at=now - dt.timedelta(days=2), total=Decimal("80.00"))],
        )
        result = reevaluate(profile, rig.edges.definitions, now, version=1)
        assert result.change is not None
        rig.edges.store.save(result.profile, 0, result.change, now)
        rig.edges.publisher.publish([result.change])
        external_ids.add(result.change.external_id)
    return external_ids


def test_a_six_hour_429_storm_puts_nothing_in_the_dlq_and_everything_arrives_within_a_minute_of_recovery(rig):
    wanted = enqueue_changes(rig, 5)
    rig.outage(429, retry_after="60")

    rig.run_for(SIX_HOURS)

    assert rig.depth(rig.dlq_url) == 0
    assert rig.synced_external_ids() == set()
    assert rig.most_receives <= SIX_HOURS / 60 + 3, "each message waited Retry-After between tries"
    assert rig.most_receives < rig.max_receive_count

    rig.recover()
    rig.run_for(RETRY_CAP_S + STEP_S)

    assert rig.synced_external_ids() == wanted
    assert rig.depth(rig.queue_url) == 0
    assert rig.depth(rig.dlq_url) == 0


def test_a_5xx_outage_backs_off_to_a_try_a_minute_and_loses_nothing(rig):
    wanted = enqueue_changes(rig, 3)
    rig.outage(503)

    rig.run_for(3600)

    assert rig.depth(rig.dlq_url) == 0
    assert rig.most_receives <= 3600 / (RETRY_CAP_S * 0.9) + 3, "back-off grows to a try a minute, no faster"
    rig.recover()
    rig.run_for(RETRY_CAP_S + STEP_S)

    assert rig.synced_external_ids() == wanted
    assert rig.depth(rig.queue_url) == 0


def test_poison_goes_to_the_dlq_at_once_with_its_reason(rig):
    enqueue_changes(rig, 1)
    rig.klaviyo.fail(400, times=1)

    assert rig.poll() == 1

    [dead] = rig.sqs.receive_message(QueueUrl=rig.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "create_or_update_profile: 400"
    assert rig.depth(rig.queue_url) == 0


def test_a_batch_where_every_record_fails_is_reported_not_raised(rig):
    enqueue_changes(rig, 2)
    rig.outage(503)
    messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
    event = {"Records": [sqs_record(m, rig.queue_arn, REGION) for m in messages["Messages"]]}
    context = LambdaContext("segment-sync", 512, "arn:aws:lambda:us-east-1:123456789012:function:sync")

    result = rig.app.lambda_handler(event, context)

    assert {item["itemIdentifier"] for item in result["batchItemFailures"]} == {
        m["MessageId"] for m in messages["Messages"]
    }


def test_an_unreadable_message_is_dead_lettered(rig):
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody='{"not": "a change"}')

    rig.poll()

    assert rig.depth(rig.queue_url) == 0
    [dead] = rig.sqs.receive_message(QueueUrl=rig.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unreadable"
