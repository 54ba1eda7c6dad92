"""explain(): per segment, whether it holds and why, with every value the engine saw, ready for JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evergreen.domain.profile import Consent, Engagement, OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.segments import default_definitions, evaluate, parse_definitions
from tests.unit.segments.segment_oracle import facts_dicts, nows

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def regular() -> Profile:
    profile = Profile(
        shop="shop.myshopify.com",
        customer_id="7",
        email_normalized="grace@example.com",
        customer_tags=["wholesale"],
        email_consent=Consent(state="subscribed", updated_at=NOW - 300 * DAY),
        engagement=Engagement(last_email_open_at=NOW - 100 * DAY),
    )
    return with_orders(
        profile,
        [
            OrderRecord(order_id="1", created_at=NOW - 200 * DAY, total=Decimal("23.45")),
            OrderRecord(order_id="2", created_at=NOW - 90 * DAY, total=Decimal("100.00")),
        ],
    )


def test_an_explanation_is_plain_json_with_one_entry_per_segment() -> None:
    explanation = evaluate(regular().facts(), default_definitions(), NOW).explain()
    assert list(explanation) == list(default_definitions().names)
    assert json.loads(json.dumps(explanation)) == explanation


def test_a_time_condition_shows_the_value_seen_what_was_expected_and_when_it_flips() -> None:
    explanation = evaluate(regular().facts(), default_definitions(), NOW).explain()
    assert explanation["at_risk"] == {
        "member": True,
        "description": default_definitions().description("at_risk"),
        "condition": {
            "op": "between",
            "fact": "last_order_at",
            "expected": ["60d", "180d"],
            "value": (NOW - 90 * DAY).isoformat(),
            "held": True,
            "flips_at": (NOW + 90 * DAY).isoformat(),
        },
    }


def test_money_and_rfm_scores_are_shown_as_seen() -> None:
    explanation = evaluate(regular().facts(), default_definitions(), NOW).explain()
    assert explanation["big_spender"]["condition"] == {
        "op": "gte",
        "fact": "net_spent",
        "expected": "500.00",
        "value": "123.45",
        "held": False,
    }
    recency, score = explanation["vip"]["condition"]["conditions"]
    assert (recency["fact"], recency["value"], recency["held"]) == ("rfm_recency", 3, True)
    assert (score["fact"], score["value"], score["held"]) == ("rfm_score", 3 + 3 + 2, False)


def test_nested_conditions_show_every_branch_even_after_the_outcome_is_known() -> None:
    explanation = evaluate(regular().facts(), default_definitions(), NOW).explain()
    unengaged = explanation["unengaged"]
    assert unengaged["member"] is True
    branches = unengaged["condition"]["conditions"]
    assert [branch["op"] for branch in branches] == ["eq", "is", "is", "not", "any"]
    assert branches[0] == {
        "op": "eq",
        "fact": "email_consent",
        "expected": "subscribed",
        "value": "subscribed",
        "held": True,
    }
    no_recent = branches[3]
    assert no_recent["held"] is True
    assert no_recent["condition"]["held"] is False
    grace = branches[4]["conditions"]
    assert grace[0]["held"] is True
    assert grace[1]["op"] == "all"
    assert grace[1]["held"] is False, "shown even though the `any` already held"


def test_sets_are_shown_sorted_and_missing_values_as_null() -> None:
    defs = parse_definitions(
        "segments:\n"
        "  tagged: {description: d, when: {customer_tags: {contains_any: [wholesale, vip]}}}\n"
        "  phone: {description: d, when: {last_sms_click_at: {within: 30d}}}\n"
    )
    explanation = evaluate(regular().facts(), defs, NOW).explain()
    assert explanation["tagged"]["condition"]["expected"] == ["vip", "wholesale"]
    assert explanation["tagged"]["condition"]["value"] == ["wholesale"]
    assert explanation["phone"]["condition"]["value"] is None
    assert explanation["phone"]["condition"]["flips_at"] is None


def test_the_explanation_is_computed_once_on_demand() -> None:
    evaluation = evaluate(regular().facts(), default_definitions(), NOW)
    assert evaluation.explain() is evaluation.explain()


@settings(max_examples=100, deadline=None)
@given(data=st.data(), now=nows)
def test_an_explanation_always_agrees_with_the_membership_it_explains(data: Any, now: datetime) -> None:
    facts = data.draw(facts_dicts(now))
    evaluation = evaluate(facts, default_definitions(), now)
    explanation = evaluation.explain()
    for name, entry in explanation.items():
        assert entry["member"] == (name in evaluation.segments)
        assert entry["condition"]["held"] == entry["member"]
    json.dumps(explanation)
