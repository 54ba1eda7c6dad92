"""A deliberately naive reference evaluator and hypothesis strategies for the segment engine's tests.

The oracle interprets the raw YAML-ish dict directly (no compilation, no shared code with the
engine) using integer microseconds since the epoch, with the documented semantics:

- the clock ticks in whole seconds: `now` is floored to the second; facts are exact;
- age = now - fact; older_than D: age >= D; within D: age < D; between [A, B]: A <= age < B;
- every operator but `exists` is false on a missing (None) fact;
- RFM: recency 5 - #{t : age >= t days}, frequency / monetary 1 + #{t : value >= t};
  all four are None without a last order, the score is their sum.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from evergreen.domain.facts import FACT_TYPES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MICRO = 1_000_000
RFM_NAMES = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score")
CONSENT_STATES = ("subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "invalid", "unknown")
OTHER_STRINGS = ("enabled", "disabled", "invited")
SET_MEMBERS = ("shoes", "hats", "vip", "wholesale")
POINTS = ((45.4215, -75.6972), (45.5019, -73.5674), (43.6532, -79.3832), (40.7128, -74.0060), (51.5072, -0.1276))
"""Ottawa, Montreal, Toronto, New York, London."""
PREFIXES = ("k", "K2", "H", "s", "subsc", "en", "x")
DURATIONS = ("0s", "1s", "90s", "1m", "2h", "1d", "3d", "30d", "60d", "90d", "120d", "180d", "240d", "1w", "52w")


def micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def seconds(duration: str) -> int:
    return int(duration[:-1]) * UNIT_SECONDS[duration[-1]]


# -- the oracle ----------------------------------------------------------------------------------


def _rfm(raw_rfm: dict[str, Any], facts: dict[str, Any], now_us: int) -> dict[str, int | None]:
    last = facts.get("last_order_at")
    if last is None:
        return dict.fromkeys(RFM_NAMES)
    age_us = now_us - micros(last)
    recency = 5 - sum(1 for days in raw_rfm["recency_days"] if age_us >= days * 86400 * MICRO)
    count = facts.get("orders_count")
    frequency = None if count is None else 1 + sum(1 for t in raw_rfm["frequency"] if count >= t)
    net = facts.get("net_spent")
    monetary = None if net is None else 1 + sum(1 for t in raw_rfm["monetary"] if net >= Decimal(str(t)))
    score = None if frequency is None or monetary is None else recency + frequency + monetary
    return {"rfm_recency": recency, "rfm_frequency": frequency, "rfm_monetary": monetary, "rfm_score": score}


def _test(op: str, expected: Any, value: Any, kind: str, now_us: int) -> bool:
    if op == "exists":
        return bool((value is not None) == expected)
    if value is None:
        return False
    if kind == "timestamp":
        age_us = now_us - micros(value)
        if op == "older_than":
            return age_us >= seconds(expected) * MICRO
        if op == "within":
            return age_us < seconds(expected) * MICRO
        low, high = expected
        return seconds(low) * MICRO <= age_us < seconds(high) * MICRO
    if kind == "money":
        expected = Decimal(str(expected))
    if op == "is":
        return bool(value == expected)
    if op == "eq":
        return bool(value == expected)
    if op == "ne":
        return bool(value != expected)
    if op == "gt":
        return bool(value > expected)
    if op == "gte":
        return bool(value >= expected)
    if op == "lt":
        return bool(value < expected)
    if op == "lte":
        return bool(value <= expected)
    if op == "in":
        return bool(value in expected)
    if op == "contains":
        return bool(expected in value)
    if op == "starts_with":
        return any(value.replace(" ", "").upper().startswith(prefix.replace(" ", "").upper()) for prefix in expected)
    if op == "within_km":
        return _haversine_km((expected["latitude"], expected["longitude"]), value) <= expected["km"]
    if op == "contains_any":
        return any(item in value for item in expected)
    if op == "contains_all":
        return all(item in value for item in expected)
    raise AssertionError(f"oracle does not know {op}")


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Independent of the engine's: the textbook haversine with the same mean Earth radius."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dphi, dlambda = phi2 - phi1, math.radians(b[1] - a[1])
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * 6371.0088 * math.atan2(math.sqrt(h), math.sqrt(1 - h))


def holds(condition: dict[str, Any], facts: dict[str, Any], now: datetime, raw_rfm: dict[str, Any] | None) -> bool:
    now_us = micros(now) // MICRO * MICRO
    (key, body), *rest = condition.items()
    assert not rest
    if key == "all":
        return all([holds(child, facts, now, raw_rfm) for child in body])
    if key == "any":
        return any([holds(child, facts, now, raw_rfm) for child in body])
    if key == "not":
        return not holds(body, facts, now, raw_rfm)
    if key in RFM_NAMES:
        assert raw_rfm is not None
        value, kind = _rfm(raw_rfm, facts, now_us)[key], "number"
    else:
        value, kind = facts.get(key), FACT_TYPES[key]
    return all(_test(op, expected, value, kind, now_us) for op, expected in body.items())


def membership(raw: dict[str, Any], facts: dict[str, Any], now: datetime) -> frozenset[str]:
    rfm = raw.get("rfm")
    return frozenset(name for name, segment in raw["segments"].items() if holds(segment["when"], facts, now, rfm))


# -- strategies ------------------------------------------------------------------------------------

nows = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))

_BOUNDARY_SECONDS = sorted({seconds(d) for d in DURATIONS})


@st.composite
def timestamps_near(draw: st.DrawFn, now: datetime) -> datetime:
    """Mostly close to `now`, often exactly on (or a second or a microsecond off) a boundary."""
    if draw(st.booleans()):
        offset = timedelta(seconds=draw(st.integers(-800 * 86400, 10 * 86400)))
    else:
        offset = -timedelta(seconds=draw(st.sampled_from(_BOUNDARY_SECONDS)) + draw(st.sampled_from((-1, 0, 1))))
    base = now.replace(microsecond=0) if draw(st.booleans()) else now
    jitter = timedelta(microseconds=draw(st.sampled_from((0, 0, 1, 500_000, 999_999, -1))))
    return base + offset + jitter


money_values = st.integers(-5_000, 200_000).map(lambda cents: Decimal(cents).scaleb(-2))


@st.composite
def facts_dicts(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    """A facts dict of the right kinds, any fact possibly None."""
    facts: dict[str, Any] = {}
    for name, kind in FACT_TYPES.items():
        if draw(st.integers(0, 4)) == 0:
            facts[name] = None
        elif kind == "number":
            facts[name] = draw(st.integers(0, 9))
        elif kind == "money":
            facts[name] = draw(money_values)
        elif kind == "timestamp":
            facts[name] = draw(timestamps_near(now))
        elif kind == "set":
            facts[name] = frozenset(draw(st.lists(st.sampled_from(SET_MEMBERS), max_size=3)))
        elif kind == "string":
            facts[name] = draw(st.sampled_from(CONSENT_STATES + OTHER_STRINGS))
        elif kind == "point":
            facts[name] = draw(st.sampled_from(POINTS))
        else:
            facts[name] = draw(st.booleans())
    return facts


_NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")
_OPS = {
    "number": _NUMBER_OPS,
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "exists"),
    "string": ("eq", "ne", "in", "starts_with", "exists"),
    "point": ("within_km", "exists"),
    "set": ("contains", "contains_any", "contains_all", "exists"),
    "boolean": ("is", "exists"),
    "timestamp": ("older_than", "within", "between", "older_than", "within", "between", "exists"),
}


def _operand(draw: st.DrawFn, fact: str, kind: str, op: str) -> Any:
    if op in ("exists", "is"):
        return draw(st.booleans())
    if op in ("older_than", "within"):
        return draw(st.sampled_from(DURATIONS))
    if op == "between":
        pair = draw(st.lists(st.sampled_from(DURATIONS), min_size=2, max_size=2, unique_by=seconds))
        return sorted(pair, key=seconds)
    if kind == "set":
        if op == "contains":
            return draw(st.sampled_from(SET_MEMBERS))
        return draw(st.lists(st.sampled_from(SET_MEMBERS), min_size=1, max_size=3))
    if op == "starts_with":
        return draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2))
    if op == "within_km":
        latitude, longitude = draw(st.sampled_from(POINTS))
        return {"latitude": latitude, "longitude": longitude, "km": draw(st.sampled_from((0, 10, 170, 400, 6000)))}
    if kind == "string":
        pool = CONSENT_STATES if fact.endswith("_consent") else CONSENT_STATES + OTHER_STRINGS
        if op == "in":
            return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        return draw(st.sampled_from(pool))
    if kind == "money":
        return str(draw(money_values))
    top = 15 if fact == "rfm_score" else 9
    if op == "in":
        return draw(st.lists(st.integers(0, top), min_size=1, max_size=3))
    return draw(st.integers(0, top))


@st.composite
def fact_conditions(draw: st.DrawFn, with_rfm: bool) -> dict[str, Any]:
    names = [*FACT_TYPES, *(RFM_NAMES if with_rfm else ())]
    fact = draw(st.sampled_from(names))
    kind = "number" if fact in RFM_NAMES else FACT_TYPES[fact]
    ops = draw(st.lists(st.sampled_from(_OPS[kind]), min_size=1, max_size=2, unique=True))
    return {fact: {op: _operand(draw, fact, kind, op) for op in ops}}


def conditions(with_rfm: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        fact_conditions(with_rfm),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
            children.map(lambda child: {"not": child}),
        ),
        max_leaves=6,
    )


_CONDITIONS = {with_rfm: conditions(with_rfm) for with_rfm in (False, True)}


@st.composite
def rfm_sections(draw: st.DrawFn) -> dict[str, Any]:
    def increasing(values: st.SearchStrategy[int]) -> list[int]:
        return sorted(draw(st.lists(values, min_size=4, max_size=4, unique=True)))

    return {
        "recency_days": increasing(st.integers(1, 300)),
        "frequency": increasing(st.integers(0, 9)),
        "monetary": [str(Decimal(cents).scaleb(-2)) for cents in increasing(st.integers(-1000, 150_000))],
    }


@st.composite
def definitions_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A raw definitions document drawn over the whole grammar."""
    with_rfm = draw(st.booleans())
    raw: dict[str, Any] = {"version": 1}
    if with_rfm:
        raw["rfm"] = draw(rfm_sections())
    count = draw(st.integers(1, 4))
    raw["segments"] = {
        f"segment_{index}": {"description": f"segment {index}", "when": draw(_CONDITIONS[with_rfm])}
        for index in range(count)
    }
    return raw
