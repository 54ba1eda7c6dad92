"""A full event-source batch means a backlog: SegmentSync drains it into one bulk push, and loses nothing doing so.

The real handler on in-process moto (sync_rig.py: the template's queues, its event source's BatchSize,
simulated time), pushing to the Klaviyo sandbox over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from tests.unit.handlers.sync_rig import BATCH_SIZE, SYNC_TIMEOUT_S, VISIBILITY_TIMEOUT_S, Rig, sync_rig

BACKLOG = 200


@pytest.fixture(scope="module")
def klaviyo() -> Iterator[SandboxServer]:
    with start_sandbox(port=0) as server:
        yield server


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, klaviyo: SandboxServer) -> Iterator[Rig]:
    klaviyo.clear()
    with httpx.Client() as http, sync_rig(monkeypatch, klaviyo.url, http) as built:
        yield built


def calls(klaviyo: SandboxServer, path: str) -> list[dict[str, Any]]:
    return [request for request in klaviyo.requests() if request["path"] == path]


def profiles_in_jobs(klaviyo: SandboxServer) -> list[int]:
    jobs = calls(klaviyo, "/api/profile-bulk-import-jobs")
    return [len(job["json"]["data"]["attributes"]["profiles"]["data"]) for job in jobs]


def test_a_backlog_reaches_klaviyo_in_one_bulk_profile_import_job(rig, klaviyo):
    changes = rig.enqueue_changes(BACKLOG)

    handed_over = rig.poll()

    assert handed_over == BATCH_SIZE, "the event source hands over one full batch; the rest is drained"
    assert profiles_in_jobs(klaviyo) == [BACKLOG]
    assert calls(klaviyo, "/api/profile-import") == []
    assert rig.synced(changes) == {change.external_id for change in changes}
    assert rig.depth(rig.queue_url) == 0, "drained messages that reached Klaviyo are deleted"


def test_a_trickle_batch_drains_nothing_extra(rig, klaviyo):
    rig.enqueue_changes(15)
    trickle = rig.receive_batch(size=3)

    failed = rig.invoke(trickle)

    assert failed == set()
    assert len(calls(klaviyo, "/api/profile-import")) == 3
    assert calls(klaviyo, "/api/profile-bulk-import-jobs") == []
    assert rig.visible() == 12, "the rest waits for the event source"


def test_a_drained_change_klaviyo_throttles_is_postponed_not_deleted_and_is_delivered_after_the_throttle(rig, klaviyo):
    changes = rig.enqueue_changes(60)
    klaviyo.fail_next(429, count=1000, retry_after=60)

    rig.poll()

    assert rig.synced(changes) == set()
    assert rig.depth(rig.queue_url) == 60, "nothing was deleted"
    rig.clock.advance(50)
    assert rig.receive_batch() == [], "each message waits Klaviyo's Retry-After"
    with klaviyo.state.lock:
        klaviyo.state.failures.clear()
    rig.clock.advance(15)

    rig.poll()

    assert rig.synced(changes) == {change.external_id for change in changes}
    assert rig.depth(rig.queue_url) == 0
    assert rig.dead_letters() == []


def test_a_drained_poison_message_goes_to_the_dlq_with_its_reason(rig, klaviyo):
    changes = rig.enqueue_changes(BATCH_SIZE)
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody='{"not": "a change"}')
    rig.enqueue_changes(5, first=100)

    first_batch = rig.receive_batch()
    failed = rig.invoke(first_batch)

    assert failed == set()
    [dead] = rig.dead_letters()
    assert dead["Body"] == '{"not": "a change"}'
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unreadable"
    assert rig.synced(changes) == {change.external_id for change in changes}
    assert rig.depth(rig.queue_url) == BATCH_SIZE, "only the event-source batch is left, for Lambda to delete"


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_crash_after_draining_loses_nothing(rig, klaviyo):
    changes = rig.enqueue_changes(BACKLOG)

    def power_cut(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the invocation died mid-push")

    rig.use_klaviyo(klaviyo.url, httpx.Client(transport=httpx.MockTransport(power_cut)))
    batch = rig.receive_batch()
    with pytest.raises(RuntimeError):
        rig.invoke(batch)
    assert rig.visible() == 0, "the drained backlog is hidden while the invocation may still run"
    rig.clock.advance(SYNC_TIMEOUT_S + 31)
    assert rig.visible() == BACKLOG - BATCH_SIZE, "drained messages return soon after the invocation's time is up"
    rig.use_klaviyo(klaviyo.url, httpx.Client())

    rig.run_for(VISIBILITY_TIMEOUT_S, step_s=60)

    assert rig.synced(changes) == {change.external_id for change in changes}
    assert rig.depth(rig.queue_url) == 0
    assert rig.dead_letters() == []
