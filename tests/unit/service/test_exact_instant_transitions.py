"""Exact-instant transitions: the sweep hands what falls due before its next run to a delayed queue, and the
consumer applies each at its instant. The plain sweep stays the safety net."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from evergreen.clock import FixedClock
from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.service.membership import reevaluate
from evergreen.service.sweep import SweepRequest
from evergreen.service.transitions import DueTransition, TransitionOutcome
from evergreen.settings import Settings
from evergreen.wiring import Edges

SHOP = "evergreen-test.myshopify.com"
INTERVAL = timedelta(minutes=5)


@pytest.fixture
def edges(settings: Settings, clock: FixedClock) -> Edges:
    """The use cases with a transitions queue and the default lookahead (one 5-minute interval plus a margin)."""
    url = boto3.client("sqs").create_queue(QueueName="transitions")["QueueUrl"]
    return Edges(settings.model_copy(update={"transitions_queue_url": url}), clock)


def customer(number: int, last_order_at: datetime) -> Profile:
    blank = Profile(
        shop=SHOP, customer_id=str(number), email=f"c{number}@example.com", email_normalized=f"c{number}@example.com"
    )
    return with_orders(blank, [OrderRecord(order_id=f"{number}-1", created_at=last_order_at, total=Decimal("60.00"))])


def lapsing_in(edges: Edges, number: int, delay: timedelta) -> Profile:
    """A stored customer whose last order turns 180 days old (lapsed) `delay` from now."""
    now = edges.clock.now()
    profile = customer(number, now - timedelta(days=180) + delay)
    result = reevaluate(profile, edges.definitions, now, version=1)
    edges.store.save(result.profile, 0, None, now)
    assert result.profile.next_transition_at == now + delay
    return result.profile


def _queue(edges: Edges) -> Any:  # moto's queue model
    name = edges.settings.transitions_queue_url.rsplit("/", 1)[1]
    return sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues[name]


def scheduled(edges: Edges) -> list[tuple[str, int]]:
    """(profile key, delay in seconds) of every message waiting on the transitions queue."""
    return sorted(
        (json.loads(message.body)["profile_key"], round((message.delayed_until - message.sent_timestamp) / 1000))
        for message in _queue(edges)._messages
    )


def delivered(edges: Edges) -> Iterator[DueTransition]:
    """The delayed messages as the consumer receives them once their delay is over (moto's clock is real time)."""
    for message in _queue(edges)._messages:
        message.delayed_until = 0
    sqs = edges.sqs
    url = edges.settings.transitions_queue_url
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            yield DueTransition.model_validate_json(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def lose_delayed_messages(edges: Edges) -> None:
    edges.sqs.purge_queue(QueueUrl=edges.settings.transitions_queue_url)


def test_a_transition_due_mid_interval_is_applied_at_its_instant_by_the_exact_path_not_the_next_sweep(
    edges, clock, world
):
    flip = lapsing_in(edges, 1, timedelta(seconds=90)).next_transition_at

    report = edges.sweep.run(SweepRequest())

    assert report.scheduled == 1 and not report.entered
    assert scheduled(edges) == [("customer#1", 90)]
    clock.set(flip)
    results = [edges.transitions.apply(due) for due in delivered(edges)]
    assert [result.outcome for result in results] == [TransitionOutcome.APPLIED]
    assert results[0].entered == ("lapsed",) and results[0].lateness_ms == 0
    assert "lapsed" in world.profile(1).membership
    (change,) = world.queued()
    assert change["entered"] == ["lapsed"]
    assert datetime.fromisoformat(change["transition_at"]) == flip
    clock.set(flip - timedelta(seconds=90) + INTERVAL)
    next_run = edges.sweep.run(SweepRequest())
    assert next_run.due == 0 and not next_run.entered, "the next sweep finds nothing left to do"


def test_an_event_that_moves_the_due_time_turns_the_delayed_message_into_a_no_op(edges, clock, world):
    flip = lapsing_in(edges, 1, timedelta(seconds=90)).next_transition_at
    edges.sweep.run(SweepRequest())
    clock.advance(timedelta(seconds=30))
    new_order = {
        "id": 2,
        "email": "c1@example.com",
        "created_at": clock.now().isoformat(),
        "updated_at": clock.now().isoformat(),
        "currency": "USD",
        "financial_status": "paid",
        "total_price": "20.00",
        "current_total_price": "20.00",
        "total_price_set": {"shop_money": {"amount": "20.00", "currency_code": "USD"}},
        "test": False,
        "cancelled_at": None,
        "line_items": [],
        "refunds": [],
        "customer": {"id": 1, "email": "c1@example.com"},
    }
    assert world.shopify("orders/create", new_order).status == 200
    world.queued()
    after_event = world.profile(1)
    assert after_event.next_transition_at > flip

    clock.set(flip)
    results = [edges.transitions.apply(due) for due in delivered(edges)]

    assert [result.outcome for result in results] == [TransitionOutcome.NOT_DUE]
    assert world.profile(1) == after_event, "nothing written"
    assert world.queued() == [], "nothing enqueued"


def test_the_plain_sweep_still_catches_a_transition_whose_delayed_message_was_lost(edges, clock, world):
    start = clock.now()
    lapsing_in(edges, 1, timedelta(seconds=90))
    edges.sweep.run(SweepRequest())
    lose_delayed_messages(edges)

    clock.set(start + INTERVAL)
    report = edges.sweep.run(SweepRequest())

    assert report.entered["lapsed"] == 1
    assert "lapsed" in world.profile(1).membership
    assert [change["entered"] for change in world.queued()] == [["lapsed"]]


def test_overlapping_sweep_runs_hand_each_transition_off_once(edges, clock):
    start = clock.now()
    lapsing_in(edges, 1, timedelta(seconds=90))
    lapsing_in(edges, 2, INTERVAL + timedelta(seconds=100))  # beyond the first window (6 min), inside the second

    first = edges.sweep.run(SweepRequest())
    clock.set(start + timedelta(minutes=1))
    second = edges.sweep.run(SweepRequest())
    clock.set(start + timedelta(minutes=2))
    third = edges.sweep.run(SweepRequest())

    assert (first.scheduled, second.scheduled, third.scheduled) == (1, 1, 0)
    assert scheduled(edges) == [("customer#1", 90), ("customer#2", 400 - 60)]


def test_a_delayed_message_delivered_twice_applies_the_transition_once(edges, clock, world):
    flip = lapsing_in(edges, 1, timedelta(seconds=90)).next_transition_at
    edges.sweep.run(SweepRequest())
    (due,) = delivered(edges)
    clock.set(flip)

    outcomes = [edges.transitions.apply(due).outcome for _ in range(2)]

    assert outcomes == [TransitionOutcome.APPLIED, TransitionOutcome.NOT_DUE]
    assert [change["entered"] for change in world.queued()] == [["lapsed"]]


def test_a_message_that_arrives_just_before_its_instant_waits_for_it(edges, clock, world):
    flip = lapsing_in(edges, 1, timedelta(seconds=90)).next_transition_at
    assert flip is not None
    edges.sweep.run(SweepRequest())
    (due,) = delivered(edges)
    waited: list[float] = []
    consumer = type(edges.transitions)(edges.store, edges.sweep, edges.transitions_sender, clock, sleep=waited.append)
    clock.set(flip - timedelta(milliseconds=700))

    result = consumer.apply(due)

    assert waited == [0.7]
    assert result.outcome is TransitionOutcome.APPLIED
    assert world.profile(1).membership["lapsed"] == flip


def test_a_message_far_ahead_of_its_instant_is_sent_again_for_the_rest_and_changes_nothing(edges, clock, world):
    lapsing_in(edges, 1, timedelta(seconds=90))
    edges.sweep.run(SweepRequest())
    (due,) = delivered(edges)
    before = world.profile(1)

    result = edges.transitions.apply(due)

    assert result.outcome is TransitionOutcome.RESCHEDULED
    assert scheduled(edges) == [("customer#1", 90)]
    assert world.profile(1) == before


def test_a_dry_run_or_a_run_restricted_to_some_segments_hands_nothing_off(edges, clock):
    lapsing_in(edges, 1, timedelta(seconds=90))

    dry = edges.sweep.run(SweepRequest(dry_run=True))
    some = edges.sweep.run(SweepRequest(segments=["lapsed"]))

    assert (dry.scheduled, some.scheduled) == (0, 0)
    assert scheduled(edges) == []


def order_placed(number: int, order_id: int, created_at: datetime) -> dict[str, Any]:
    """An orders/create payload for customer `number` (created_at may lie in the past: an imported order)."""
    return {
        "id": order_id,
        "email": f"c{number}@example.com",
        "created_at": created_at.isoformat(),
        "updated_at": created_at.isoformat(),
        "currency": "USD",
        "financial_status": "paid",
        "total_price": "20.00",
        "current_total_price": "20.00",
        "total_price_set": {"shop_money": {"amount": "20.00", "currency_code": "USD"}},
        "test": False,
        "cancelled_at": None,
        "line_items": [],
        "refunds": [],
        "customer": {"id": number, "email": f"c{number}@example.com"},
    }


def test_an_event_that_sets_a_transition_inside_the_handed_off_window_is_applied_at_its_instant_not_by_the_next_sweep(
    edges, clock, world
):
    start = clock.now()
    assert edges.sweep.run(SweepRequest()).scheduled == 0, "nothing due yet; the window up to +6 min is handed off"
    clock.advance(timedelta(minutes=1))
    flip = clock.now() + timedelta(minutes=2)

    placed = order_placed(7, 70, flip - timedelta(days=180))  # an order that turns 180 days old in 2 minutes
    assert world.shopify("orders/create", placed).status == 200
    world.queued()

    assert world.profile(7).next_transition_at == flip
    assert scheduled(edges) == [("customer#7", 120)], "handed off by the write itself, delayed to the instant"
    clock.set(flip)
    results = [edges.transitions.apply(due) for due in delivered(edges)]
    assert [result.outcome for result in results] == [TransitionOutcome.APPLIED]
    assert results[0].entered == ("lapsed",) and results[0].lateness_ms == 0
    assert world.profile(7).membership["lapsed"] == flip
    assert [change["entered"] for change in world.queued()] == [["lapsed"]]
    clock.set(start + INTERVAL)
    next_run = edges.sweep.run(SweepRequest())
    assert next_run.due == 0 and not next_run.entered, "the next sweep finds nothing left to do"


def test_a_write_sends_at_most_one_message_and_none_when_it_leaves_the_instant_where_it_was(edges, clock, world):
    edges.sweep.run(SweepRequest())
    flip = clock.now() + timedelta(minutes=2)
    assert world.shopify("orders/create", order_placed(7, 70, flip - timedelta(days=180))).status == 200
    clock.advance(timedelta(seconds=10))

    renamed = {"id": 7, "email": "c7@example.com", "first_name": "Seven", "updated_at": clock.now().isoformat()}
    assert world.shopify("customers/update", renamed).status == 200

    assert world.profile(7).first_name == "Seven" and world.profile(7).next_transition_at == flip
    assert scheduled(edges) == [("customer#7", 120)], "the second write did not move the instant: no second message"


def test_a_transition_an_event_sets_beyond_the_lookahead_is_left_to_the_sweep_that_covers_it(edges, clock, world):
    edges.sweep.run(SweepRequest())
    flip = clock.now() + timedelta(minutes=20)

    assert world.shopify("orders/create", order_placed(7, 70, flip - timedelta(days=180))).status == 200

    assert world.profile(7).next_transition_at == flip
    assert scheduled(edges) == []
    clock.set(flip - timedelta(minutes=5))
    assert edges.sweep.run(SweepRequest()).scheduled == 1
    assert scheduled(edges) == [("customer#7", 300)]


def test_a_write_whose_hand_off_fails_still_succeeds_and_the_sweep_applies_the_transition(edges, clock, world):
    start = clock.now()
    edges.sweep.run(SweepRequest())
    flip = clock.now() + timedelta(minutes=2)
    edges.sqs.delete_queue(QueueUrl=edges.settings.transitions_queue_url)

    assert world.shopify("orders/create", order_placed(7, 70, flip - timedelta(days=180))).status == 200

    assert world.profile(7).next_transition_at == flip
    world.queued()
    clock.set(start + INTERVAL)
    assert edges.sweep.run(SweepRequest()).entered["lapsed"] == 1
    assert "lapsed" in world.profile(7).membership
