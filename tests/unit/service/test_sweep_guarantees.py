"""Guarantees of the staleness sweep: O(due) reads, exact timing, dry runs, no lost updates."""

from __future__ import annotations

from datetime import datetime, timedelta

from evergreen.domain.profile import Profile
from evergreen.service.membership import reevaluate
from evergreen.service.sweep import SweepRequest
from evergreen_cli.local_stack.metering import ProfileItemReads
from tests.customers import customer_with_order

SHOP = "evergreen-test.myshopify.com"


def customer(number: int, last_order_at: datetime, total: str = "60.00") -> Profile:
    return customer_with_order(SHOP, number, last_order_at, total, order_id=f"{number}-1")


def store_evaluated(edges, profile: Profile, at: datetime) -> Profile:
    result = reevaluate(profile, edges.definitions, at, version=1)
    edges.store.save(result.profile, 0, None, at)
    return result.profile


def test_a_sweep_over_20000_profiles_reads_only_the_due_ones(edges, clock):
    now = clock.now()
    profiles = []
    for number in range(20_000):
        # 1% of customers ordered 180 days ago minus a few minutes: lapsed becomes true before the sweep.
        recent = number % 100 != 0
        last_order = now - timedelta(days=20 if recent else 180) + timedelta(minutes=5)
        profiles.append(reevaluate(customer(number, last_order), edges.definitions, now, version=1).profile)
    edges.store.backfill(profiles, now)
    due_count = sum(1 for number in range(20_000) if number % 100 == 0)
    clock.advance(timedelta(minutes=10))
    reads = ProfileItemReads(edges.dynamodb)

    report = edges.sweep.run(SweepRequest())

    assert report.due == due_count == 200
    assert reads.items <= 1.05 * due_count
    assert report.entered["lapsed"] == due_count


def test_a_profile_whose_lapsed_condition_flips_at_t_is_lapsed_and_enqueued_in_the_first_sweep_after_t(
    edges, clock, world
):
    last_order = clock.now() - timedelta(days=179, hours=23)
    profile = store_evaluated(edges, customer(1, last_order), clock.now())
    flip = profile.next_transition_at
    assert flip is not None and flip > clock.now()

    clock.set(flip - timedelta(seconds=1))
    edges.sweep.run(SweepRequest())
    assert "lapsed" not in world.profile(1).membership

    clock.set(flip)
    report = edges.sweep.run(SweepRequest())

    assert "lapsed" in world.profile(1).membership
    assert report.entered["lapsed"] == 1
    assert [change["entered"] for change in world.queued()] == [["lapsed"]]


def test_a_dry_run_changes_nothing_and_sends_nothing(edges, clock, world):
    store_evaluated(edges, customer(1, clock.now() - timedelta(days=179)), clock.now())
    clock.advance(timedelta(days=5))
    before = world.items()

    report = edges.sweep.run(SweepRequest(dry_run=True))

    assert report.entered["lapsed"] == 1
    assert world.items() == before
    assert world.queued() == []


def test_a_sweep_limited_to_one_segment_leaves_the_others_due(edges, clock, world):
    first_order = clock.now() - timedelta(days=29)
    store_evaluated(edges, customer(1, first_order), clock.now())
    clock.advance(timedelta(days=400))

    edges.sweep.run(SweepRequest(segments=["lapsed"]))

    membership = world.profile(1).membership
    assert "lapsed" in membership
    assert "new" in membership, "new is outside the requested segments, so it waits for the next full sweep"
    edges.sweep.run(SweepRequest())
    assert "new" not in world.profile(1).membership


def test_a_full_sweep_re_evaluates_profiles_that_are_not_due(edges, clock, world):
    profile = customer(1, clock.now() - timedelta(days=400))
    stale = profile.model_copy(update={"membership": {}, "version": 1, "next_transition_at": None})
    edges.store.save(stale, 0, None, clock.now())

    assert edges.sweep.run(SweepRequest()).evaluated == 0
    report = edges.sweep.run(SweepRequest(full=True))

    assert report.evaluated == 1
    assert "lapsed" in world.profile(1).membership


def test_an_unsynced_change_is_re_enqueued_after_the_grace_period(edges, clock, world):
    profile = customer(1, clock.now() - timedelta(days=3))
    result = reevaluate(profile, edges.definitions, clock.now(), version=1)
    assert result.change is not None
    edges.store.save(result.profile, 0, result.change, clock.now())  # the write landed, the send did not

    assert edges.sweep.run(SweepRequest()).repaired == 0
    clock.advance(timedelta(seconds=edges.settings.sync_grace_seconds + 1))
    report = edges.sweep.run(SweepRequest())

    assert report.repaired == 1
    assert [change["version"] for change in world.queued()] == [1]


def test_after_a_definitions_change_the_scheduled_sweep_re_evaluates_everyone_once(edges, clock, world):
    edges.sweep.run(SweepRequest())  # a new table records the deployed definitions
    stale = customer(1, clock.now() - timedelta(days=400)).model_copy(
        update={"version": 1, "definitions_hash": "an-older-pack", "next_transition_at": None}
    )
    edges.store.save(stale, 0, None, clock.now())
    edges.store.record_swept_definitions_hash("an-older-pack")

    first = edges.sweep.run(SweepRequest())
    second = edges.sweep.run(SweepRequest())

    assert first.mode == "full"
    assert world.profile(1).definitions_hash == edges.definitions.hash
    assert "lapsed" in world.profile(1).membership
    assert second.mode == "due"


def test_a_sweep_out_of_time_stops_cleanly_and_the_next_run_finishes_the_rest(edges, clock, world):
    for number in range(5):
        store_evaluated(edges, customer(number, clock.now() - timedelta(days=179, hours=23)), clock.now())
    clock.advance(timedelta(days=1))
    budget = iter([True, True, False])

    first = edges.sweep.run(SweepRequest(), time_left=lambda: next(budget, False))
    second = edges.sweep.run(SweepRequest())

    assert not first.complete
    assert first.evaluated == 2
    assert second.complete
    assert second.evaluated == 3
    assert all("lapsed" in world.profile(number).membership for number in range(5))


def test_a_full_sweep_out_of_time_resumes_from_its_cursors_instead_of_starting_over(edges, clock, world):
    for number in range(30):
        profile = customer(number, clock.now() - timedelta(days=400))
        stale = profile.model_copy(update={"membership": {}, "version": 1, "next_transition_at": None})
        edges.store.save(stale, 0, None, clock.now())
    budget = iter([True] * 10)

    first = edges.sweep.run(SweepRequest(full=True), time_left=lambda: next(budget, False))
    second = edges.sweep.run(SweepRequest(full=True))

    assert not first.complete
    assert second.complete
    assert first.written + second.written == 30
    assert second.read < 30, "the second run resumed where the first stopped"
    assert all("lapsed" in world.profile(number).membership for number in range(30))
