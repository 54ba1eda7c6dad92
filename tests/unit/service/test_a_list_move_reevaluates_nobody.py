"""Moving a segment to another Klaviyo list changes no membership: same definitions hash, no full sweep."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from evergreen.segments import parse_definitions
from evergreen.service.sweep import SweepRequest
from evergreen.wiring import Edges

RULES = """\
version: 1
segments:
  repeat:
    description: Two or more orders.
    {list}
    when:
      orders_count: {{gte: 2}}
"""


def pack(list_line: str) -> str:
    return RULES.format(list=list_line)


def test_changing_only_a_klaviyo_list_id_keeps_the_definitions_hash():
    without = parse_definitions(pack("klaviyo_list_id: AbC123").replace("    klaviyo_list_id: AbC123\n", ""))
    first = parse_definitions(pack("klaviyo_list_id: AbC123"))
    second = parse_definitions(pack("klaviyo_list_id: XyZ789"))

    assert first.hash == second.hash == without.hash
    assert first.klaviyo_list_ids == {"repeat": "AbC123"} and second.klaviyo_list_ids == {"repeat": "XyZ789"}


def test_changing_the_rule_still_changes_the_hash():
    assert (
        parse_definitions(pack("klaviyo_list_id: AbC123")).hash
        != parse_definitions(pack("klaviyo_list_id: AbC123").replace("gte: 2", "gte: 3")).hash
    )


def test_after_a_list_move_is_deployed_the_scheduled_sweep_stays_a_due_sweep(edges, clock, world, tmp_path: Path):
    old = tmp_path / "old.yaml"
    old.write_text(pack("klaviyo_list_id: AbC123"))
    new = tmp_path / "new.yaml"
    new.write_text(pack("klaviyo_list_id: XyZ789"))
    before = Edges(edges.settings.model_copy(update={"segments_file": str(old)}), clock)
    before.sweep.run(SweepRequest())  # the table records the deployed definitions

    clock.advance(timedelta(minutes=5))
    after = Edges(edges.settings.model_copy(update={"segments_file": str(new)}), clock)
    report = after.sweep.run(SweepRequest())

    assert report.mode == "due"
    assert after.store.swept_definitions_hash() == before.definitions.hash
