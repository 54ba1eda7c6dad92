"""The profile's bounded order aggregates always answer what every order item together would (property-based)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from evergreen.domain.facts import BOUNDED_SET_SIZE
from evergreen.domain.orders import ORDER_TIMES_KEPT, SET_VALUES_KEPT, OrderRecord, OrderState, OrderStats

T0 = datetime(2025, 1, 1, tzinfo=UTC)
VALUES = [f"v{n:03d}" for n in range(SET_VALUES_KEPT + 40)]


def snapshot(order_id: int, hours: int, cents: int, cancelled: bool, values: list[str]) -> OrderState:
    record = OrderRecord(
        order_id=str(order_id),
        created_at=T0 + timedelta(hours=hours),
        total=Decimal(cents) / 100,
        cancelled=cancelled,
        product_types=values,
        tags=values[::-1],
    )
    return OrderState(order=record)


def truth(states: dict[int, OrderState]) -> tuple[object, ...]:
    """The order facts computed from every order at once."""
    counted = [s.contribution() for s in states.values()]
    present = [c for c in counted if c is not None]
    times = [c.mark[0] for c in present]
    types = sorted({t for c in present for t in c.product_types})[:BOUNDED_SET_SIZE]
    return (
        len(present),
        sum((c.amount for c in present), Decimal(0)),
        min(times, default=None) if present else None,
        max(times, default=None) if present else None,
        frozenset(types),
    )


def seen(stats: OrderStats) -> tuple[object, ...]:
    return (
        stats.count,
        stats.net_spent,
        stats.first_order_at,
        stats.last_order_at,
        stats.product_types.smallest(),
    )


changes = st.lists(
    st.tuples(
        st.integers(0, 60),  # which order
        st.integers(0, 400),  # hours after T0
        st.integers(0, 10_000),  # cents
        st.booleans(),  # cancelled
        st.lists(st.sampled_from(VALUES), max_size=4, unique=True),
    ),
    min_size=1,
    max_size=250,
)


@settings(max_examples=150, deadline=None)
@given(history=changes)
def test_any_history_of_order_changes_keeps_the_aggregates_exact(history: list[tuple[int, int, int, bool, list[str]]]):
    states: dict[int, OrderState] = {}
    stats = OrderStats()
    rebuilds = 0
    for order_id, hours, cents, cancelled, values in history:
        before = states.get(order_id)
        after = snapshot(order_id, hours, cents, cancelled, values)
        states[order_id] = after
        stats = stats.replaced(before.contribution() if before else None, after.contribution())
        if stats.needs_rebuild:
            stats = stats.rebuilt(states.values())
            rebuilds += 1
        assert seen(stats) == truth(states)
        assert len(stats.latest) <= ORDER_TIMES_KEPT and len(stats.product_types.counts) <= SET_VALUES_KEPT


@settings(max_examples=100, deadline=None)
@given(first=changes, second=changes)
def test_merging_two_profiles_orders_equals_one_profile_holding_both(first, second):
    def build(history, offset: int) -> tuple[dict[int, OrderState], OrderStats]:
        states: dict[int, OrderState] = {}
        stats = OrderStats()
        for order_id, hours, cents, cancelled, values in history:
            before = states.get(order_id + offset)
            after = snapshot(order_id + offset, hours, cents, cancelled, values)
            states[order_id + offset] = after
            stats = stats.replaced(before.contribution() if before else None, after.contribution())
            if stats.needs_rebuild:
                stats = stats.rebuilt(states.values())
        return states, stats

    states_a, stats_a = build(first, 0)
    states_b, stats_b = build(second, 1_000)
    merged = stats_a.merged(stats_b)
    if merged.needs_rebuild:
        merged = merged.rebuilt([*states_a.values(), *states_b.values()])

    assert seen(merged) == truth({**states_a, **states_b})


def test_cancelling_more_of_the_newest_orders_than_the_window_holds_asks_for_a_rebuild():
    states = {n: snapshot(n, n, 1000, False, []) for n in range(ORDER_TIMES_KEPT + 5)}
    stats = OrderStats().rebuilt(states.values())
    for n in range(ORDER_TIMES_KEPT + 4, 4, -1):
        cancelled = snapshot(n, n, 1000, True, [])
        stats = stats.replaced(states[n].contribution(), None)
        states[n] = cancelled

    assert stats.needs_rebuild
    assert stats.rebuilt(states.values()).last_order_at == T0 + timedelta(hours=4)
