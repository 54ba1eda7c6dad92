"""Segment engine throughput: evaluations per second of the default pack on one core.

Each evaluation computes membership and `next_transition_at` (what every caller stores), over a few
thousand varied facts dicts built from real `Profile`s beforehand. Best of several rounds.

    uv run python bench/bench_engine.py
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from evergreen.domain.profile import Consent, ConsentState, Engagement, OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.segments import default_definitions, evaluate

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
PROFILES = 5000
ROUNDS = 7
CONSENT_STATES: tuple[ConsentState, ...] = ("subscribed", "subscribed", "not_subscribed", "unsubscribed", "unknown")
PRODUCT_TYPES = ("shoes", "shirts", "hats", "socks", "bags")


def _maybe_ago(rng: random.Random, chance: float, max_days: int) -> datetime | None:
    if rng.random() > chance:
        return None
    return NOW - timedelta(seconds=rng.randrange(max_days * 86400), microseconds=rng.randrange(1_000_000))


def build_facts(count: int = PROFILES, seed: int = 7) -> list[dict[str, Any]]:
    """Varied, realistic facts dicts: guests and regulars, engaged and silent, recent and lapsed."""
    rng = random.Random(seed)
    population: list[dict[str, Any]] = []
    for index in range(count):
        orders = {}
        for number in range(rng.choice((0, 0, 1, 1, 1, 2, 3, 5, 8))):
            order_id = f"{index}-{number}"
            orders[order_id] = OrderRecord(
                order_id=order_id,
                created_at=NOW - timedelta(seconds=rng.randrange(400 * 86400)),
                total=Decimal(rng.randrange(500, 60000)) / 100,
                product_types=rng.sample(PRODUCT_TYPES, rng.randrange(3)),
            )
        profile = Profile(
            shop="bench.myshopify.com",
            customer_id=str(index),
            email_normalized=f"c{index}@example.com" if rng.random() < 0.95 else None,
            customer_created_at=_maybe_ago(rng, 0.9, 800),
            email_consent=Consent(state=rng.choice(CONSENT_STATES), updated_at=_maybe_ago(rng, 0.7, 500)),
            open_checkout_at=_maybe_ago(rng, 0.1, 10),
            engagement=Engagement(
                last_email_open_at=_maybe_ago(rng, 0.6, 200),
                last_email_click_at=_maybe_ago(rng, 0.3, 200),
                email_bounced=rng.random() < 0.02,
            ),
        )
        population.append(with_orders(profile, orders.values()).facts())
    return population


def run() -> dict[str, object]:
    defs = default_definitions()
    population = build_facts()
    rates: list[float] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for facts in population:
            result = evaluate(facts, defs, NOW)
            _ = result.segments, result.next_transition_at
        rates.append(len(population) / (time.perf_counter() - started))
    return {"engine.evals_per_sec": round(max(rates), 1)}


if __name__ == "__main__":
    print(run())
