"""The real SegmentSync handler on in-process moto SQS, fed as Lambda's SQS event source feeds it.

The queue and its DLQ are created with template.yaml's properties (VisibilityTimeout, retention, redrive
policy), and batches have the event source's BatchSize. The event source is imitated as it behaves: receive a
batch, invoke, delete what was not reported failed; a failed message comes back when its visibility runs out.
Time is simulated: moto's clock is moved, nothing waits. The test chooses Klaviyo (an HTTP client and its URL).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import moto.core.utils
import pytest
from moto import mock_aws

from evergreen.clock import SystemClock
from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.service.membership import reevaluate
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.local_stack.lambda_runtime import LambdaContext
from evergreen_cli.local_stack.stack import sqs_record
from evergreen_cli.local_stack.template import functions, load_template, sqs_sources
from tests.customers import customer_with_order
from tests.lambda_functions import load_function, use_test_environment

ROOT = Path(__file__).resolve().parents[3]
SHOP = "sync-rig.myshopify.com"
REGION = "us-east-1"
API_KEY = "pk_test"
TEMPLATE = load_template(ROOT / "template.yaml")
(EVENT_SOURCE,) = [source for source in sqs_sources(TEMPLATE) if source.function == "SegmentSyncFunction"]
BATCH_SIZE = EVENT_SOURCE.batch_size
SYNC_TIMEOUT_S = functions(TEMPLATE)["SegmentSyncFunction"].timeout
VISIBILITY_TIMEOUT_S = int(TEMPLATE["Resources"]["SegmentChangesQueue"]["Properties"]["VisibilityTimeout"])


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
    clock: MotoClock
    edges: Edges
    max_receive_count: int
    invocations: int = 0
    most_receives: int = 0
    """The highest ApproximateReceiveCount a handed-over message reached (what maxReceiveCount is measured against)."""

    def receive_batch(self, size: int = BATCH_SIZE) -> list[dict[str, Any]]:
        """What the event source would hand over now: up to `size` visible messages."""
        messages: list[dict[str, Any]] = []
        while len(messages) < size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages += got
        return messages

    def invoke(self, messages: list[dict[str, Any]], timeout_s: int = SYNC_TIMEOUT_S) -> set[str]:
        """Invoke the handler with these messages as its event; the message ids it reports as failed."""
        event = {"Records": [sqs_record(m, self.queue_arn, REGION) for m in messages]}
        context = LambdaContext(
            "segment-sync", 512, "arn:aws:lambda:us-east-1:123456789012:function:sync", timeout_seconds=timeout_s
        )
        result = self.app.lambda_handler(event, context)
        self.invocations += 1
        return {item["itemIdentifier"] for item in result["batchItemFailures"]}

    def poll(self) -> int:
        """One turn of the event source: receive a batch, invoke, delete the successes."""
        messages = self.receive_batch()
        if not messages:
            return 0
        self.most_receives = max(
            [self.most_receives, *(int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages)]
        )
        failed = self.invoke(messages)
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def run_for(self, seconds: float, step_s: float = 30) -> None:
        """Poll, move time `step_s` on, and again, for `seconds` of simulated time."""
        end = self.clock.now + dt.timedelta(seconds=seconds)
        while self.clock.now < end:
            self.poll()
            self.clock.advance(step_s)

    def depth(self, url: str) -> int:
        """Messages in the queue, visible or not."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
                "Messages", []
            )
        )

    def use_klaviyo(self, base_url: str, http: httpx.Client) -> None:
        """Point the handler's Klaviyo client at `base_url`; its back-off sleeps move simulated time."""
        self.app.edges.klaviyo_clients[API_KEY] = KlaviyoClient(
            base_url, API_KEY, http=http, sleep=self.clock.advance, clock=self.clock.seconds
        )

    def enqueue_changes(
        self, count: int, first: int = 1, fields: Callable[[int], dict[str, Any]] | None = None
    ) -> list[SegmentChange]:
        """`count` customers whose membership changed, written to the table and published, as a webhook leaves them.

        `fields(number)` gives profile fields to set on customer `number` (a phone, an email).
        """
        now = self.edges.clock.now()
        changes = []
        for number in range(first, first + count):
            profile = customer_with_order(SHOP, number, now - dt.timedelta(days=2), "80.00")
            if fields is not None:
                profile = profile.model_copy(update=fields(number))
            result = reevaluate(profile, self.edges.definitions, now, version=1)
            assert result.change is not None
            self.edges.store.save(result.profile, 0, result.change, now)
            changes.append(result.change)
        self.edges.publisher.publish(changes)
        return changes

    def synced(self, changes: list[SegmentChange]) -> set[str]:
        """The external ids of `changes` whose version the table records as synced."""
        versions = self.edges.store.synced_versions([(c.shop, c.profile_key) for c in changes])
        return {c.external_id for c in changes if versions.get((c.shop, c.profile_key), 0) >= c.version}


def _queue_properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = TEMPLATE["Resources"][name]["Properties"]
    return props


@contextmanager
def sync_rig(monkeypatch: pytest.MonkeyPatch, base_url: str, http: httpx.Client) -> Iterator[Rig]:
    """The handler loaded on in-process moto with the template's queues, its Klaviyo at `base_url` over `http`."""
    use_test_environment(monkeypatch, AWS_DEFAULT_REGION=REGION, POWERTOOLS_LOG_LEVEL="ERROR")
    clock = MotoClock()
    monkeypatch.setattr(moto.core.utils, "utcnow", clock)
    with mock_aws():
        environment = create_resources({SHOP: "unused"}, {SHOP: {"api_key": API_KEY, "webhook_secret": "unused"}})
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
        sync_environment = {
            name: str(value)
            for name, value in TEMPLATE["Resources"]["SegmentSyncFunction"]["Properties"]["Environment"][
                "Variables"
            ].items()
            if isinstance(value, str | int)
        }
        environment |= sync_environment | {
            "SEGMENT_CHANGES_QUEUE_URL": queue_url,
            "SEGMENT_CHANGES_DLQ_URL": dlq_url,
            "KLAVIYO_BASE_URL": base_url,
            "SECRETS_CACHE_SECONDS": "0",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        edges = Edges(Settings.from_env(environment), SystemClock())
        rig = Rig(
            load_function("segment_sync", "segment_sync_on_the_rig"),
            sqs,
            queue_url,
            queue_arn,
            dlq_url,
            clock,
            edges,
            redrive["maxReceiveCount"],
        )
        rig.use_klaviyo(base_url, http)
        yield rig
