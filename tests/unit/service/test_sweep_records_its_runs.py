"""The sweep records when it last ran and last did all its work: what `doctor` checks the schedule by."""

from __future__ import annotations

from datetime import timedelta

from evergreen.domain.profile import Profile
from evergreen.service.sweep import SweepRequest


def test_a_new_table_has_no_sweep_run(edges):
    assert edges.store.last_sweep_run() is None


def test_a_scheduled_sweep_records_when_it_finished_and_that_it_did_all_its_work(edges, clock):
    edges.sweep.run(SweepRequest())

    run = edges.store.last_sweep_run()
    assert run is not None and run.complete
    assert run.last_run_at == run.last_complete_at == clock.now()


def test_a_dry_run_or_a_run_limited_to_some_segments_records_nothing(edges):
    edges.sweep.run(SweepRequest(dry_run=True))
    edges.sweep.run(SweepRequest(segments=["lapsed"]))

    assert edges.store.last_sweep_run() is None


def test_a_sweep_out_of_time_records_its_run_and_keeps_the_last_complete_one(edges, clock):
    edges.sweep.run(SweepRequest())
    completed = clock.now()
    for number in range(3):
        due = Profile(shop="s.myshopify.com", customer_id=str(number), version=1, next_transition_at=clock.now())
        edges.store.save(due, 0, None, clock.now())
    clock.advance(timedelta(minutes=5))

    report = edges.sweep.run(SweepRequest(), time_left=lambda: False)

    run = edges.store.last_sweep_run()
    assert not report.complete
    assert run is not None and not run.complete
    assert run.last_run_at == clock.now() and run.last_complete_at == completed
