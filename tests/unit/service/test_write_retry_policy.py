"""The retry policy of a write that lost a race: jittered, growing with contention, bounded by its budget."""

from __future__ import annotations

from evergreen.service.profile_writer import RetryPolicy


def test_the_pause_after_a_lost_race_is_a_random_share_of_a_spread_that_doubles_per_conflict():
    widest = RetryPolicy(jitter=lambda: 1.0, cap_seconds=10.0, first_spread_cycles=4.0)

    spreads = [widest.pause(conflicts, cycle_seconds=0.02) for conflicts in range(1, 5)]

    assert spreads == [0.08, 0.16, 0.32, 0.64]
    assert RetryPolicy(jitter=lambda: 0.25, cap_seconds=10.0).pause(3, cycle_seconds=0.02) == 0.25 * 0.32


def test_the_spread_follows_how_long_the_losing_attempt_took_and_never_exceeds_the_cap():
    widest = RetryPolicy(jitter=lambda: 1.0, cap_seconds=1.0, first_spread_cycles=1.0)

    assert widest.pause(1, cycle_seconds=0.2) == 10 * widest.pause(1, cycle_seconds=0.02)
    assert widest.pause(30, cycle_seconds=0.2) == 1.0
    assert widest.pause(1, cycle_seconds=0.0) == widest.min_cycle_seconds
