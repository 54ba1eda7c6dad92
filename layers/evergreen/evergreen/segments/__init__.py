"""The segment engine: declarative definitions, compiled once, evaluated fast and explained.

    defs = default_definitions()                    # or load_definitions("segments.yaml")
    ev = evaluate(profile.facts(), defs, clock.now())
    ev.segments, ev.next_transition_at, ev.explain()

Pure: no I/O besides reading the definitions file. docs/segments.md is the reference.
"""

from evergreen.segments.definitions import DefinitionsError, Problem, parse_duration
from evergreen.segments.engine import (
    DEFAULT_DEFINITIONS_PATH,
    Definitions,
    Evaluation,
    default_definitions,
    evaluate,
    load_definitions,
    parse_definitions,
)
from evergreen.segments.rfm import RFM_FACTS, RfmThresholds, thresholds_from_population, thresholds_from_values

__all__ = [
    "DEFAULT_DEFINITIONS_PATH",
    "RFM_FACTS",
    "Definitions",
    "DefinitionsError",
    "Evaluation",
    "Problem",
    "RfmThresholds",
    "default_definitions",
    "evaluate",
    "load_definitions",
    "parse_definitions",
    "parse_duration",
    "thresholds_from_population",
    "thresholds_from_values",
]
