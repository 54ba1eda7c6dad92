"""The definitions file: its schema, a line-precise validating loader and the canonical hash.

The file is data, never code. It is composed with `yaml.compose` (safe loader) so that every
node keeps its position, checked node by node against the schema below, and turned into a small
immutable syntax tree (`Spec`) that the engine compiles. Every problem found is reported as
`file:line:column: message`; all problems in a file are reported together. docs/segments.md is the
reference for the format.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, get_args

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from evergreen.domain.facts import FACT_TYPES
from evergreen.domain.profile import ConsentState
from evergreen.segments.operators import OPERATORS, REGISTRY
from evergreen.segments.rfm import RFM_FACTS, THRESHOLDS_PER_DIMENSION, RfmThresholds

SEMANTICS_VERSION: Final = 1
"""Bumped whenever the engine's meaning of a definition changes; part of the hash."""

FILE_VERSION: Final = 1
"""The only `version:` the loader accepts."""

COMBINATORS: Final = ("all", "any", "not")
DURATION_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
KNOWN_VALUES: Final[dict[str, frozenset[str]]] = {
    "email_consent": frozenset(get_args(ConsentState)),
    "sms_consent": frozenset(get_args(ConsentState)),
}
"""String facts with a closed set of values: a typo in a definition is an error, not a silent miss."""

_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LIST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOP_KEYS = ("version", "rfm", "origin", "klaviyo_properties", "segments")
_ORIGIN_KEYS = ("latitude", "longitude")
_CIRCLE_KEYS = ("latitude", "longitude", "km")
DISTANCE_FACT: Final = "distance_km"
"""Kilometres from the file's `origin:` to the profile's `coordinates`: a number fact the engine derives."""
_SEGMENT_KEYS = ("description", "klaviyo_list_id", "when")
_RFM_KEYS = ("recency_days", "frequency", "monetary")
_TAG = "tag:yaml.org,2002:"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where installed (same nodes and marks, much faster), else the pure-Python one."""
_PLAIN_TAGS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq"))


# -- the syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Atom:
    """One test of one fact: `fact op expected`."""

    fact: str
    kind: str
    op: str
    expected: Any
    """Parsed: int/float, Decimal, str, frozenset[str], bool, timedelta or (timedelta, timedelta)."""
    shown: Any
    """The expected value as written, JSON-friendly (durations as "90d", money as "500.00")."""


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


type Condition = Atom | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    name: str
    description: str
    klaviyo_list_id: str | None
    when: Condition


@dataclass(frozen=True, slots=True)
class Spec:
    """A validated definitions file."""

    source: str
    segments: tuple[SegmentSpec, ...]
    rfm: RfmThresholds | None
    hash: str
    origin: tuple[float, float] | None = None
    """(latitude, longitude) that `distance_km` is measured from."""
    klaviyo_properties: tuple[str, ...] = ()
    """Facts pushed to Klaviyo as `evergreen_<fact>` profile properties, beside `evergreen_segments`."""


# -- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class DefinitionsError(ValueError):
    """A definitions file that does not validate; `str()` is one `file:line:col: message` per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in problems))


# -- durations ---------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90d` -> 90 days. Units: s, m, h, d, w; a whole, non-negative number. ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"bad duration {text!r}: write a whole number and a unit s, m, h, d or w, e.g. 90d")
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: 7776000 s -> "90d"."""
    seconds = int(delta.total_seconds())
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0 and seconds:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- the loader --------------------------------------------------------------------------------


class _Invalid(Exception):
    """One node is wrong; its problem is already recorded."""


class _Reader:
    def __init__(self, source: str, rfm_allowed: bool = False) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.rfm_allowed = rfm_allowed
        self.origin_allowed = False
        self.klaviyo_properties: tuple[str, ...] = ()
        self._constructor = SafeConstructor()

    # reporting

    def fail(self, node: Node, message: str) -> _Invalid:
        mark = node.start_mark
        self.problems.append(Problem(self.source, mark.line + 1, mark.column + 1, message))
        return _Invalid(message)

    # node helpers

    def untagged(self, node: Node) -> None:
        """Only YAML's own types: an explicit tag such as !!python/... is refused, never constructed."""
        if node.tag not in _PLAIN_TAGS:
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed: definitions are plain data")

    def scalar(self, node: Node) -> Any:
        self.untagged(node)
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"expected a single value, found a {_describe(node)}")
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise self.fail(node, f"cannot read the value {_shown(node)} (tag {node.tag})") from None

    def string(self, node: Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or node.tag != _TAG + "str":
            raise self.fail(node, f"{what} must be a string, found {_shown(node)} (quote it)")
        return value

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, Node]:
        """Keys to value nodes, rejecting non-string, duplicate and (when `allowed`) unknown keys."""
        self.untagged(node)
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping, found a {_describe(node)}")
        result: dict[str, Node] = {}
        key_nodes: dict[str, Node] = {}
        broken = False
        for key_node, value_node in node.value:
            try:
                key = self.string(key_node, "a key")
            except _Invalid:
                broken = True
                continue
            if key in result:
                self.fail(key_node, f"duplicate key {key!r} (first at line {key_nodes[key].start_mark.line + 1})")
                broken = True
                continue
            if allowed is not None and key not in allowed:
                self.fail(key_node, f"unknown key {key!r} in {what}{_suggest(key, allowed)}")
                broken = True
                continue
            result[key] = value_node
            key_nodes[key] = key_node
        if broken:
            raise _Invalid(what)
        return result

    def key_node(self, node: MappingNode, key: str) -> Node:
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node
        return node

    def sequence(self, node: Node, what: str) -> list[Node]:
        self.untagged(node)
        if not isinstance(node, SequenceNode):
            raise self.fail(node, f"{what} must be a list, found a {_describe(node)}")
        return list(node.value)

    # the file

    def read(
        self, root: Node | None
    ) -> tuple[tuple[SegmentSpec, ...], RfmThresholds | None, tuple[float, float] | None]:
        if root is None:
            self.problems.append(Problem(self.source, 1, 1, "the file is empty: it needs a `segments:` mapping"))
            raise _Invalid("empty")
        top = self.mapping(root, "the definitions file", _TOP_KEYS)
        if "version" in top:
            version = self.scalar(top["version"])
            if version != FILE_VERSION or isinstance(version, bool):
                self.fail(top["version"], f"unsupported version {version!r}: this engine reads version {FILE_VERSION}")
        rfm = None
        if "rfm" in top:
            with contextlib.suppress(_Invalid):
                rfm = self.rfm(top["rfm"])
        self.rfm_allowed = "rfm" in top
        origin = None
        if "origin" in top:
            with contextlib.suppress(_Invalid):
                origin = self.origin(top["origin"])
        self.origin_allowed = "origin" in top
        if "klaviyo_properties" in top:
            with contextlib.suppress(_Invalid):
                self.klaviyo_properties = self.property_facts(top["klaviyo_properties"])
        if "segments" not in top:
            raise self.fail(root, "missing key 'segments' (a mapping of segment name to definition)")
        segments_node = top["segments"]
        segments_map = self.mapping(segments_node, "segments")
        if not segments_map:
            raise self.fail(segments_node, "segments must define at least one segment")
        assert isinstance(segments_node, MappingNode)
        segments: list[SegmentSpec] = []
        for name, node in segments_map.items():
            try:
                segments.append(self.segment(name, self.key_node(segments_node, name), node))
            except _Invalid:
                continue
        return tuple(segments), rfm, origin

    def property_facts(self, node: Node) -> tuple[str, ...]:
        items = self.sequence(node, "klaviyo_properties")
        names: list[str] = []
        for item in items:
            name = self.string(item, "a fact name in klaviyo_properties")
            try:
                self.fact_kind(name, item)
            except _Invalid:
                continue
            if name in names:
                self.fail(item, f"{name!r} is listed twice in klaviyo_properties")
            names.append(name)
        return tuple(names)

    def origin(self, node: Node) -> tuple[float, float]:
        fields = self.mapping(node, "origin", _ORIGIN_KEYS)
        missing = [key for key in _ORIGIN_KEYS if key not in fields]
        if missing:
            raise self.fail(node, f"origin is missing {', '.join(missing)}")
        return self.latitude(fields["latitude"]), self.longitude(fields["longitude"])

    def latitude(self, node: Node) -> float:
        value = self.number(node)
        if not -90 <= value <= 90:
            raise self.fail(node, f"a latitude is between -90 and 90 degrees, found {_shown(node)}")
        return float(value)

    def longitude(self, node: Node) -> float:
        value = self.number(node)
        if not -180 <= value <= 180:
            raise self.fail(node, f"a longitude is between -180 and 180 degrees, found {_shown(node)}")
        return float(value)

    def circle(self, node: Node) -> tuple[tuple[float, float, float], dict[str, float]]:
        fields = self.mapping(node, "`within_km`", _CIRCLE_KEYS)
        missing = [key for key in _CIRCLE_KEYS if key not in fields]
        if missing:
            raise self.fail(
                node, f"`within_km` is missing {', '.join(missing)}, e.g. {{latitude: 45.42, longitude: -75.7, km: 25}}"
            )
        latitude, longitude = self.latitude(fields["latitude"]), self.longitude(fields["longitude"])
        km = self.number(fields["km"])
        if km < 0:
            raise self.fail(fields["km"], f"`km` must not be negative, found {_shown(fields['km'])}")
        return (latitude, longitude, float(km)), {"latitude": latitude, "longitude": longitude, "km": km}

    def rfm(self, node: Node) -> RfmThresholds:
        fields = self.mapping(node, "rfm", _RFM_KEYS)
        missing = [key for key in _RFM_KEYS if key not in fields]
        if missing:
            raise self.fail(node, f"rfm is missing {', '.join(missing)}")
        recency: list[int] = self.thresholds(fields["recency_days"], "recency_days", self.whole_number)
        frequency: list[int] = self.thresholds(fields["frequency"], "frequency", self.whole_number)
        monetary: list[Decimal] = self.thresholds(fields["monetary"], "monetary", self.money)
        try:
            return RfmThresholds(tuple(recency), tuple(frequency), tuple(monetary))
        except ValueError as error:
            raise self.fail(node, f"rfm: {error}") from None

    def thresholds[T](self, node: Node, what: str, parse: Any) -> list[T]:
        items = self.sequence(node, f"rfm {what}")
        if len(items) != THRESHOLDS_PER_DIMENSION:
            raise self.fail(node, f"rfm {what} needs exactly {THRESHOLDS_PER_DIMENSION} thresholds, got {len(items)}")
        values: list[T] = [parse(item, f"an rfm {what} threshold") for item in items]
        for index in range(1, len(values)):
            if not values[index - 1] < values[index]:  # type: ignore[operator]
                raise self.fail(items[index], f"rfm {what} thresholds must be strictly increasing")
        return values

    def segment(self, name: str, name_node: Node, node: Node) -> SegmentSpec:
        if not _SEGMENT_NAME.match(name):
            raise self.fail(
                name_node, f"bad segment name {name!r}: lower-case letters, digits and _, starting with a letter"
            )
        fields = self.mapping(node, f"segment {name!r}", _SEGMENT_KEYS)
        problems_before = len(self.problems)
        description = None
        if "description" not in fields:
            self.fail(node, f"segment {name!r} is missing its description")
        else:
            try:
                description = self.string(fields["description"], "description").strip()
                if not description:
                    self.fail(fields["description"], "description must not be empty")
            except _Invalid:
                pass
        list_id = None
        if "klaviyo_list_id" in fields:
            try:
                list_id = self.string(fields["klaviyo_list_id"], "klaviyo_list_id")
                if not _LIST_ID.match(list_id):
                    self.fail(fields["klaviyo_list_id"], f"bad Klaviyo list id {list_id!r}")
            except _Invalid:
                pass
        when = None
        if "when" not in fields:
            self.fail(node, f"segment {name!r} is missing its `when:` condition")
        else:
            with contextlib.suppress(_Invalid):
                when = self.condition(fields["when"])
        if len(self.problems) > problems_before or when is None or description is None:
            raise _Invalid(name)
        return SegmentSpec(name, description, list_id, when)

    # conditions

    def condition(self, node: Node) -> Condition:
        self.untagged(node)
        if not isinstance(node, MappingNode):
            raise self.fail(
                node, f"a condition must be a mapping like `orders_count: {{gte: 2}}`, found {_shown(node)}"
            )
        if len(node.value) != 1:
            raise self.fail(
                node,
                f"a condition has exactly one key (all, any, not or a fact), found {len(node.value)}: "
                "combine several with `all:` or `any:`",
            )
        key_node, value_node = node.value[0]
        key = self.string(key_node, "a condition key")
        if key in ("all", "any"):
            items = self.sequence(value_node, f"`{key}`")
            if not items:
                raise self.fail(value_node, f"`{key}` needs at least one condition")
            children: list[Condition] = []
            broken = False
            for item in items:
                try:
                    children.append(self.condition(item))
                except _Invalid:
                    broken = True
            if broken:
                raise _Invalid(key)
            return AllOf(tuple(children)) if key == "all" else AnyOf(tuple(children))
        if key == "not":
            return Not(self.condition(value_node))
        return self.fact_test(key, key_node, value_node)

    def fact_kind(self, fact: str, node: Node) -> str:
        if fact in FACT_TYPES:
            return FACT_TYPES[fact]
        if fact in RFM_FACTS:
            if not self.rfm_allowed:
                raise self.fail(node, f"fact {fact!r} needs an `rfm:` section with thresholds")
            return "number"
        if fact == DISTANCE_FACT:
            if not self.origin_allowed:
                raise self.fail(node, f"fact {fact!r} needs an `origin:` section with a latitude and a longitude")
            return "number"
        known = (*FACT_TYPES, *RFM_FACTS, DISTANCE_FACT, *COMBINATORS)
        raise self.fail(node, f"unknown fact {fact!r}{_suggest(fact, known)}")

    def fact_test(self, fact: str, key_node: Node, node: Node) -> Condition:
        kind = self.fact_kind(fact, key_node)
        operators = self.mapping(node, f"the test of {fact!r}")
        if not operators:
            raise self.fail(node, f"the test of {fact!r} needs an operator, e.g. {{exists: true}}")
        assert isinstance(node, MappingNode)
        atoms: list[Condition] = []
        broken = False
        for op, value_node in operators.items():
            op_node = self.key_node(node, op)
            allowed = OPERATORS[kind]
            if op not in allowed:
                self.fail(
                    op_node,
                    f"operator {op!r} does not apply to {kind} fact {fact!r} "
                    f"(use one of: {', '.join(sorted(allowed))})",
                )
                broken = True
                continue
            try:
                expected, shown = self.operand(fact, kind, op, value_node)
            except _Invalid:
                broken = True
                continue
            atoms.append(Atom(fact, kind, op, expected, shown))
        if broken:
            raise _Invalid(fact)
        return atoms[0] if len(atoms) == 1 else AllOf(tuple(atoms))

    def operand(self, fact: str, kind: str, op: str, node: Node) -> tuple[Any, Any]:
        """The operator's value, read by its shape in the registry (segments/operators.py)."""
        shape = REGISTRY[op].operand
        if shape == "flag":
            return self.boolean(node, op), self.boolean(node, op)
        if shape == "duration":
            delta = self.duration(node)
            return delta, format_duration(delta)
        if shape == "duration_range":
            items = self.sequence(node, "`between`")
            if len(items) != 2:
                raise self.fail(node, "`between` takes two durations [from, to], e.g. [60d, 180d]")
            low, high = self.duration(items[0]), self.duration(items[1])
            if not low < high:
                raise self.fail(node, "`between: [from, to]` needs from < to")
            return (low, high), [format_duration(low), format_duration(high)]
        if shape == "values":
            items = self.sequence(node, f"`{op}`")
            if not items:
                raise self.fail(node, f"`{op}` needs at least one value")
            values = [self.value(fact, kind, item)[0] for item in items]
            return frozenset(values), sorted(set(values))
        if shape == "prefixes":
            items = self.sequence(node, f"`{op}`")
            if not items:
                raise self.fail(node, f"`{op}` needs at least one prefix")
            prefixes = [self.string(item, f"a prefix for {fact!r}") for item in items]
            return frozenset(prefixes), sorted(set(prefixes))
        if shape == "circle":
            return self.circle(node)
        return self.value(fact, kind, node)

    def value(self, fact: str, kind: str, node: Node) -> tuple[Any, Any]:
        """One value of the fact's kind (a string for string and set facts), and how it is shown."""
        if kind in ("string", "set"):
            text = self.text_value(fact, node)
            return text, text
        if kind == "money":
            amount = self.money(node, "a money value")
            return amount, str(amount)
        number = self.number(node)
        return number, number

    def boolean(self, node: Node, op: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise self.fail(node, f"`{op}` takes true or false, found {_shown(node)}")
        return value

    def duration(self, node: Node) -> timedelta:
        value = self.scalar(node)
        if not isinstance(value, str):
            raise self.fail(node, f"bad duration {_shown(node)}: write a number and a unit s, m, h, d or w, e.g. 90d")
        try:
            return parse_duration(value)
        except ValueError as error:
            raise self.fail(node, str(error)) from None

    def number(self, node: Node) -> int | float:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # noqa: PLR0124
            raise self.fail(node, f"expected a number, found {_shown(node)}")
        return value

    def whole_number(self, node: Node, what: str) -> int:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, f"{what} must be a whole number, found {_shown(node)}")
        return value

    def money(self, node: Node, what: str) -> Decimal:
        value = self.scalar(node)
        if isinstance(value, float):
            raise self.fail(node, f'write {what} as a quoted string, e.g. "500.00", not {_shown(node)}')
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(node, f'{what} must be an amount like "500.00", found {_shown(node)}')
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(node, f'{what} must be an amount like "500.00", found {_shown(node)}') from None
        if not amount.is_finite():
            raise self.fail(node, f"{what} must be a finite amount, found {_shown(node)}")
        return amount

    def text_value(self, fact: str, node: Node) -> str:
        value = self.string(node, f"a value for {fact!r}")
        known = KNOWN_VALUES.get(fact)
        if known is not None and value not in known:
            raise self.fail(node, f"{value!r} is not a {fact} state{_suggest(value, tuple(sorted(known)))}")
        return value


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    if isinstance(node, SequenceNode):
        return "list"
    return "value"


def _shown(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value) if node.tag == _TAG + "str" else str(node.value)
    return f"a {_describe(node)}"


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- canonical form and hash -------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, tuple):
        return [_canonical_value(item) for item in value]
    if isinstance(value, frozenset):
        return sorted(_canonical_value(item) for item in value)
    if isinstance(value, int | float):
        return format(Decimal(str(value)).normalize(), "f")
    return value


def canonical_condition(condition: Condition) -> Any:
    """A JSON-able form where equal meanings written differently (90d vs 2160h) look the same."""
    match condition:
        case Atom(fact=fact, op=op, expected=expected):
            return {fact: {op: _canonical_value(expected)}}
        case AllOf(conditions=children):
            return {"all": [canonical_condition(child) for child in children]}
        case AnyOf(conditions=children):
            return {"any": [canonical_condition(child) for child in children]}
        case Not(condition=child):
            return {"not": canonical_condition(child)}
    raise TypeError(f"not a condition: {condition!r}")


def definitions_hash(
    segments: tuple[SegmentSpec, ...],
    rfm: RfmThresholds | None,
    origin: tuple[float, float] | None = None,
    klaviyo_properties: tuple[str, ...] = (),
) -> str:
    """sha256 (first 16 hex) of what decides membership; descriptions and `klaviyo_list_id` excluded.

    A profile evaluated under one hash needs no re-evaluation under another with the same hash, so where a
    segment syncs is left out: moving a segment to another Klaviyo list changes no membership (SegmentSync
    fills the new list from the segment's current members).
    """
    content: dict[str, Any] = {
        "semantics": SEMANTICS_VERSION,
        "rfm": None
        if rfm is None
        else {
            "recency_days": list(rfm.recency_days),
            "frequency": list(rfm.frequency),
            "monetary": [_canonical_value(value) for value in rfm.monetary],
        },
        "segments": {segment.name: {"when": canonical_condition(segment.when)} for segment in segments},
    }
    if origin is not None:  # absent from files without one, so their hash is unchanged
        content["origin"] = [_canonical_value(value) for value in origin]
    if klaviyo_properties:  # what each profile sends: a new list re-evaluates (and so re-sends) everyone
        content["klaviyo_properties"] = list(klaviyo_properties)
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


# -- entry points ------------------------------------------------------------------------------


def parse_spec(text: str, source: str = "<definitions>") -> Spec:
    """Validate definitions text; DefinitionsError lists every problem as `source:line:col: message`."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise DefinitionsError([Problem(source, line, column, f"not valid YAML: {error.problem}")]) from None
    except yaml.YAMLError as error:
        raise DefinitionsError([Problem(source, 1, 1, f"not valid YAML: {error}")]) from None
    reader = _Reader(source)
    try:
        segments, rfm, origin = reader.read(root)
    except _Invalid:
        segments, rfm, origin = (), None, None
    if reader.problems:
        raise DefinitionsError(sorted(reader.problems, key=lambda problem: (problem.line, problem.column)))
    properties = reader.klaviyo_properties
    return Spec(source, segments, rfm, definitions_hash(segments, rfm, origin, properties), origin, properties)


def read_spec(path: str | Path) -> Spec:
    """Read and validate a definitions file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DefinitionsError([Problem(str(file), 1, 1, f"cannot read the file: {error}")]) from None
    return parse_spec(text, str(file))
