"""`evergreen explain`: a compact table by default (segment, member, deciding condition with the value seen,
flips at), the full explanation with --json."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from evergreen.domain.profile import OrderRecord, Profile
from evergreen.domain.reducers import with_orders
from evergreen.segments import default_definitions, evaluate
from evergreen_cli.commands.explain import condition_text, deciding_condition, table_rows

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def report_for(profile: Profile) -> dict:
    evaluation = evaluate(profile.facts(), default_definitions(), NOW)
    return {"explanation": evaluation.explain()}


def customer(last_order_at: datetime, total: str) -> Profile:
    blank = Profile(shop="s.myshopify.com", customer_id="7")
    return with_orders(blank, [OrderRecord(order_id="1", created_at=last_order_at, total=Decimal(total))])


def test_each_segment_is_one_row_with_its_deciding_condition_and_the_value_seen():
    rows = {row[0]: row for row in table_rows(report_for(customer(datetime(2026, 11, 20, tzinfo=UTC), "700.00")))}

    assert set(rows) == set(default_definitions().names)
    _, member, condition, flips_at = rows["new"]
    assert member == "yes"
    assert condition.startswith("first_order_at within 30d (seen 2026-11-20")
    assert flips_at.startswith("2026-12-20")
    assert rows["big_spender"][1] == "yes" and "700" in rows["big_spender"][2]
    assert rows["lapsed"][1] == "no" and "last_order_at" in rows["lapsed"][2]


def test_a_failed_all_is_decided_by_its_first_failing_condition():
    tree = {
        "op": "all",
        "held": False,
        "conditions": [
            {"op": "gte", "fact": "orders_count", "expected": 2, "value": 3, "held": True},
            {"op": "is", "fact": "has_email", "expected": True, "value": False, "held": False},
        ],
    }
    assert deciding_condition(tree)["fact"] == "has_email"


def test_a_held_all_is_decided_by_the_condition_that_flips_first():
    tree = {
        "op": "all",
        "held": True,
        "conditions": [
            {"op": "within", "fact": "a", "expected": "90d", "value": "x", "held": True, "flips_at": "2027-03-01"},
            {"op": "within", "fact": "b", "expected": "30d", "value": "y", "held": True, "flips_at": "2027-01-01"},
        ],
    }
    assert deciding_condition(tree)["fact"] == "b"


def test_under_not_the_child_decides():
    atom = {"op": "is", "fact": "bounced", "expected": True, "value": False, "held": False}
    assert deciding_condition({"op": "not", "held": True, "condition": atom}) is atom
    assert condition_text(atom) == "bounced is True (seen False)"
