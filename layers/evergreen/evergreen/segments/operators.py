"""Every rule operator, in one registry: the kinds of fact it applies to, its value's shape and its check.

The loader (`definitions.py`) reads an operator's value by its `operand` shape and refuses it on other
kinds; the engine (`engine.py`) builds its check from `check`. Adding a value operator is one entry here
(and its row in docs/segments.md). `exists` and the time operators (`older_than`, `within`, `between`)
have no `check`: the engine evaluates them itself, since a time operator also says when its answer flips.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from evergreen.domain.location import great_circle_km, normalise_postal_code

type Operand = Literal["flag", "duration", "duration_range", "value", "values", "prefixes", "circle"]
"""How the operator's value is written: true/false; `90d`; `[60d, 180d]`; one value of the fact's kind
(a string for string and set facts); a non-empty list of such values; a non-empty list of prefixes (compared
as postal codes are: upper-case, no spaces); a circle `{latitude: 45.42, longitude: -75.7, km: 25}`."""

type Check = Callable[[Any], Callable[[Any], bool]]
"""Given the expected value x, a test of the fact's value v (never called with a missing fact)."""

FACT_KINDS: Final = ("number", "money", "string", "set", "boolean", "timestamp", "point")


@dataclass(frozen=True, slots=True)
class Operator:
    kinds: frozenset[str]
    operand: Operand
    check: Check | None = None


def _kinds(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


def _starts_with(prefixes: frozenset[str]) -> Callable[[Any], bool]:
    kept = tuple(sorted(p for p in (normalise_postal_code(prefix) for prefix in prefixes) if p))

    def starts_with(value: Any) -> bool:
        normalised = normalise_postal_code(value)
        return normalised is not None and normalised.startswith(kept)

    return starts_with


def _within_km(circle: tuple[float, float, float]) -> Callable[[Any], bool]:
    latitude, longitude, km = circle
    return lambda point: great_circle_km((latitude, longitude), point) <= km


_ORDERED = _kinds("number", "money")

REGISTRY: Final[dict[str, Operator]] = {
    "exists": Operator(_kinds(*FACT_KINDS), "flag"),
    "eq": Operator(_kinds("number", "money", "string"), "value", lambda x: functools.partial(operator.eq, x)),
    "ne": Operator(_kinds("number", "money", "string"), "value", lambda x: functools.partial(operator.ne, x)),
    "gt": Operator(_ORDERED, "value", lambda x: functools.partial(operator.lt, x)),  # x < v  <=>  v > x
    "gte": Operator(_ORDERED, "value", lambda x: functools.partial(operator.le, x)),
    "lt": Operator(_ORDERED, "value", lambda x: functools.partial(operator.gt, x)),
    "lte": Operator(_ORDERED, "value", lambda x: functools.partial(operator.ge, x)),
    "in": Operator(_kinds("number", "string"), "values", lambda xs: xs.__contains__),
    "contains": Operator(_kinds("set"), "value", lambda x: lambda v: x in v),
    "contains_any": Operator(_kinds("set"), "values", lambda xs: lambda v: not xs.isdisjoint(v)),
    "contains_all": Operator(_kinds("set"), "values", lambda xs: xs.issubset),
    "starts_with": Operator(_kinds("string"), "prefixes", _starts_with),
    "within_km": Operator(_kinds("point"), "circle", _within_km),
    "is": Operator(_kinds("boolean"), "flag", lambda x: functools.partial(operator.is_, x)),
    "older_than": Operator(_kinds("timestamp"), "duration"),
    "within": Operator(_kinds("timestamp"), "duration"),
    "between": Operator(_kinds("timestamp"), "duration_range"),
}
"""Every operator a definition may use, by name."""

TIME_OPERATORS: Final = frozenset(name for name, op in REGISTRY.items() if op.operand.startswith("duration"))

OPERATORS: Final[dict[str, frozenset[str]]] = {
    kind: frozenset(name for name, op in REGISTRY.items() if kind in op.kinds) for kind in FACT_KINDS
}
"""Which operators apply to which kind of fact."""

CHECKS: Final[dict[str, Check]] = {name: op.check for name, op in REGISTRY.items() if op.check is not None}
"""The value operators' checks, for the engine."""
