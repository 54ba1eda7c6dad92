"""A definitions change at scale: the full re-evaluation fans out over parallel invocations, one per group of
scan segments, while the scheduled runs go on sweeping what is due.

Through the real adapters on in-process moto. The fan-out port is the one seam: a recorder stands in for
Lambda's asynchronous invoke, and the test runs each recorded invocation as Lambda would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from evergreen.service.sweep import StalenessSweep, SweepRequest
from evergreen.wiring import Edges
from tests.unit.service.test_sweep_guarantees import customer

PROFILES = 30
GROUPS = 3


class Invocations:
    """What the sweep asked Lambda to start: `{"full": true, "group": n}`, in order."""

    def __init__(self) -> None:
        self.groups: list[int] = []

    def dispatch(self, groups: Sequence[int]) -> None:
        self.groups += groups

    def take(self) -> list[int]:
        taken, self.groups = self.groups, []
        return taken


@pytest.fixture
def invocations() -> Invocations:
    return Invocations()


@pytest.fixture
def sweep(settings, clock, invocations) -> StalenessSweep:
    """The deployed sweep (the composition root's), with the recorder in place of Lambda's invoke."""
    edges = Edges(settings.model_copy(update={"full_sweep_invocations": GROUPS}), clock)
    edges.__dict__["sweep_fanout"] = invocations
    return edges.sweep


def stored_under_previous_definitions(edges, clock) -> None:
    """Profiles evaluated under other definitions, one of them due now."""
    now = clock.now()
    for number in range(PROFILES):
        days = 179 if number == 0 else 20
        profile = customer(number, now - timedelta(days=days, hours=23, minutes=59, seconds=30))
        profile = profile.model_copy(update={"definitions_hash": "previous", "next_transition_at": None})
        if number == 0:
            profile = profile.model_copy(update={"next_transition_at": now - timedelta(seconds=1)})
        edges.store.save(profile.model_copy(update={"version": 1}), 0, None, now)
    edges.store.record_swept_definitions_hash("previous")


def definitions_of_every_profile(edges) -> set[str | None]:
    found = set()
    for segment in range(4):
        start = None
        while True:
            page = edges.store.scan(segment, 4, start)
            found |= {profile.definitions_hash for profile in page.items}
            start = page.next_key
            if not start:
                break
    return found


def test_a_definitions_change_fans_out_and_the_scheduled_run_still_sweeps_what_is_due(edges, clock, sweep, invocations):
    stored_under_previous_definitions(edges, clock)

    scheduled = sweep.run(SweepRequest())

    assert scheduled.mode == "due" and scheduled.due == 1 and scheduled.written == 1
    assert scheduled.fanned_out == GROUPS
    assert sorted(invocations.take()) == list(range(GROUPS))


def test_a_fanned_out_re_evaluation_is_started_once_while_its_invocations_run(edges, clock, sweep, invocations):
    stored_under_previous_definitions(edges, clock)
    sweep.run(SweepRequest())
    invocations.take()

    clock.advance(timedelta(minutes=1))
    again = sweep.run(SweepRequest())

    assert again.fanned_out == 0 and invocations.take() == []


def test_every_group_re_evaluates_its_segments_and_the_last_one_records_the_definitions(
    edges, clock, sweep, invocations
):
    stored_under_previous_definitions(edges, clock)
    sweep.run(SweepRequest())

    evaluated = 0
    for group in invocations.take():
        evaluated += sweep.run(SweepRequest(full=True, group=group)).evaluated

    assert evaluated == PROFILES
    assert definitions_of_every_profile(edges) == {edges.definitions.hash}
    assert edges.store.swept_definitions_hash() == edges.definitions.hash
    assert sweep.run(SweepRequest()).fanned_out == 0


def test_an_invocation_out_of_time_starts_its_successor_from_where_it_stopped(edges, clock, sweep, invocations):
    stored_under_previous_definitions(edges, clock)
    sweep.run(SweepRequest())
    groups = invocations.take()
    budget = iter([True] * 3)

    first = sweep.run(SweepRequest(full=True, group=groups[0]), time_left=lambda: next(budget, False))

    assert not first.complete
    assert invocations.take() == [groups[0]]
    rest = sweep.run(SweepRequest(full=True, group=groups[0]))
    others = [sweep.run(SweepRequest(full=True, group=group)) for group in groups[1:]]
    assert first.evaluated + rest.evaluated + sum(report.evaluated for report in others) == PROFILES
    assert edges.store.swept_definitions_hash() == edges.definitions.hash


def test_a_re_evaluation_left_unfinished_past_its_lease_is_started_again_for_the_groups_left(
    edges, clock, sweep, invocations
):
    stored_under_previous_definitions(edges, clock)
    sweep.run(SweepRequest())
    groups = invocations.take()
    sweep.run(SweepRequest(full=True, group=groups[0]))  # the others' invocations were lost

    clock.advance(timedelta(minutes=21))
    late = sweep.run(SweepRequest())

    assert late.fanned_out == GROUPS - 1 and sorted(invocations.take()) == groups[1:]
