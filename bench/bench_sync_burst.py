"""Klaviyo requests for a burst of membership changes, on the local stack.

sync.requests_per_10k_changes        Klaviyo profile requests (profile import, bulk profile import jobs, profile
                                     look-ups) that 10,000 membership changes, published at once, cost when the
                                     sync function takes them as the template's event source hands them over
                                     (BatchSize 100): one bulk profile import job per batch of 50 or more
sync.requests_per_10k_changes_all    every Klaviyo API request of the burst (events and list moves included)
sync.burst_bulk_profile_jobs         bulk profile import jobs the burst cost (about one per sync invocation)
sync.burst_floor_requests            the floor in the same run: ceil(10,000 / BatchSize), one job per invocation
sync.requests_per_10k_changes_if_6mb what one bulk job per invocation would cost if each invocation took as many
                                     changes as a 6 MB Lambda payload holds (the measured message size; SQS's
                                     largest BatchSize is 10,000 with a batching window)

    uv run python bench/run.py sync_burst
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench_freshness import _options, _quiet

SHOP = "bench-sync-burst.myshopify.com"
CHANGES = int(os.environ.get("BENCH_SYNC_BURST_CHANGES", "2000"))
"""The burst, scaled to 10,000 in the figures: the local stack syncs about 10 changes a second on 2 cores, so 2,000
keep the run near 4 minutes (batches are independent, so the count scales linearly; set
BENCH_SYNC_BURST_CHANGES=10000 for the whole burst)."""
WAIT_S = 240.0
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
RECORD_OVERHEAD_BYTES = 600
"""An SQS event record's fields besides the body (ids, receipt handle, attributes, ARN), roughly."""


def _progress(message: str, started: float) -> None:
    print(f"   sync_burst {time.monotonic() - started:6.1f} s: {message}", file=sys.stderr, flush=True)


def requests_per_burst() -> dict[str, float]:
    from evergreen.domain.profile import OrderRecord, Profile  # noqa: PLC0415
    from evergreen.domain.reducers import with_orders  # noqa: PLC0415
    from evergreen.segments import default_definitions  # noqa: PLC0415
    from evergreen.service.membership import reevaluate  # noqa: PLC0415
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415
    from evergreen.storage.queue import SqsChangePublisher  # noqa: PLC0415
    from evergreen_local.stack import LocalStack  # noqa: PLC0415
    from evergreen_local.template import sqs_sources  # noqa: PLC0415

    started = time.monotonic()
    definitions = default_definitions()
    now = datetime.now(UTC)
    profiles, changes = [], []
    for number in range(CHANGES):
        blank = Profile(
            shop=SHOP,
            customer_id=str(850_000 + number),
            email=f"b{number}@example.com",
            email_normalized=f"b{number}@example.com",
        )
        ordered = with_orders(
            blank, [OrderRecord(order_id=f"b{number}", created_at=now - timedelta(days=2), total=Decimal(80))]
        )
        result = reevaluate(ordered, definitions, now, version=1)
        assert result.change is not None
        profiles.append(result.profile)
        changes.append(result.change)
    bodies = [len(change.model_dump_json().encode()) for change in changes]
    with _quiet(), LocalStack(_options()) as stack:
        sandbox, resources = stack.sandbox, stack.resources
        assert sandbox is not None and resources is not None
        (source,) = [s for s in sqs_sources(stack.template) if s.function == "SegmentSyncFunction"]
        store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
        _progress(f"{CHANGES} changes built; stack up", started)
        store.backfill(profiles, now)
        _progress("profiles stored", started)
        sandbox.clear()
        SqsChangePublisher(resources.client("sqs"), resources.ref("SegmentChangesQueue")).publish(changes)
        _progress("changes published", started)
        wanted = {f"{SHOP}/{profile.key}" for profile in profiles}
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with sandbox.state.lock:
                seen = {attributes.get("external_id") for attributes in sandbox.state.profiles.values()}
            if wanted <= seen:
                break
            time.sleep(2)
            _progress(f"{len(wanted & seen)} profiles in the sandbox", started)
        time.sleep(2)  # the last batch's events and list moves
        api = [r for r in sandbox.requests() if str(r.get("path", "")).startswith("/api/")]
    profile_requests = [r for r in api if str(r["path"]).startswith(("/api/profile-", "/api/profiles"))]
    jobs = [r for r in api if str(r["path"]).startswith("/api/profile-bulk-import-jobs")]
    per_invocation = LAMBDA_PAYLOAD_BYTES // (max(bodies) + RECORD_OVERHEAD_BYTES)
    scale = 10_000 / CHANGES
    return {
        "sync.requests_per_10k_changes": round(len(profile_requests) * scale, 1),
        "sync.requests_per_10k_changes_all": round(len(api) * scale, 1),
        "sync.burst_changes": CHANGES,
        "sync.burst_bulk_profile_jobs": len(jobs),
        "sync.burst_delivered": len(wanted & seen),
        "sync.burst_floor_requests": math.ceil(10_000 / source.batch_size),
        "sync.change_message_bytes_max": max(bodies),
        "sync.requests_per_10k_changes_if_6mb": math.ceil(10_000 / min(10_000, per_invocation)),
    }


def run() -> dict[str, object]:
    return dict(requests_per_burst())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
