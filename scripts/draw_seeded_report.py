"""Draw `evergreen report --png` for a seeded store, as the README shows it (docs/images/segment-report.png).

A synthetic shop of 120 customers (as `./evergreen seed-shop` makes them; a third live around the shop in Ottawa)
is backfilled from the Shopify sandbox (its email engagement from the Klaviyo sandbox) into in-process moto and
synced to the Klaviyo sandbox; then 20 days pass, one sweep and one sync a day, so segments fill and drain by time
alone; then the report is drawn. Usage:

    uv run python scripts/draw_seeded_report.py docs/images/segment-report.png
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from moto import mock_aws

from evergreen.backfill_wiring import build_backfill, build_engagement_history
from evergreen.clock import FixedClock
from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.segments import DEFAULT_DEFINITIONS_PATH
from evergreen.service.sweep import SweepRequest
from evergreen.service.sync import SegmentSync
from evergreen.settings import Settings
from evergreen.shopify.admin import ShopifyAdmin
from evergreen.storage import profiles
from evergreen.wiring import Edges
from evergreen_cli.commands.report import draw_png, print_human, segment_reports
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.sandboxes.klaviyo_api import start_sandbox
from evergreen_cli.sandboxes.shopify_admin import start_shopify_sandbox
from evergreen_cli.sandboxes.synthetic_shop import DEFAULT_SHOP, synthetic_engagement, synthetic_store

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAYS = 20
EXTRA_SEGMENTS = """
  local:
    description: Ships within 25 km of the shop in Ottawa.
    when: {coordinates: {within_km: {latitude: 45.4215, longitude: -75.6972, km: 25}}}
  overdue:
    description: Expected to have ordered again 14 days ago or more.
    when: {expected_next_order_at: {older_than: 14d}}
"""


def drain(edges: Edges) -> list[SegmentChange]:
    url = edges.settings.segment_changes_queue_url
    found: list[SegmentChange] = []
    while messages := edges.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(SegmentChange.model_validate_json(message["Body"]))
            edges.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def main(output: Path) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    profiles.MARKS_IN_FLIGHT = 1  # in-process moto's transactions are not thread-safe (AWS's are)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    definitions = Path(tempfile.mkdtemp()) / "segments.yaml"
    definitions.write_text(DEFAULT_DEFINITIONS_PATH.read_text() + EXTRA_SEGMENTS)
    with mock_aws(), start_shopify_sandbox(port=0) as shopify, start_sandbox(port=0) as klaviyo_sandbox:
        environment = create_resources({DEFAULT_SHOP: "secret"}, {DEFAULT_SHOP: {"api_key": "pk_x"}})
        settings = Settings.from_env({**environment, "SEGMENTS_FILE": str(definitions)})
        clock = FixedClock(START)
        edges = Edges(settings, clock)
        store = synthetic_store(120, seed=7, now=START, shop=DEFAULT_SHOP)
        shopify.load(store)
        engagement = synthetic_engagement(store, seed=7, now=START)
        httpx.post(f"{klaviyo_sandbox.url}/_sandbox/engagement", json=engagement).raise_for_status()
        admin = ShopifyAdmin(DEFAULT_SHOP, "shpat_sandbox", base_url=shopify.url, sleep=lambda _: None)
        klaviyo = KlaviyoClient(klaviyo_sandbox.url, "pk_x", http=httpx.Client(), sleep=lambda _: None)
        assert build_backfill(edges, admin, klaviyo, poll_every_s=0.0).run(DEFAULT_SHOP).finished
        build_engagement_history(edges, klaviyo).run(DEFAULT_SHOP)
        sync = SegmentSync(edges.store, lambda shop: KlaviyoPusher(klaviyo, {}), clock)
        for _ in range(DAYS):
            clock.advance(timedelta(days=1))
            edges.sweep.run(SweepRequest())
            sync.sync(drain(edges))
        since = START.date()
        reports = segment_reports(edges, DEFAULT_SHOP, since)
        print_human(reports, since)
        draw_png(reports, since, output, DEFAULT_SHOP)
    print(f"chart written to {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/segment-report.png"))
