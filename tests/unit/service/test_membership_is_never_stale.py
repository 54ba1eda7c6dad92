"""DESIGN's correctness property, through the real writer, table and sweep (hypothesis).

For any event history and any time t: once a sweep has run at or after the profile's next transition,
the stored membership equals a from-scratch evaluation at t.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evergreen.segments import evaluate
from evergreen.service.sweep import SweepRequest

customers = itertools.count(1)


def order(order_id: int, customer_id: int, days_ago: int, now, total: str) -> dict:
    created = (now - timedelta(days=days_ago)).isoformat()
    return {
        "id": order_id,
        "email": f"p{customer_id}@example.com",
        "created_at": created,
        "updated_at": created,
        "currency": "USD",
        "financial_status": "paid",
        "total_price": total,
        "total_price_set": {"shop_money": {"amount": total, "currency_code": "USD"}},
        "customer": {"id": customer_id, "email": f"p{customer_id}@example.com"},
        "line_items": [],
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    orders=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["20.00", "180.00", "700.00"])), max_size=4),
    sweeps_after_days=st.lists(st.integers(0, 600), min_size=1, max_size=4),
)
def test_after_a_sweep_past_the_next_transition_stored_membership_equals_a_fresh_evaluation(
    world, orders, sweeps_after_days
):
    customer_id = next(customers)
    start = world.clock.now()
    for number, (days_ago, total) in enumerate(orders):
        answer = world.shopify("orders/create", order(customer_id * 100 + number, customer_id, days_ago, start, total))
        assert answer.status == 200
    for days in sorted(sweeps_after_days):
        world.clock.set(start + timedelta(days=days, seconds=1))
        world.edges.sweep.run(SweepRequest())

    profile = world.profile(customer_id)
    now = world.clock.now()
    if profile is None:
        assert orders == []
        return
    assert profile.next_transition_at is None or profile.next_transition_at > now
    fresh = evaluate(profile.facts(), world.edges.definitions, now)
    assert set(profile.membership) == set(fresh.segments)
    world.clock.set(start)
