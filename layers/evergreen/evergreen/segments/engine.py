"""Compile definitions into closures once; evaluate membership, the next transition and explanations.

Time, to the second: the engine's clock ticks once a second. `evaluate(facts, defs, now)` is
`evaluate(facts, defs, floor(now))` (microseconds dropped from `now`); timestamp facts are compared
exactly. Every time-relative condition therefore flips at a whole second: `older_than D` and
`within D` at `ceil(fact) + D`, `between [A, B]` at `ceil(fact) + A` and `ceil(fact) + B`.

Next transition: those flip instants after `now` are the only instants where membership can
change with no new event. They are visited in order and, at each, only the segments that use the
flipping condition are re-evaluated; the first instant where a segment's membership differs from
its membership at `now` is `next_transition_at`. When none differs, membership is constant
forever after and `next_transition_at` is None.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import compress
from pathlib import Path
from typing import Any

from evergreen.domain.location import great_circle_km
from evergreen.segments.definitions import (
    DISTANCE_FACT,
    AllOf,
    AnyOf,
    Atom,
    Condition,
    Not,
    SegmentSpec,
    Spec,
    format_duration,
    parse_spec,
    read_spec,
)
from evergreen.segments.operators import CHECKS, TIME_OPERATORS
from evergreen.segments.rfm import RfmScorer, RfmThresholds

type Facts = Mapping[str, Any]
type Predicate = Callable[[Facts, datetime], bool]
type Getter = Callable[[Facts, datetime], Any]

DEFAULT_DEFINITIONS_PATH = Path(__file__).with_name("segments.yaml")
"""The default pack, packaged next to this module."""

_SECOND = timedelta(seconds=1)
_UNARY = CHECKS


type _ClockSource = tuple[str, tuple[timedelta, ...], tuple[tuple[int, ...], ...], tuple[bool, ...]]


def _lone_clock_atom(node: _Node) -> bool:
    """A segment that is one time condition on a timestamp (maybe negated) flips whenever it does."""
    while isinstance(node.condition, Not | AllOf | AnyOf) and len(node.children) == 1:
        node = node.children[0]
    return isinstance(node.condition, Atom) and node.condition.op in TIME_OPERATORS


def _ceil_second(at: datetime) -> datetime:
    return at.replace(microsecond=0) + _SECOND if at.microsecond else at


# -- atoms -------------------------------------------------------------------------------------


def _time_predicate(name: str, op: str, expected: Any) -> Predicate:
    if op == "older_than":
        older: timedelta = expected

        def older_than(facts: Facts, now: datetime) -> bool:
            value = facts.get(name)
            return value is not None and value <= now - older

        return older_than
    if op == "within":
        recent: timedelta = expected

        def within(facts: Facts, now: datetime) -> bool:
            value = facts.get(name)
            return value is not None and value > now - recent

        return within
    low, high = expected

    def between(facts: Facts, now: datetime) -> bool:
        value = facts.get(name)
        return value is not None and now - high < value <= now - low

    return between


def _fact_predicate(name: str, op: str, expected: Any) -> Predicate:
    if op in TIME_OPERATORS:
        return _time_predicate(name, op, expected)
    if op == "exists":
        if expected:
            return lambda facts, now: facts.get(name) is not None
        return lambda facts, now: facts.get(name) is None
    check = _UNARY[op](expected)

    def atom(facts: Facts, now: datetime) -> bool:
        value = facts.get(name)
        return value is not None and check(value)

    return atom


def _derived_predicate(getter: Getter, op: str, expected: Any) -> Predicate:
    if op == "exists":
        if expected:
            return lambda facts, now: getter(facts, now) is not None
        return lambda facts, now: getter(facts, now) is None
    check = _UNARY[op](expected)

    def atom(facts: Facts, now: datetime) -> bool:
        value = getter(facts, now)
        return value is not None and check(value)

    return atom


def _rfm_getters(scorer: RfmScorer) -> dict[str, Getter]:
    recency, frequency, monetary = scorer.recency, scorer.frequency, scorer.monetary

    def rfm_recency(facts: Facts, now: datetime) -> int | None:
        return recency(facts.get("last_order_at"), now)

    def rfm_frequency(facts: Facts, now: datetime) -> int | None:
        return None if facts.get("last_order_at") is None else frequency(facts.get("orders_count"))

    def rfm_monetary(facts: Facts, now: datetime) -> int | None:
        return None if facts.get("last_order_at") is None else monetary(facts.get("net_spent"))

    def rfm_score(facts: Facts, now: datetime) -> int | None:
        r = recency(facts.get("last_order_at"), now)
        if r is None:
            return None
        f = frequency(facts.get("orders_count"))
        m = monetary(facts.get("net_spent"))
        return None if f is None or m is None else r + f + m

    return {
        "rfm_recency": rfm_recency,
        "rfm_frequency": rfm_frequency,
        "rfm_monetary": rfm_monetary,
        "rfm_score": rfm_score,
    }


def _distance_getter(origin: tuple[float, float]) -> Getter:
    def distance_km(facts: Facts, now: datetime) -> float | None:
        point = facts.get("coordinates")
        return None if point is None else great_circle_km(origin, point)

    return distance_km


def _fact_getter(name: str) -> Getter:
    return lambda facts, now: facts.get(name)


def _property_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, frozenset | set):
        return sorted(str(item) for item in value)
    if isinstance(value, tuple):
        return list(value)
    return value


# -- combinators -------------------------------------------------------------------------------


def _all(predicates: tuple[Predicate, ...]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda facts, now: first(facts, now) and second(facts, now)
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda facts, now: first(facts, now) and second(facts, now) and third(facts, now)

    def all_of(facts: Facts, now: datetime) -> bool:
        for predicate in predicates:  # noqa: SIM110 (hot path: a loop beats all() over a generator)
            if not predicate(facts, now):
                return False
        return True

    return all_of


def _any(predicates: tuple[Predicate, ...]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda facts, now: first(facts, now) or second(facts, now)
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda facts, now: first(facts, now) or second(facts, now) or third(facts, now)

    def any_of(facts: Facts, now: datetime) -> bool:
        for predicate in predicates:  # noqa: SIM110 (hot path: a loop beats any() over a generator)
            if predicate(facts, now):
                return True
        return False

    return any_of


def _not(predicate: Predicate) -> Predicate:
    return lambda facts, now: not predicate(facts, now)


# -- compiled tree (kept for explain) ----------------------------------------------------------


class _Node:
    """A compiled condition: its predicate, children, and for atoms how to read and when it can flip."""

    __slots__ = ("children", "clock", "condition", "getter", "predicate")

    def __init__(
        self,
        condition: Condition,
        predicate: Predicate,
        children: tuple[_Node, ...] = (),
        getter: Getter | None = None,
        clock: tuple[str, tuple[timedelta, ...]] | None = None,
    ) -> None:
        self.condition = condition
        self.predicate = predicate
        self.children = children
        self.getter = getter
        self.clock = clock
        """(timestamp fact, offsets): the atom can only flip at ceil(fact) + offset."""


class _Compiler:
    def __init__(self, rfm: RfmThresholds | None, origin: tuple[float, float] | None = None) -> None:
        self.scorer = RfmScorer(rfm) if rfm is not None else None
        self.getters = _rfm_getters(self.scorer) if self.scorer is not None else {}
        if origin is not None:
            self.getters[DISTANCE_FACT] = _distance_getter(origin)
        self.clocks: set[tuple[str, timedelta]] = set()
        """Every (timestamp fact, offset) the segment being compiled depends on."""

    def compile(self, condition: Condition) -> _Node:
        match condition:
            case Atom():
                return self.atom(condition)
            case AllOf(conditions=items):
                children = tuple(self.compile(item) for item in items)
                return _Node(condition, _all(tuple(child.predicate for child in children)), children)
            case AnyOf(conditions=items):
                children = tuple(self.compile(item) for item in items)
                return _Node(condition, _any(tuple(child.predicate for child in children)), children)
            case Not(condition=item):
                child = self.compile(item)
                return _Node(condition, _not(child.predicate), (child,))
        raise TypeError(f"not a condition: {condition!r}")

    def atom(self, atom: Atom) -> _Node:
        clock: tuple[str, tuple[timedelta, ...]] | None = None
        derived = self.getters.get(atom.fact)
        if derived is not None:
            predicate = _derived_predicate(derived, atom.op, atom.expected)
            getter = derived
            if atom.fact in ("rfm_recency", "rfm_score") and self.scorer is not None:
                clock = ("last_order_at", self.scorer.recency_offsets)
        else:
            name = atom.fact
            predicate = _fact_predicate(name, atom.op, atom.expected)

            def getter(facts: Facts, now: datetime) -> Any:
                return facts.get(name)

            if atom.op in ("older_than", "within"):
                clock = (name, (atom.expected,))
            elif atom.op == "between":
                clock = (name, tuple(atom.expected))
        if clock is not None:
            self.clocks.update((clock[0], offset) for offset in clock[1])
        return _Node(atom, predicate, getter=getter, clock=clock)


# -- definitions -------------------------------------------------------------------------------


class Definitions:
    """Compiled, immutable segment definitions. Build with `load_definitions` or `parse_definitions`."""

    __slots__ = (
        "_clock_sources",
        "_predicates",
        "_property_getters",
        "_roots",
        "_specs",
        "hash",
        "klaviyo_properties",
        "names",
        "origin",
        "rfm",
        "source",
    )

    def __init__(self, spec: Spec) -> None:
        self.source = spec.source
        self.hash: str = spec.hash
        self.rfm = spec.rfm
        self.names: tuple[str, ...] = tuple(segment.name for segment in spec.segments)
        self._specs: dict[str, SegmentSpec] = {segment.name: segment for segment in spec.segments}
        self.origin = spec.origin
        self.klaviyo_properties = spec.klaviyo_properties
        compiler = _Compiler(spec.rfm, spec.origin)
        self._property_getters: tuple[tuple[str, Getter], ...] = tuple(
            (name, compiler.getters.get(name) or _fact_getter(name)) for name in spec.klaviyo_properties
        )
        roots: list[_Node] = []
        users: dict[tuple[str, timedelta], list[int]] = {}
        certain: set[tuple[str, timedelta]] = set()
        for index, segment in enumerate(spec.segments):
            compiler.clocks = set()
            root = compiler.compile(segment.when)
            roots.append(root)
            for clock in compiler.clocks:
                users.setdefault(clock, []).append(index)
            if _lone_clock_atom(root):
                certain.update(compiler.clocks)
        self._roots = tuple(roots)
        self._predicates = tuple(root.predicate for root in roots)
        by_fact: dict[str, list[tuple[timedelta, tuple[int, ...], bool]]] = {}
        for (fact, offset), indexes in sorted(users.items()):
            by_fact.setdefault(fact, []).append((offset, tuple(indexes), (fact, offset) in certain))
        self._clock_sources: tuple[_ClockSource, ...] = tuple(
            (
                fact,
                tuple(offset for offset, _, _ in steps),
                tuple(indexes for _, indexes, _ in steps),
                tuple(sure for _, _, sure in steps),
            )
            for fact, steps in by_fact.items()
        )
        """Per timestamp fact: its offsets ascending; for each, the segments whose truth it can flip
        and whether one of them surely flips (a segment that is that time condition alone)."""

    def property_values(self, facts: Facts, now: datetime) -> dict[str, Any]:
        """The `klaviyo_properties` facts at `now` as JSON values (timestamps ISO 8601 UTC, money and distances
        as numbers, sets as sorted lists, a missing fact as None); empty when the file lists none."""
        if now.microsecond:
            now = now.replace(microsecond=0)
        return {name: _property_value(getter(facts, now)) for name, getter in self._property_getters}

    @property
    def klaviyo_list_ids(self) -> dict[str, str]:
        """Segment -> Klaviyo list id, for the segments that have one."""
        return {name: spec.klaviyo_list_id for name, spec in self._specs.items() if spec.klaviyo_list_id}

    def description(self, name: str) -> str:
        try:
            return self._specs[name].description
        except KeyError:
            raise KeyError(f"no segment named {name!r}") from None

    def __repr__(self) -> str:
        return f"Definitions(source={self.source!r}, hash={self.hash!r}, segments={list(self.names)!r})"


def parse_definitions(text: str, source: str = "<definitions>") -> Definitions:
    """Validate and compile definitions given as YAML text."""
    return Definitions(parse_spec(text, source))


def load_definitions(path: str | Path) -> Definitions:
    """Validate and compile a definitions file; DefinitionsError carries `file:line:col: message`."""
    return Definitions(read_spec(path))


@functools.cache
def default_definitions() -> Definitions:
    """The packaged default pack (segments.yaml), compiled once."""
    return load_definitions(DEFAULT_DEFINITIONS_PATH)


# -- evaluation --------------------------------------------------------------------------------


class Evaluation:
    """Membership at `now` (to the second), when it next can change, and an explanation on demand."""

    __slots__ = ("_definitions", "_explanation", "_facts", "next_transition_at", "now", "segments")

    def __init__(
        self,
        segments: frozenset[str],
        next_transition_at: datetime | None,
        now: datetime,
        facts: Facts,
        definitions: Definitions,
    ) -> None:
        self.segments = segments
        self.next_transition_at = next_transition_at
        self.now = now
        """The instant evaluated: the given `now` floored to the second."""
        self._facts = facts
        self._definitions = definitions
        self._explanation: dict[str, Any] | None = None

    @property
    def definitions_hash(self) -> str:
        return self._definitions.hash

    def explain(self) -> dict[str, Any]:
        """Per segment: member, description and the condition tree with values seen (JSON-ready).

        Computed on first call from the facts given to `evaluate` (do not mutate them meanwhile).
        """
        if self._explanation is None:
            defs, facts, now = self._definitions, self._facts, self.now
            self._explanation = {
                name: {
                    "member": name in self.segments,
                    "description": defs.description(name),
                    "condition": _explain(root, facts, now),
                }
                for name, root in zip(defs.names, defs._roots, strict=True)
            }
        return self._explanation

    def __repr__(self) -> str:
        return (
            f"Evaluation(segments={sorted(self.segments)!r}, now={self.now.isoformat()}, "
            f"next_transition_at={self.next_transition_at.isoformat() if self.next_transition_at else None})"
        )


def evaluate(facts: Facts, defs: Definitions, now: datetime) -> Evaluation:
    """Membership of every segment at `now`, and the earliest later instant where any can change."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if now.microsecond:
        now = now.replace(microsecond=0)
    predicates = defs._predicates
    held = [predicate(facts, now) for predicate in predicates]

    # The first flip instant of each timestamp fact after now. ceil(fact) + offset > now
    # <=> offset > now - fact, as now and offsets are whole seconds.
    heads: list[list[Any]] = []
    for source in defs._clock_sources:
        value = facts.get(source[0])
        if value is None:
            continue
        offsets = source[1]
        first = bisect_right(offsets, now - value)
        if first < len(offsets):
            try:  # a timestamp near year 9999 has no representable flip
                base = value.replace(microsecond=0) + _SECOND if value.microsecond else value
                heads.append([base + offsets[first], first, base, source])
            except OverflowError:
                continue

    # Visit flip instants in order until one changes a segment's membership.
    next_at = None
    while heads:
        head = min(heads) if len(heads) > 1 else heads[0]
        at, step, base, (_, offsets, users, certain) = head
        if certain[step] or _differs(users[step], predicates, held, facts, at):
            next_at = at if at.tzinfo is UTC else at.astimezone(UTC)
            break
        step += 1
        if step < len(offsets):
            try:
                head[0], head[1] = base + offsets[step], step
                continue
            except OverflowError:
                pass
        heads.remove(head)
    return Evaluation(frozenset(compress(defs.names, held)), next_at, now, facts, defs)


def _differs(
    indexes: tuple[int, ...], predicates: tuple[Predicate, ...], held: list[bool], facts: Facts, at: datetime
) -> bool:
    for index in indexes:  # noqa: SIM110 (hot path)
        if predicates[index](facts, at) != held[index]:
            return True
    return False


# -- explanations ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, frozenset | set):
        return sorted(str(item) for item in value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _flips_at(node: _Node, facts: Facts, now: datetime, held: bool) -> datetime | None:
    """The first instant after `now` at which this atom's truth differs, with no new event."""
    assert node.clock is not None
    fact, offsets = node.clock
    value = facts.get(fact)
    if value is None:
        return None
    for offset in offsets:
        try:
            at = _ceil_second(value) + offset
        except OverflowError:
            continue
        if at > now and node.predicate(facts, at) != held:
            return at.astimezone(UTC)
    return None


def _explain(node: _Node, facts: Facts, now: datetime) -> dict[str, Any]:
    condition = node.condition
    if isinstance(condition, Atom):
        held = node.predicate(facts, now)
        assert node.getter is not None
        result: dict[str, Any] = {
            "op": condition.op,
            "fact": condition.fact,
            "expected": _jsonable(condition.shown),
            "value": _jsonable(node.getter(facts, now)),
            "held": held,
        }
        if node.clock is not None:
            result["flips_at"] = _jsonable(_flips_at(node, facts, now, held))
        return result
    children = [_explain(child, facts, now) for child in node.children]
    if isinstance(condition, Not):
        return {"op": "not", "held": not children[0]["held"], "condition": children[0]}
    combine = all if isinstance(condition, AllOf) else any
    return {
        "op": "all" if isinstance(condition, AllOf) else "any",
        "held": combine(child["held"] for child in children),
        "conditions": children,
    }
