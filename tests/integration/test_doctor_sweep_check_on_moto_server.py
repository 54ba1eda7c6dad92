"""`doctor`'s sweep check on a local stack's table (moto server): the last sweep must be recent and complete."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from evergreen.clock import FixedClock
from evergreen.segments import DEFAULT_DEFINITIONS_PATH
from evergreen.service.sweep import SweepRequest
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.commands.doctor import LOCAL_SWEEP_EVERY, Failed, Target, check_sweep
from evergreen_cli.local_stack.stack import SWEEP_EVERY_STATE


@pytest.fixture
def environment(stack_environment: dict[str, str]) -> dict[str, str]:
    return stack_environment


def local(environment: dict[str, str], sweep_every: str | None = "60") -> Target:
    timer = {LOCAL_SWEEP_EVERY: sweep_every} if sweep_every else {}
    return Target(False, "evergreen", None, "", DEFAULT_DEFINITIONS_PATH, {**environment, **timer})


def sweep(environment: dict[str, str], ago: timedelta = timedelta(0)) -> None:
    Edges(Settings.from_env(environment), FixedClock(datetime.now(UTC) - ago)).sweep.run(SweepRequest())


def test_the_state_names_the_interval_doctor_reads():
    assert SWEEP_EVERY_STATE == LOCAL_SWEEP_EVERY


def test_a_fresh_stack_that_never_swept_fails_and_says_to_wait_for_the_timer_or_sweep_now(environment):
    with pytest.raises(Failed) as failure:
        check_sweep(local(environment))

    assert str(failure.value) == "no sweep has run on this stack's table"
    assert failure.value.fix == "the local stack sweeps every 60 s: wait for it, or run `evergreen sweep` now"


def test_after_a_sweep_the_check_passes(environment):
    sweep(environment)

    detail = check_sweep(local(environment))

    assert re.match(r"last complete run \d+ s ago \(every 60 s\)", detail), detail


def test_a_last_sweep_older_than_two_intervals_fails_as_a_stopped_timer(environment):
    sweep(environment, ago=timedelta(minutes=3))

    with pytest.raises(Failed) as failure:
        check_sweep(local(environment))

    assert str(failure.value) == "the last sweep ran 3 min ago; it should run every 60 s"
    assert "restart `make run`" in failure.value.fix and "`evergreen sweep`" in failure.value.fix


def test_a_sweep_that_runs_but_never_finishes_says_so(environment):
    Edges(Settings.from_env(environment)).store.record_sweep_run(datetime.now(UTC), complete=False)

    with pytest.raises(Failed) as failure:
        check_sweep(local(environment))

    assert str(failure.value) == "the sweep runs (every 60 s) but never finished its work"
    assert "FunctionMemorySize" in failure.value.fix


def test_without_a_sweep_timer_any_complete_sweep_passes_and_none_says_how_to_sweep(environment):
    with pytest.raises(Failed) as failure:
        check_sweep(local(environment, sweep_every=None))
    assert failure.value.fix == "run `evergreen sweep`, or restart `make run` without --no-sweep"

    sweep(environment, ago=timedelta(days=1))

    assert "(no sweep timer (--no-sweep))" in check_sweep(local(environment, sweep_every=None))
