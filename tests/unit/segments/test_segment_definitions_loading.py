"""Definitions are data checked at load time: every mistake is reported as file:line:col: message."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evergreen.domain.facts import FACT_TYPES
from evergreen.segments import (
    DEFAULT_DEFINITIONS_PATH,
    DefinitionsError,
    default_definitions,
    evaluate,
    load_definitions,
    parse_definitions,
    parse_duration,
)

VALID = """\
version: 1
segments:
  repeat:
    description: Two or more orders.
    klaviyo_list_id: AbC123
    when:
      orders_count: {gte: 2}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "segments.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> DefinitionsError:
    path = write(tmp_path, text)
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(path)
    return caught.value


def assert_reported_at(error: DefinitionsError, path: Path, line: int, column: int, words: str) -> None:
    expected = f"{path}:{line}:{column}: "
    matching = [str(problem) for problem in error.problems if str(problem).startswith(expected)]
    assert matching, f"nothing reported at {expected} in:\n{error}"
    assert any(re.search(words, message) for message in matching), f"{words!r} not in {matching}"


def test_the_default_pack_loads_validates_and_has_every_documented_segment() -> None:
    defs = default_definitions()
    assert defs.names == (
        "new",
        "repeat",
        "big_spender",
        "vip",
        "at_risk",
        "lapsed",
        "engaged",
        "unengaged",
        "subscribed_email",
        "abandoned_checkout",
    )
    assert all(defs.description(name) for name in defs.names)
    assert defs.rfm is not None
    assert default_definitions() is defs, "the default pack is compiled once"


def test_the_default_pack_is_a_file_shipped_inside_the_package() -> None:
    assert DEFAULT_DEFINITIONS_PATH.name == "segments.yaml"
    assert DEFAULT_DEFINITIONS_PATH.parent.name == "segments"
    assert load_definitions(DEFAULT_DEFINITIONS_PATH).hash == default_definitions().hash


def test_a_valid_file_exposes_names_descriptions_and_klaviyo_list_ids(tmp_path: Path) -> None:
    defs = load_definitions(write(tmp_path, VALID))
    assert defs.names == ("repeat",)
    assert defs.description("repeat") == "Two or more orders."
    assert defs.klaviyo_list_ids == {"repeat": "AbC123"}
    with pytest.raises(KeyError):
        defs.description("nope")


def test_segments_without_a_list_id_are_left_out_of_the_list_mapping() -> None:
    assert default_definitions().klaviyo_list_ids == {}


def test_an_unknown_fact_is_reported_at_its_line_and_column_with_a_suggestion(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          lapsed:
            description: Long gone.
            when:
              last_ordr_at: {older_than: 180d}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 5, 7, "unknown fact 'last_ordr_at'.*last_order_at")


def test_a_bad_duration_is_reported_at_the_value(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          lapsed:
            description: Long gone.
            when:
              last_order_at: {older_than: 180days}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 5, 35, "bad duration '180days'")


@pytest.mark.parametrize("duration", ["90", "-3d", "3y", "1.5d", "d", "90 d", "true"])
def test_durations_need_a_whole_number_and_a_unit(tmp_path: Path, duration: str) -> None:
    error = load_error(
        tmp_path,
        f"""\
        segments:
          engaged:
            description: Recently opened.
            when:
              last_email_open_at: {{within: {duration}}}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 5, 36, "duration")


def test_an_operator_that_does_not_fit_the_fact_kind_is_reported_at_the_operator(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          big:
            description: Spent a lot.
            when:
              net_spent: {older_than: 30d}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 5, 19, "'older_than' does not apply to money fact")


def test_an_unknown_key_is_reported_at_the_key(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          repeat:
            description: Two or more orders.
            whem:
              orders_count: {gte: 2}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 4, 5, "unknown key 'whem'.*did you mean 'when'")


def test_a_missing_description_is_reported_at_the_segment(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          repeat:
            when:
              orders_count: {gte: 2}
        """,
    )
    assert_reported_at(error, tmp_path / "segments.yaml", 3, 5, "missing its description")


def test_every_problem_in_a_file_is_reported_together_in_line_order(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          one:
            description: x
            when: {orders_count: {gte: "two"}}
          two:
            description: y
            when: {email_consent: {eq: subscrbed}}
        """,
    )
    lines = [problem.line for problem in error.problems]
    assert lines == [4, 7]
    assert "expected a number" in str(error.problems[0])
    assert "'subscrbed' is not a email_consent state (did you mean 'subscribed'?)" in str(error.problems[1])
    assert str(error).count("\n") == 1, "one problem per line"


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        ("net_spent: {gte: 500.0}", "quoted string"),
        ("net_spent: {gte: lots}", "amount like"),
        ("has_email: {is: 1}", "true or false"),
        ("orders_count: {gte: true}", "expected a number"),
        ("orders_count: {}", "needs an operator"),
        ("last_order_at: {between: [90d, 30d]}", "from < to"),
        ("last_order_at: {between: [30d]}", "two durations"),
        ("customer_tags: {contains_any: []}", "at least one value"),
        ("customer_tags: {contains: [a, b]}", "single value"),
        ("rfm_score: {gte: 12}", "needs an `rfm:` section"),
        ("{all: []}", "at least one condition"),
        ("{not: [ {has_email: {is: true}} ]}", "must be a mapping"),
        ("{has_email: {is: true}, has_phone: {is: true}}", "exactly one key"),
        ("{orders_count: {gte: 1, gte: 2}}", "duplicate key 'gte'"),
    ],
)
def test_malformed_conditions_are_rejected_with_a_located_message(tmp_path: Path, snippet: str, words: str) -> None:
    condition = snippet if snippet.startswith("{") else "{" + snippet + "}"
    text = f"segments:\n  s:\n    description: d\n    when: {condition}\n"
    path = write(tmp_path, text)
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(path)
    assert re.search(rf"^{re.escape(str(path))}:4:\d+: .*{words}", str(caught.value), re.MULTILINE), str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty"),
        ("segments: {}\n", 1, "at least one segment"),
        ("version: 2\nsegments: {s: {description: d, when: {has_email: {is: true}}}}\n", 1, "unsupported version"),
        ("sgments: {}\n", 1, "unknown key 'sgments'"),
        ("segments:\n  Bad-Name: {description: d, when: {has_email: {is: true}}}\n", 2, "bad segment name"),
        ("segments:\n  s: {description: d, klaviyo_list_id: 123, when: {has_email: {is: true}}}\n", 2, "quote it"),
        ("segments:\n  s: {description: '', when: {has_email: {is: true}}}\n", 2, "must not be empty"),
        ("segments:\n  s: [1, 2\n", 3, "not valid YAML"),
        (
            "rfm: {recency_days: [1, 2, 3]}\nsegments: {s: {description: d, when: {has_email: {is: true}}}}\n",
            1,
            "missing",
        ),
        (
            "rfm: {recency_days: [1, 2, 2, 3], frequency: [1, 2, 3, 4], monetary: ['1', '2', '3', '4']}\n"
            "segments: {s: {description: d, when: {has_email: {is: true}}}}\n",
            1,
            "strictly increasing",
        ),
        (
            "rfm: {recency_days: [1, 2, 3, 4], frequency: [1, 2, 3, 4], monetary: [1.5, '2', '3', '4']}\n"
            "segments: {s: {description: d, when: {has_email: {is: true}}}}\n",
            1,
            "quoted string",
        ),
        ("segments:\n  s: {description: d, when: {has_email: !!python/name:os.system {}}}\n", 2, "tag .* not allowed"),
        ("segments:\n  s: {description: !!binary aGk=, when: {has_email: {is: true}}}\n", 2, "tag .* not allowed"),
    ],
)
def test_malformed_files_are_rejected_with_a_located_message(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(path)
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: .*{words}", str(caught.value), re.MULTILINE), str(
        caught.value
    )


def test_a_missing_file_is_a_definitions_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError, match=r"nope\.yaml:1:1: cannot read the file"):
        load_definitions(tmp_path / "nope.yaml")


def test_yaml_tags_never_construct_code(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        segments:
          s:
            description: !!python/object/apply:os.system ["true"]
            when: {has_email: {is: true}}
        """,
    )
    assert "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed" in str(error)


def test_every_fact_kind_accepts_its_operators() -> None:
    samples = {
        "number": "{gte: 1, lt: 5, in: [1, 2]}",
        "money": '{gte: "1.00", ne: "2"}',
        "string": "{in: [subscribed, pending], ne: unknown, starts_with: [K2P]}",
        "set": "{contains: a, contains_any: [a, b], contains_all: [a]}",
        "boolean": "{is: false, exists: true}",
        "timestamp": "{older_than: 1w, within: 52w, between: [1h, 2d]}",
        "point": "{within_km: {latitude: 45.42, longitude: -75.7, km: 25}, exists: true}",
    }
    lines = [
        f"  s_{index}: {{description: d, when: {{{fact}: {samples[kind]}}}}}"
        for index, (fact, kind) in enumerate(FACT_TYPES.items())
    ]
    text = "segments:\n" + "\n".join(lines) + "\n"
    defs = parse_definitions(text)
    assert len(defs.names) == len(FACT_TYPES)


def test_durations_parse_to_exact_seconds() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("2w") == timedelta(days=14)
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("0s") == timedelta(0)


class TestTheHash:
    def test_the_hash_is_stable_across_loads(self, tmp_path: Path) -> None:
        path = write(tmp_path, VALID)
        assert load_definitions(path).hash == load_definitions(path).hash
        assert re.fullmatch(r"[0-9a-f]{16}", load_definitions(path).hash)

    def test_comments_layout_and_equivalent_spellings_keep_the_hash(self) -> None:
        one = parse_definitions("segments:\n  s:\n    description: d\n    when: {last_order_at: {older_than: 90d}, }\n")
        other = parse_definitions(
            "# a comment\nversion: 1\nsegments:\n  s:\n    when:\n      last_order_at:\n"
            "        older_than: 2160h\n    description: something else entirely\n"
        )
        assert one.hash == other.hash

    @pytest.mark.parametrize(
        "changed",
        [
            VALID.replace("gte: 2", "gte: 3"),
            VALID.replace("gte: 2", "gt: 2"),
            VALID.replace("repeat", "repeaters"),
            VALID.replace("      orders_count: {gte: 2}", "      not: {orders_count: {gte: 2}}"),
        ],
    )
    def test_a_change_that_matters_changes_the_hash(self, changed: str) -> None:
        assert parse_definitions(changed).hash != parse_definitions(VALID).hash

    def test_rfm_thresholds_are_part_of_the_hash(self) -> None:
        text = DEFAULT_DEFINITIONS_PATH.read_text(encoding="utf-8")
        changed = text.replace('"1000.00"', '"1200.00"')
        assert changed != text
        assert parse_definitions(changed).hash != default_definitions().hash


@pytest.mark.parametrize("name", ["local-customers", "overdue", "ab-holdout", "shopify-segment"])
def test_the_documented_location_overdue_and_ab_examples_load(name: str) -> None:
    text = (Path(__file__).parents[3] / "docs" / "segments.md").read_text()
    match = re.search(rf"<!-- segment-example: {name} -->\s*```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/segments.md has no example {name}"
    assert parse_definitions(match.group(1)).names


def test_location_operators_refuse_bad_values_with_their_place() -> None:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(
            "segments:\n"
            "  a: {description: d, when: {coordinates: {within_km: {latitude: 95, longitude: 0, km: 5}}}}\n"
            "  b: {description: d, when: {coordinates: {within_km: {latitude: 45}}}}\n"
            "  c: {description: d, when: {postal_code: {starts_with: []}}}\n"
            "  d: {description: d, when: {distance_km: {lte: 25}}}\n"
            "  e: {description: d, when: {province_code: {eq: ON}}}\n"
        )
    messages = [problem.message for problem in caught.value.problems]
    assert messages == [
        "a latitude is between -90 and 90 degrees, found 95",
        "`within_km` is missing longitude, km, e.g. {latitude: 45.42, longitude: -75.7, km: 25}",
        "`starts_with` needs at least one prefix",
        "fact 'distance_km' needs an `origin:` section with a latitude and a longitude",
        "a value for 'province_code' must be a string, found ON (quote it)",
    ]


def test_distance_km_is_measured_from_the_origin_and_the_origin_is_in_the_hash() -> None:
    text = (
        "origin: {latitude: 45.4215, longitude: -75.6972}\n"
        "segments:\n  near: {description: d, when: {distance_km: {lte: 25}}}\n"
    )
    defs = parse_definitions(text)
    moved = parse_definitions(text.replace("45.4215", "43.6532"))
    gatineau = {"coordinates": (45.4765, -75.7013)}
    montreal = {"coordinates": (45.5088, -73.5617)}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert evaluate(gatineau, defs, now).segments == {"near"}
    assert evaluate(montreal, defs, now).segments == frozenset()
    assert evaluate({}, defs, now).segments == frozenset()
    assert 160 < evaluate(montreal, defs, now).explain()["near"]["condition"]["value"] < 170
    assert defs.hash != moved.hash
    without_origin = parse_definitions("segments:\n  near: {description: d, when: {has_email: {is: true}}}\n")
    with_origin = parse_definitions(
        "origin: {latitude: 0, longitude: 0}\nsegments:\n  near: {description: d, when: {has_email: {is: true}}}\n"
    )
    assert without_origin.hash != with_origin.hash
