"""SegmentSyncFunction, in-process against moto, pushing to the Klaviyo sandbox over HTTP.

The handler takes its use case, its Klaviyo clients and its redelivery adapter from the composition root
(`evergreen.wiring.Edges`); these tests drive it with records read from the real (moto) queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from evergreen_cli.local_stack.stack import sqs_record
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from tests.lambda_functions import load_function, use_test_environment

SHOP = "handler-sync.myshopify.com"
SHOP_WITHOUT_KLAVIYO = "no-klaviyo.myshopify.com"
REGION = "us-east-1"


@dataclass
class SyncFunction:
    app: ModuleType
    klaviyo: SandboxServer

    @property
    def edges(self) -> Any:
        return self.app.edges

    def change_for(self, shop: str, customer_id: str) -> Any:
        """A customer whose membership changed, written and published as a webhook leaves them."""
        now = datetime.now(UTC)
        profile = with_orders(
            Profile(shop=shop, customer_id=customer_id, email=f"c{customer_id}@example.com"),
            [OrderRecord(order_id=customer_id, created_at=now - timedelta(days=2), total=Decimal("80.00"))],
        )
        result = reevaluate(profile, self.edges.definitions, now, version=1)
        assert result.change is not None
        self.edges.store.save(result.profile, 0, result.change, now)
        self.edges.publisher.publish([result.change])
        return result.change

    def records(self) -> list[dict[str, Any]]:
        """Everything in the queue, as Lambda's SQS event source hands it over."""
        messages = self.edges.sqs.receive_message(
            QueueUrl=self.edges.settings.segment_changes_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        return [sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:changes", REGION) for m in messages]

    def invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """The message ids the handler reports as failed."""
        context = LambdaContext("sync", 512, "arn:aws:lambda:us-east-1:123456789012:function:sync", timeout_seconds=60)
        result = self.app.lambda_handler({"Records": records}, context)
        return {item["itemIdentifier"] for item in result["batchItemFailures"]}

    def profile_imports(self) -> int:
        return sum(1 for request in self.klaviyo.requests() if "profile-import" in request.get("path", ""))


@pytest.fixture(scope="module")
def sync_function() -> Iterator[SyncFunction]:
    patch = pytest.MonkeyPatch()
    klaviyo = start_sandbox(port=0)
    use_test_environment(patch, AWS_DEFAULT_REGION=REGION, KLAVIYO_BASE_URL=klaviyo.url)
    with mock_aws():
        environment = create_resources({SHOP: "s"}, {SHOP: {"api_key": "pk_test", "webhook_secret": "k"}})
        for name, value in environment.items():
            patch.setenv(name, value)
        yield SyncFunction(load_function("segment_sync"), klaviyo)
    patch.undo()
    klaviyo.stop()


def test_a_change_reaches_klaviyo_and_the_profile_records_the_synced_version(sync_function):
    change = sync_function.change_for(SHOP, "101")

    failed = sync_function.invoke(sync_function.records())

    assert failed == set()
    assert sync_function.profile_imports() >= 1
    synced = sync_function.edges.store.synced_versions([(SHOP, change.profile_key)])
    assert synced[(SHOP, change.profile_key)] == change.version


def test_a_redelivered_change_klaviyo_already_has_is_dropped_without_a_klaviyo_call(sync_function):
    sync_function.change_for(SHOP, "102")
    [record] = sync_function.records()
    assert sync_function.invoke([record]) == set()
    calls = len(sync_function.klaviyo.requests())

    assert sync_function.invoke([record]) == set()

    assert len(sync_function.klaviyo.requests()) == calls


def test_the_shops_klaviyo_client_is_created_once_and_reused(sync_function):
    sync_function.change_for(SHOP, "103")
    sync_function.invoke(sync_function.records())
    client = sync_function.edges.klaviyo_clients["pk_test"]
    sync_function.change_for(SHOP, "104")

    sync_function.invoke(sync_function.records())

    assert sync_function.edges.klaviyo_clients == {"pk_test": client}


def test_a_change_for_a_shop_with_no_klaviyo_account_is_kept_for_retry(sync_function):
    sync_function.change_for(SHOP_WITHOUT_KLAVIYO, "201")
    [record] = sync_function.records()

    failed = sync_function.invoke([record])

    assert failed == {record["messageId"]}


def test_an_unreadable_record_does_not_hold_back_the_good_ones(sync_function):
    sync_function.change_for(SHOP, "105")
    [good] = sync_function.records()
    unreadable = {**good, "messageId": "unreadable-1", "body": '{"not": "a change"}'}

    failed = sync_function.invoke([good, unreadable])

    assert good["messageId"] not in failed
    assert sync_function.profile_imports() >= 1
