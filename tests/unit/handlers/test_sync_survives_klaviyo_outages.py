"""Outages cost time, never data or manual work: the real SegmentSync handler on in-process moto SQS.

See sync_rig.py for how the queue, the event source and time are imitated. Klaviyo is tests/unit/klaviyo's
FakeKlaviyo, in process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from evergreen.service.sync import RETRY_CAP_S
from tests.unit.handlers.sync_rig import Rig, sync_rig
from tests.unit.klaviyo.klaviyo_fakes import BASE_URL, FakeKlaviyo

SIX_HOURS = 6 * 3600
STEP_S = 30
"""How far simulated time moves between two polls of the queue."""


@dataclass
class Outage:
    """The rig, and the fake Klaviyo it talks to."""

    rig: Rig
    klaviyo: FakeKlaviyo

    def synced_external_ids(self) -> set[str]:
        """Profiles Klaviyo accepted (FakeKlaviyo learns an external id only from a successful import)."""
        return set(self.klaviyo.known_ids)

    def outage(self, status: int, retry_after: str | None = None) -> None:
        self.klaviyo.fail(status, retry_after=retry_after)

    def recover(self) -> None:
        self.klaviyo.rules.clear()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    klaviyo = FakeKlaviyo()
    with httpx.Client(transport=httpx.MockTransport(klaviyo)) as http, sync_rig(monkeypatch, BASE_URL, http) as rig:
        yield Outage(rig, klaviyo)


def enqueue_changes(rig: Rig, count: int) -> set[str]:
    return {change.external_id for change in rig.enqueue_changes(count)}


def test_a_six_hour_429_storm_puts_nothing_in_the_dlq_and_everything_arrives_within_a_minute_of_recovery(world):
    rig = world.rig
    wanted = enqueue_changes(rig, 5)
    world.outage(429, retry_after="60")

    rig.run_for(SIX_HOURS, STEP_S)

    assert rig.depth(rig.dlq_url) == 0
    assert world.synced_external_ids() == set()
    assert rig.most_receives <= SIX_HOURS / 60 + 3, "each message waited Retry-After between tries"
    assert rig.most_receives < rig.max_receive_count

    world.recover()
    rig.run_for(RETRY_CAP_S + STEP_S, STEP_S)

    assert world.synced_external_ids() == wanted
    assert rig.depth(rig.queue_url) == 0
    assert rig.depth(rig.dlq_url) == 0


def test_a_5xx_outage_backs_off_to_a_try_a_minute_and_loses_nothing(world):
    rig = world.rig
    wanted = enqueue_changes(rig, 3)
    world.outage(503)

    rig.run_for(3600, STEP_S)

    assert rig.depth(rig.dlq_url) == 0
    assert rig.most_receives <= 3600 / (RETRY_CAP_S * 0.9) + 3, "back-off grows to a try a minute, no faster"
    world.recover()
    rig.run_for(RETRY_CAP_S + STEP_S, STEP_S)

    assert world.synced_external_ids() == wanted
    assert rig.depth(rig.queue_url) == 0


def test_poison_goes_to_the_dlq_at_once_with_its_reason(world):
    rig = world.rig
    enqueue_changes(rig, 1)
    world.klaviyo.fail(400, times=1)

    assert rig.poll() == 1

    [dead] = rig.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "create_or_update_profile: 400"
    assert rig.depth(rig.queue_url) == 0


def test_a_batch_where_every_record_fails_is_reported_not_raised(world):
    rig = world.rig
    enqueue_changes(rig, 2)
    world.outage(503)
    messages = rig.receive_batch()

    failed = rig.invoke(messages)

    assert failed == {m["MessageId"] for m in messages}


def test_an_unreadable_message_is_dead_lettered(world):
    rig = world.rig
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody='{"not": "a change"}')

    rig.poll()

    assert rig.depth(rig.queue_url) == 0
    [dead] = rig.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unreadable"
