"""RFM scores (recency, frequency, monetary), each 1-5, from thresholds in the definitions file.

Each dimension has four strictly increasing thresholds that split it into five bands:

- recency (days since the last order, lower is better): age < t1 scores 5, t1 <= age < t2 scores 4,
  ..., age >= t4 scores 1. "age >= t" means `last_order_at <= now - t`, the same boundary as the
  `older_than` operator, so the score drops at exactly `ceil(last_order_at) + t` (whole seconds).
- frequency (orders_count) and monetary (net_spent, higher is better): 1 + the number of thresholds
  the value reaches (value >= t). With `[1, 2, 3, 5]`, one order scores 2 and five orders score 5.

Scores exist only for a customer with an order (`last_order_at` present); otherwise all are None.
`thresholds_from_population` recomputes a shop's thresholds from its customers (quintiles).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

THRESHOLDS_PER_DIMENSION = 4
"""Four thresholds give five bands, scored 1 to 5."""

RFM_FACTS: tuple[str, ...] = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score")
"""Facts the engine derives from the thresholds; each is a number (scores 1-5, the sum 3-15) or None."""

_CENT = Decimal("0.01")


def _strictly_increasing(values: Sequence[Any]) -> bool:
    return all(a < b for a, b in pairwise(values))


@dataclass(frozen=True, slots=True)
class RfmThresholds:
    """Four strictly increasing thresholds per dimension."""

    recency_days: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        for name, values in (
            ("recency_days", self.recency_days),
            ("frequency", self.frequency),
            ("monetary", self.monetary),
        ):
            if len(values) != THRESHOLDS_PER_DIMENSION:
                raise ValueError(f"{name} needs exactly {THRESHOLDS_PER_DIMENSION} thresholds, got {len(values)}")
            if not _strictly_increasing(values):
                raise ValueError(f"{name} thresholds must be strictly increasing, got {list(values)}")
        if self.recency_days[0] < 1:
            raise ValueError("recency_days thresholds must be at least 1 day")
        if self.frequency[0] < 0:
            raise ValueError("frequency thresholds must not be negative")

    def as_yaml(self) -> dict[str, list[int] | list[str]]:
        """The `rfm:` section for segments.yaml (money as strings, as the file wants it)."""
        return {
            "recency_days": list(self.recency_days),
            "frequency": list(self.frequency),
            "monetary": [str(value) for value in self.monetary],
        }


class RfmScorer:
    """Scores with the recency thresholds precomputed as timedeltas (the engine's hot path)."""

    __slots__ = ("_frequency", "_monetary", "_recency", "thresholds")

    def __init__(self, thresholds: RfmThresholds) -> None:
        self.thresholds = thresholds
        self._recency = tuple(timedelta(days=days) for days in thresholds.recency_days)
        self._frequency = thresholds.frequency
        self._monetary = thresholds.monetary

    @property
    def recency_offsets(self) -> tuple[timedelta, ...]:
        """Ages at which the recency score drops by one."""
        return self._recency

    def recency(self, last_order_at: datetime | None, now: datetime) -> int | None:
        if last_order_at is None:
            return None
        if now.microsecond:
            now = now.replace(microsecond=0)
        # One point off per threshold reached: age >= t, i.e. last_order_at <= now - t.
        return 5 - bisect_right(self._recency, now - last_order_at)

    def frequency(self, orders_count: int | None) -> int | None:
        if orders_count is None:
            return None
        return 1 + bisect_right(self._frequency, orders_count)

    def monetary(self, net_spent: Decimal | None) -> int | None:
        if net_spent is None:
            return None
        return 1 + bisect_right(self._monetary, net_spent)

    def scores(self, facts: Mapping[str, Any], now: datetime) -> dict[str, int | None]:
        """All four RFM facts for one facts dict; all None without an order."""
        last = facts.get("last_order_at")
        if last is None:
            return dict.fromkeys(RFM_FACTS)
        recency = self.recency(last, now)
        frequency = self.frequency(facts.get("orders_count"))
        monetary = self.monetary(facts.get("net_spent"))
        total = None
        if recency is not None and frequency is not None and monetary is not None:
            total = recency + frequency + monetary
        return {
            "rfm_recency": recency,
            "rfm_frequency": frequency,
            "rfm_monetary": monetary,
            "rfm_score": total,
        }


def _quintile_cuts[T: (float, int, Decimal)](values: Sequence[T]) -> list[T]:
    """The value at ranks floor(i*n/5), i = 1..4 of the sorted values (nearest-rank quintiles)."""
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[min(n - 1, i * n // 5)] for i in range(1, THRESHOLDS_PER_DIMENSION + 1)]


def thresholds_from_values(
    recency_days: Iterable[float], frequency: Iterable[int], monetary: Iterable[Decimal]
) -> RfmThresholds:
    """Quintile thresholds from a population's values (one entry per customer with an order).

    Each threshold is the value at the 20th/40th/60th/80th percentile rank, so about a fifth of the
    customers fall in each band. Ties are common (most customers have one order), so each threshold
    is raised to at least the previous one plus one step (1 day, 1 order, 0.01), keeping them
    strictly increasing; recency is rounded up to whole days and at least 1 day.
    """
    ages, counts, spent = list(recency_days), list(frequency), list(monetary)
    if not ages or not counts or not spent:
        raise ValueError("thresholds need a population with at least one customer with an order")
    recency: list[int] = []
    for cut in _quintile_cuts(ages):
        recency.append(max(math.ceil(cut), 1, recency[-1] + 1 if recency else 1))
    orders: list[int] = []
    for count in _quintile_cuts(counts):
        orders.append(max(count, orders[-1] + 1 if orders else 0))
    money: list[Decimal] = []
    for amount in _quintile_cuts(spent):
        rounded = amount.quantize(_CENT)
        money.append(max(rounded, money[-1] + _CENT) if money else rounded)
    return RfmThresholds(tuple(recency), tuple(orders), tuple(money))


def thresholds_from_population(population: Iterable[Mapping[str, Any]], now: datetime) -> RfmThresholds:
    """Quintile thresholds from a shop's facts dicts (`profile_facts`), as of `now`.

    Customers without an order are skipped. Paste `result.as_yaml()` into the `rfm:` section.
    """
    if now.microsecond:
        now = now.replace(microsecond=0)
    ages: list[float] = []
    counts: list[int] = []
    spent: list[Decimal] = []
    for facts in population:
        last = facts.get("last_order_at")
        if last is None:
            continue
        ages.append(max((now - last).total_seconds(), 0.0) / 86400)
        counts.append(int(facts.get("orders_count") or 0))
        spent.append(Decimal(facts.get("net_spent") or 0))
    return thresholds_from_values(ages, counts, spent)
