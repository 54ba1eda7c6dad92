"""`evergreen report` on the seeded store: a synthetic shop backfilled from the Shopify sandbox into tables on moto
server and synced to the Klaviyo sandbox; the report's figures are the table's truth, and `--png` draws them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from evergreen_cli.commands.report import draw_png, segment_reports
from evergreen_cli.sandboxes.synthetic_shop import synthetic_store
from tests.integration.backfill_harness import NOW, SHOP, Harness, make_harness

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch) -> Harness:
    shopify_sandbox.state.faults.clear()
    klaviyo_sandbox.clear()
    return make_harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch)


def profiles(harness: Harness) -> list[dict]:
    client, table = harness.edges.dynamodb, harness.edges.settings.profiles_table
    items: list[dict] = []
    kwargs: dict = {"TableName": table, "FilterExpression": "attribute_exists(profile)"}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return [json.loads(item["profile"]["S"]) for item in items]
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_the_report_of_a_backfilled_store_matches_the_table_and_draws_a_chart(harness: Harness, tmp_path: Path):
    harness.shopify_sandbox.load(synthetic_store(60, seed=22, now=NOW, shop=SHOP))
    assert harness.backfill(workers=2).run(SHOP).finished

    reports = {report.segment: report for report in segment_reports(harness.edges, SHOP, (NOW - timedelta(30)).date())}

    stored = profiles(harness)
    members = Counter(segment for profile in stored for segment in profile.get("membership", {}))
    assert {name: report.totals.members for name, report in reports.items()} == {
        name: members.get(name, 0) for name in harness.edges.definitions.names
    }
    big = [Decimal(p["order_stats"]["net_spent"]) for p in stored if "big_spender" in p.get("membership", {})]
    assert reports["big_spender"].totals.net_spent == sum(big, Decimal(0))
    assert reports["repeat"].entered == members["repeat"], "every backfilled member entered today"
    assert reports["engaged"].totals.engaged_share in (None, 1.0), "the engaged segment is all engaged"

    chart = tmp_path / "report.png"
    draw_png(list(reports.values()), (NOW - timedelta(30)).date(), chart, SHOP)
    assert chart.read_bytes()[:8] == PNG_MAGIC and chart.stat().st_size > 20_000
