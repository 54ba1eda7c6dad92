"""The drain on the local stack: its SQS poller hands SegmentSync a full batch from moto server, the handler drains
the backlog over HTTP and pushes it to the Klaviyo sandbox in one bulk job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.segments import default_definitions
from evergreen.service.membership import reevaluate
from evergreen.storage.profiles import DynamoProfileStore
from evergreen.storage.queue import SqsChangePublisher
from evergreen_cli.local_stack.stack import LocalStack
from tests.conftest import local_stack_options

SHOP = "drain-on-moto.myshopify.com"
BACKLOG = 300


@pytest.fixture
def stack(moto_server: str) -> Iterator[LocalStack]:
    """The local stack with its poller off, so the whole backlog is queued before the first batch is handed over."""
    with LocalStack(local_stack_options(moto_server, "drain", poll=False)) as started:
        yield started


def test_a_backlog_on_the_local_stack_reaches_the_sandbox_in_one_bulk_job_and_leaves_the_queue_empty(stack):
    assert stack.resources is not None and stack.sandbox is not None
    store = DynamoProfileStore(stack.resources.client("dynamodb"), stack.resources.table_name, 8)
    now = datetime.now(UTC)
    changes = []
    for number in range(BACKLOG):
        profile = with_orders(
            Profile(shop=SHOP, customer_id=str(5_000 + number), email=f"d{number}@example.com"),
            [OrderRecord(order_id=f"d{number}", created_at=now - timedelta(days=2), total=Decimal("80.00"))],
        )
        result = reevaluate(profile, default_definitions(), now, version=1)
        assert result.change is not None
        store.save(result.profile, 0, result.change, now)
        changes.append(result.change)
    sqs = stack.resources.client("sqs")
    SqsChangePublisher(sqs, stack.resources.ref("SegmentChangesQueue")).publish(changes)

    handed_over = stack.poll_once()

    assert handed_over == 10, "the poller hands over one batch of the template's BatchSize"
    jobs = [r for r in stack.sandbox.requests() if r["path"] == "/api/profile-bulk-import-jobs"]
    assert [len(job["json"]["data"]["attributes"]["profiles"]["data"]) for job in jobs] == [BACKLOG]
    synced = store.synced_versions([(c.shop, c.profile_key) for c in changes])
    assert all(synced[(c.shop, c.profile_key)] == c.version for c in changes)
    depth = sqs.get_queue_attributes(
        QueueUrl=stack.resources.ref("SegmentChangesQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
