"""Sweep figures on in-process moto: 20,000 profiles, 1% due.

sweep.read_ratio         profile items read by a scheduled sweep / profiles due
sweep.full_scan_items    profile items read by a full re-evaluation ({"full": true})
sweep.due_profiles       how many were due
sweep.due_sweep_ms       the scheduled sweep's own duration (in-process moto, so only indicative)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

PROFILES = 20_000
DUE_EVERY = 100  # 1% due


def run() -> dict[str, object]:
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws  # noqa: PLC0415

    from evergreen.clock import FixedClock  # noqa: PLC0415
    from evergreen.domain.profile import OrderRecord, Profile  # noqa: PLC0415
    from evergreen.domain.reducers import with_orders  # noqa: PLC0415
    from evergreen.service.membership import reevaluate  # noqa: PLC0415
    from evergreen.service.sweep import SweepRequest  # noqa: PLC0415
    from evergreen.settings import Settings  # noqa: PLC0415
    from evergreen.wiring import Edges  # noqa: PLC0415
    from evergreen_cli.local_stack.inprocess import create_resources  # noqa: PLC0415
    from evergreen_cli.local_stack.metering import ProfileItemReads  # noqa: PLC0415

    with mock_aws():
        settings = Settings.from_env({**create_resources({}, {}), "DUE_SHARDS": "8"})
        clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
        edges = Edges(settings, clock)
        now = clock.now()
        profiles = []
        for number in range(PROFILES):
            due = number % DUE_EVERY == 0
            last_order = now - timedelta(days=180 if due else 20) + timedelta(minutes=5)
            profile = with_orders(
                Profile(shop="bench.myshopify.com", customer_id=str(number), email_normalized=f"c{number}@example.com"),
                [OrderRecord(order_id=str(number), created_at=last_order, total=Decimal("60.00"))],
            )
            profiles.append(reevaluate(profile, edges.definitions, now, version=1).profile)
        edges.store.backfill(profiles, now)
        edges.sweep.run(SweepRequest(dry_run=True))  # warm up: definitions, imports
        clock.advance(timedelta(minutes=10))
        reads = ProfileItemReads(edges.dynamodb)

        report = edges.sweep.run(SweepRequest())
        due_reads = reads.items
        reads.reset()
        full = edges.sweep.run(SweepRequest(full=True, dry_run=True))
    return {
        "sweep.due_profiles": report.due,
        "sweep.read_ratio": round(due_reads / report.due, 4) if report.due else None,
        "sweep.full_scan_items": reads.items,
        "sweep.due_sweep_ms": round(report.duration_ms, 1),
        "sweep.profiles": PROFILES,
        "sweep.full_scan_evaluated": full.evaluated,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
