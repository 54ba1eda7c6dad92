"""Properties of evaluate() against a naive from-scratch evaluator, for random facts, times and definitions.

For any facts, definitions and now, with next = evaluate(...).next_transition_at:
1. membership at now equals the from-scratch evaluator's, and so does membership at any later t;
2. membership is constant on [now, next) (forever when next is None);
3. membership at next differs: next is the exact second of the first change;
4. the microseconds of now do not matter (the clock ticks in whole seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evergreen.segments import DEFAULT_DEFINITIONS_PATH, Definitions, default_definitions, evaluate, parse_definitions
from tests.unit.segments.segment_oracle import definitions_dicts, facts_dicts, membership, nows

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HORIZON = timedelta(days=3 * 365)
"""Beyond every duration the strategies draw (52 weeks, 300 RFM days) plus the furthest future fact."""

DEFAULT_RAW: dict[str, Any] = yaml.safe_load(DEFAULT_DEFINITIONS_PATH.read_text(encoding="utf-8"))


def check_against_oracle(
    raw: dict[str, Any], defs: Definitions, facts: dict[str, Any], now: datetime, data: Any
) -> None:
    evaluation = evaluate(facts, defs, now)
    assert evaluation.segments == membership(raw, facts, now), "membership at now"
    floored = evaluate(facts, defs, now.replace(microsecond=0))
    assert (floored.segments, floored.next_transition_at) == (evaluation.segments, evaluation.next_transition_at), (
        "the clock ticks in whole seconds: microseconds of now do not matter"
    )

    end = evaluation.next_transition_at
    if end is not None:
        assert end > now
        assert end.microsecond == 0, "transitions fall on whole seconds"
        assert end.utcoffset() == timedelta(0)
    limit = end if end is not None else now + HORIZON
    samples = {now, limit - timedelta(microseconds=1), limit - timedelta(seconds=1)}
    span = int((limit - now).total_seconds() * 1_000_000)
    samples.update(now + timedelta(microseconds=data.draw(st.integers(0, span - 1))) for _ in range(4))
    for t in sorted(sample for sample in samples if now <= sample < limit):
        assert membership(raw, facts, t) == evaluation.segments, f"from-scratch membership changed at {t}"
        assert evaluate(facts, defs, t).segments == evaluation.segments, f"engine membership changed at {t}"

    if end is not None:
        assert membership(raw, facts, end) != evaluation.segments, "nothing changes at next_transition_at"
        later = evaluate(facts, defs, end)
        assert later.segments == membership(raw, facts, end)
        assert later.next_transition_at is None or later.next_transition_at > end


@PROPERTY_SETTINGS
@given(data=st.data(), raw=definitions_dicts(), now=nows)
def test_random_definitions_agree_with_a_from_scratch_evaluator_until_the_exact_next_transition(
    data: Any, raw: dict[str, Any], now: datetime
) -> None:
    defs = parse_definitions(yaml.safe_dump(raw, sort_keys=False))
    facts = data.draw(facts_dicts(now))
    check_against_oracle(raw, defs, facts, now, data)


@PROPERTY_SETTINGS
@given(data=st.data(), now=nows)
def test_the_default_pack_agrees_with_a_from_scratch_evaluator_until_the_exact_next_transition(
    data: Any, now: datetime
) -> None:
    facts = data.draw(facts_dicts(now))
    check_against_oracle(DEFAULT_RAW, default_definitions(), facts, now, data)


@PROPERTY_SETTINGS
@given(data=st.data(), now=nows)
def test_following_next_transition_replays_every_change_a_sweep_would_see(data: Any, now: datetime) -> None:
    """Walking the chain of transitions visits only instants where membership really changes, and ends."""
    facts = data.draw(facts_dicts(now))
    defs = default_definitions()
    current = evaluate(facts, defs, now)
    steps = 0
    while current.next_transition_at is not None:
        following = evaluate(facts, defs, current.next_transition_at)
        assert following.segments != current.segments
        assert following.segments == membership(DEFAULT_RAW, facts, current.next_transition_at)
        current = following
        steps += 1
        assert steps < 50, "the chain of transitions must end"


def test_evaluation_needs_a_timezone_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate({}, default_definitions(), datetime(2026, 1, 1))


def test_missing_facts_count_as_absent() -> None:
    evaluation = evaluate({}, default_definitions(), datetime(2026, 1, 1, tzinfo=UTC))
    assert evaluation.segments == frozenset()
    assert evaluation.next_transition_at is None


def test_timestamps_at_the_end_of_the_calendar_have_no_transition_and_do_not_crash() -> None:
    end_of_time = datetime.max.replace(tzinfo=UTC)
    facts: dict[str, Any] = {name: end_of_time for name in ("first_order_at", "last_order_at", "open_checkout_at")}
    facts |= {"orders_count": 1, "last_email_open_at": end_of_time - timedelta(days=1)}
    evaluation = evaluate(facts, default_definitions(), datetime(2026, 1, 1, tzinfo=UTC))
    assert evaluation.segments == {"new", "abandoned_checkout", "engaged"}
    assert evaluation.next_transition_at is None
    assert evaluation.explain()["new"]["condition"]["flips_at"] is None
