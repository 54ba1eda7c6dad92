"""Guarantees of segment sync: newest snapshot wins, nothing lost, nothing pushed twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.membership import reevaluate
from evergreen.service.profile_writer import ProfileWriter
from evergreen.service.sweep import SweepRequest
from evergreen.service.sync import SegmentSync
from evergreen.storage.queue import SqsChangePublisher
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from tests.customers import customer_with_order

SHOP = "evergreen-test.myshopify.com"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox("127.0.0.1", 0, None)
    yield server
    server.stop()


@pytest.fixture
def sync(edges, sandbox, clock) -> SegmentSync:
    client = KlaviyoClient(sandbox.url, "pk_test", http=httpx.Client(), sleep=lambda _: None, max_attempts=3)
    return SegmentSync(edges.store, lambda shop: KlaviyoPusher(client, {}), clock)


def saved_change(edges, clock, number: int = 1, days_ago: int = 3) -> SegmentChange:
    """A profile written with a pending change, as a webhook would leave it."""
    created = clock.now() - timedelta(days=days_ago)
    profile = customer_with_order(SHOP, number, created)
    current = edges.store.load(SHOP, profile.key)
    version = current.version + 1 if current else 1
    result = reevaluate(current or profile, edges.definitions, clock.now(), version=version)
    if current is not None and result.change is None:
        result = reevaluate(profile, edges.definitions, clock.now(), version=version)
    edges.store.save(result.profile, version - 1, result.change, clock.now())
    assert result.change is not None
    return result.change


def imports(sandbox: SandboxServer) -> list[dict]:
    return [request for request in sandbox.requests() if request["path"] == "/api/profile-import"]


def test_a_change_reaches_klaviyo_with_the_segment_property_and_leaves_the_outbox(edges, clock, sync, sandbox):
    change = saved_change(edges, clock)

    report = sync.sync([change])

    assert report.failed == set()
    [request] = imports(sandbox)
    assert request["json"]["data"]["attributes"]["properties"]["evergreen_segments"] == change.segments
    later = clock.now() + timedelta(days=1)
    assert all(edges.store.unsynced(shard, later).items == [] for shard in range(edges.settings.due_shards))


def test_a_replayed_older_version_is_not_pushed_after_a_newer_one(edges, clock, sync, sandbox):
    old = saved_change(edges, clock, days_ago=3)
    clock.advance(timedelta(days=40))
    new = saved_change(edges, clock, days_ago=0)
    assert new.version > old.version
    sync.sync([new])
    sandbox.clear()

    report = sync.sync([old])

    assert report.stale == 1
    assert imports(sandbox) == []


def test_two_versions_in_one_batch_upsert_the_newest_snapshot_and_keep_both_versions_events(
    edges, clock, sync, sandbox
):
    old = saved_change(edges, clock, days_ago=3)
    clock.advance(timedelta(days=40))
    new = saved_change(edges, clock, days_ago=0)

    report = sync.sync([new, old])

    assert report.pushed == 2
    [request] = imports(sandbox)
    assert request["json"]["data"]["attributes"]["properties"]["evergreen_segments"] == new.segments
    events = [r for r in sandbox.requests() if r["path"] in ("/api/events", "/api/event-bulk-create-jobs")]
    sent = json.dumps([r["json"] for r in events])
    assert all(old.event_unique_id(s, "entered") in sent for s in old.entered)


def test_a_change_for_a_redacted_profile_is_not_pushed(edges, clock, sync, sandbox):
    change = saved_change(edges, clock)
    edges.store.delete(SHOP, [change.profile_key])

    report = sync.sync([change])

    assert report.gone == 1
    assert sandbox.requests() == []


def test_klaviyo_429s_are_retried_and_the_change_still_arrives(edges, clock, sync, sandbox):
    change = saved_change(edges, clock)
    sandbox.fail_next(429, count=2, retry_after=1)

    report = sync.sync([change])

    assert report.failed == set()
    assert report.pushed == 1


def test_a_klaviyo_outage_is_reported_for_retry_and_the_outbox_keeps_the_change(edges, clock, sync, sandbox, world):
    change = saved_change(edges, clock)
    sandbox.fail_next(503, count=50)

    report = sync.sync([change])

    assert report.failed == {0}
    clock.advance(timedelta(seconds=edges.settings.sync_grace_seconds + 1))
    assert edges.sweep.run(SweepRequest()).repaired == 1
    [requeued] = world.queued()
    assert requeued["version"] == change.version


def test_klaviyos_id_for_a_synced_profile_is_kept_for_later_list_removals(edges, clock, sync):
    change = saved_change(edges, clock)

    sync.sync([change])

    assert edges.store.load(SHOP, change.profile_key).klaviyo_profile_id


def test_a_change_whose_enqueue_failed_is_resent_by_the_next_sweep_without_waiting_the_grace_period(
    edges, clock, world
):
    change = saved_change(edges, clock)
    missing_queue = SqsChangePublisher(edges.sqs, edges.settings.segment_changes_queue_url + "-missing")
    writer = ProfileWriter(edges.store, missing_queue, edges.definitions, clock)

    assert writer.enqueue(change) is False
    clock.advance(timedelta(minutes=5))  # one sweep interval, well inside the grace period
    report = edges.sweep.run(SweepRequest())

    assert report.repaired == 1
    [requeued] = world.queued()
    assert requeued["version"] == change.version


def test_a_change_that_was_enqueued_is_not_resent_before_the_grace_period(edges, clock, world):
    change = saved_change(edges, clock)
    assert edges.writer.enqueue(change) is True
    world.queued()

    clock.advance(timedelta(minutes=5))

    assert edges.sweep.run(SweepRequest()).repaired == 0
    assert world.queued() == []


def test_a_webhook_change_carries_its_receipt_instant_and_sync_measures_event_to_klaviyo(edges, clock, sync, world):
    received = clock.now()
    order = OrderRecord(order_id="9", created_at=received - timedelta(days=1), total=Decimal("30.00"))
    blank = Profile(shop=SHOP, customer_id="77", email="c77@example.com", email_normalized="c77@example.com")
    edges.writer.write(blank, lambda profile: with_orders(profile, [order]))
    [body] = world.queued()
    change = SegmentChange.model_validate(body)
    assert change.received_at == received

    clock.advance(timedelta(seconds=2))
    report = sync.sync([change])

    assert report.event_to_klaviyo_ms == [2000.0]


def test_a_change_the_sweep_made_is_not_counted_as_event_to_klaviyo(edges, clock, sync):
    change = saved_change(edges, clock)
    assert change.received_at is None

    report = sync.sync([change])

    assert report.pushed == 1 and report.event_to_klaviyo_ms == []


def test_a_change_time_alone_made_counts_its_lateness_from_the_exact_instant_to_klaviyos_answer(edges, clock, sync):
    instant = clock.now() - timedelta(seconds=3)
    change = saved_change(edges, clock).model_copy(update={"transition_at": instant})

    report = sync.sync([change])

    assert report.pushed == 1 and report.transition_lateness_ms == [3000.0]
