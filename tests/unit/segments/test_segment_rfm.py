"""RFM scores 1-5 from the file's thresholds, and thresholds recomputed from a shop's own customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml

from evergreen.segments import (
    DEFAULT_DEFINITIONS_PATH,
    RfmThresholds,
    evaluate,
    parse_definitions,
    thresholds_from_population,
    thresholds_from_values,
)
from evergreen.segments.rfm import RfmScorer

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEFAULT = RfmThresholds((30, 60, 120, 240), (1, 2, 3, 5), tuple(Decimal(v) for v in ("50", "150", "400", "1000")))


@pytest.mark.parametrize(
    ("age", "score"),
    [
        (timedelta(0), 5),
        (30 * DAY - timedelta(seconds=1), 5),
        (30 * DAY, 4),
        (60 * DAY, 3),
        (120 * DAY, 2),
        (240 * DAY - timedelta(microseconds=1), 2),
        (240 * DAY, 1),
        (-5 * DAY, 5),
    ],
)
def test_recency_drops_a_point_the_second_each_threshold_is_reached(age: timedelta, score: int) -> None:
    assert RfmScorer(DEFAULT).recency(NOW - age, NOW) == score


@pytest.mark.parametrize(("orders", "score"), [(0, 1), (1, 2), (2, 3), (3, 4), (4, 4), (5, 5), (50, 5)])
def test_frequency_scores_one_plus_the_thresholds_reached(orders: int, score: int) -> None:
    assert RfmScorer(DEFAULT).frequency(orders) == score


@pytest.mark.parametrize(
    ("spent", "score"), [("-10", 1), ("49.99", 1), ("50", 2), ("399.99", 3), ("400.00", 4), ("1000", 5)]
)
def test_monetary_scores_one_plus_the_thresholds_reached(spent: str, score: int) -> None:
    assert RfmScorer(DEFAULT).monetary(Decimal(spent)) == score


def test_a_customer_without_an_order_has_no_rfm_scores() -> None:
    scores = RfmScorer(DEFAULT).scores({"last_order_at": None, "orders_count": 0, "net_spent": Decimal(0)}, NOW)
    assert scores == {"rfm_recency": None, "rfm_frequency": None, "rfm_monetary": None, "rfm_score": None}


def test_the_rfm_score_is_the_sum_of_the_three() -> None:
    facts = {"last_order_at": NOW - 45 * DAY, "orders_count": 3, "net_spent": Decimal("160")}
    assert RfmScorer(DEFAULT).scores(facts, NOW) == {
        "rfm_recency": 4,
        "rfm_frequency": 4,
        "rfm_monetary": 3,
        "rfm_score": 11,
    }


def test_rfm_conditions_use_the_thresholds_from_the_file() -> None:
    defs = parse_definitions(
        "rfm: {recency_days: [1, 2, 3, 4], frequency: [10, 20, 30, 40], monetary: ['1', '2', '3', '4']}\n"
        "segments:\n"
        "  top: {description: d, when: {rfm_frequency: {gte: 2}}}\n"
    )
    facts: dict[str, Any] = {"last_order_at": NOW, "orders_count": 9, "net_spent": Decimal(0)}
    assert evaluate(facts, defs, NOW).segments == frozenset()
    assert evaluate({**facts, "orders_count": 10}, defs, NOW).segments == {"top"}


@pytest.mark.parametrize(
    ("recency", "frequency", "monetary"),
    [
        ((30, 60, 120), (1, 2, 3, 5), ("1", "2", "3", "4")),
        ((30, 30, 120, 240), (1, 2, 3, 5), ("1", "2", "3", "4")),
        ((0, 60, 120, 240), (1, 2, 3, 5), ("1", "2", "3", "4")),
        ((30, 60, 120, 240), (-1, 2, 3, 5), ("1", "2", "3", "4")),
        ((30, 60, 120, 240), (1, 2, 3, 5), ("4", "3", "2", "1")),
    ],
)
def test_thresholds_must_be_four_strictly_increasing_values(
    recency: tuple[int, ...], frequency: tuple[int, ...], monetary: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match=r"thresholds|at least|negative"):
        RfmThresholds(recency, frequency, tuple(Decimal(value) for value in monetary))


class TestRecomputingThresholds:
    def test_quintiles_of_an_even_population_split_it_in_fifths(self) -> None:
        thresholds = thresholds_from_values(
            recency_days=range(100), frequency=range(100), monetary=[Decimal(n) for n in range(100)]
        )
        assert thresholds.recency_days == (20, 40, 60, 80)
        assert thresholds.frequency == (20, 40, 60, 80)
        assert thresholds.monetary == tuple(Decimal(n).quantize(Decimal("0.01")) for n in (20, 40, 60, 80))

    def test_ties_still_give_strictly_increasing_thresholds(self) -> None:
        thresholds = thresholds_from_values(
            recency_days=[0.5] * 50, frequency=[1] * 90 + [2] * 10, monetary=[Decimal("20")] * 10
        )
        assert thresholds.recency_days == (1, 2, 3, 4)
        assert thresholds.frequency == (1, 2, 3, 4)
        assert thresholds.monetary == (Decimal("20.00"), Decimal("20.01"), Decimal("20.02"), Decimal("20.03"))

    def test_an_empty_population_has_no_thresholds(self) -> None:
        with pytest.raises(ValueError, match="at least one customer"):
            thresholds_from_population([], NOW)

    def test_a_shops_facts_give_thresholds_that_load_back_into_the_definitions_file(self) -> None:
        population = [
            {"last_order_at": NOW - n * 3 * DAY, "orders_count": 1 + n % 7, "net_spent": Decimal(n * 13)}
            for n in range(200)
        ] + [{"last_order_at": None, "orders_count": 0, "net_spent": Decimal(0)}] * 50
        thresholds = thresholds_from_population(population, NOW)
        assert thresholds.recency_days == (120, 240, 360, 480)
        document = yaml.safe_load(DEFAULT_DEFINITIONS_PATH.read_text(encoding="utf-8"))
        document["rfm"] = thresholds.as_yaml()
        defs = parse_definitions(yaml.safe_dump(document))
        assert defs.rfm == thresholds
