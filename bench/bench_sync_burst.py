"""Klaviyo requests for a burst of membership changes, on the local stack.

sync.requests_per_10k_changes        Klaviyo profile requests (profile import, bulk profile import jobs, profile
                                     look-ups) that 10,000 membership changes cost when all are on the queue at
                                     once and the sync function takes them as the template's event source hands
                                     them over (BatchSize 10, no window): a full batch drains the backlog, and each
                                     invocation pushes everything it holds as bulk jobs
sync.requests_per_10k_changes_all    every Klaviyo API request of the burst (events and list moves included)
sync.burst_bulk_profile_jobs         bulk profile import jobs the burst cost (one per draining invocation)
sync.burst_largest_job_profiles      profiles in the largest bulk profile import job
sync.burst_floor_requests            the floor in the same run: ceil(changes / 10,000), Klaviyo's job limit
sync.requests_per_10k_changes_without_drain
                                     what the same event source costs with no drain: batches of 10 are below the
                                     pusher's bulk threshold, so one profile import per change
sync.burst_seconds                   from the first invocation to the last profile in the sandbox

    uv run python bench/run.py sync_burst
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench_freshness import _options, _quiet

SHOP = "bench-sync-burst.myshopify.com"
CHANGES = int(os.environ.get("BENCH_SYNC_BURST_CHANGES", "10000"))
"""The whole burst: with the drain, jobs per burst do not scale linearly with its size, so nothing is scaled."""
WAIT_S = 900.0
JOB_LIMIT = 10_000
"""Profiles per Klaviyo bulk profile import job."""


def _progress(message: str, started: float) -> None:
    print(f"   sync_burst {time.monotonic() - started:6.1f} s: {message}", file=sys.stderr, flush=True)


def _job_sizes(requests: list[dict[str, Any]]) -> list[int]:
    sizes = []
    for request in requests:
        if str(request.get("path", "")).startswith("/api/profile-bulk-import-jobs"):
            body = request.get("json") or {}
            sizes.append(len(body.get("data", {}).get("attributes", {}).get("profiles", {}).get("data", [])))
    return sizes


def requests_per_burst() -> dict[str, float]:
    from evergreen.domain.profile import OrderRecord, Profile  # noqa: PLC0415
    from evergreen.domain.reducers import with_orders  # noqa: PLC0415
    from evergreen.segments import default_definitions  # noqa: PLC0415
    from evergreen.service.membership import reevaluate  # noqa: PLC0415
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415
    from evergreen.storage.queue import SqsChangePublisher  # noqa: PLC0415
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415
    from evergreen_cli.local_stack.template import functions, sqs_sources  # noqa: PLC0415

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
    # The poller is off while the burst is published, so it is all on the queue at once; then the stack's own
    # event-source imitation (LocalStack.drain: receive a batch of BatchSize, invoke, delete) hands it over.
    with _quiet(), LocalStack(_options(poll=False)) as stack:
        sandbox, resources = stack.sandbox, stack.resources
        assert sandbox is not None and resources is not None
        (source,) = [s for s in sqs_sources(stack.template) if s.function == "SegmentSyncFunction"]
        timeout_s = functions(stack.template)["SegmentSyncFunction"].timeout
        store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
        _progress(f"{CHANGES} changes built; stack up", started)
        store.backfill(profiles, now)
        _progress("profiles stored", started)
        sandbox.clear()
        SqsChangePublisher(resources.client("sqs"), resources.ref("SegmentChangesQueue")).publish(changes)
        _progress("changes published", started)
        wanted = {f"{SHOP}/{profile.key}" for profile in profiles}
        seen: set[Any] = set()
        synced_from = time.monotonic()
        syncing = threading.Thread(target=stack.drain, kwargs={"timeout": WAIT_S}, daemon=True)
        syncing.start()
        while syncing.is_alive():
            syncing.join(10)
            with sandbox.state.lock:
                seen = {attributes.get("external_id") for attributes in sandbox.state.profiles.values()}
            _progress(f"{len(wanted & seen)} profiles in the sandbox", started)
        burst_s = time.monotonic() - synced_from
        api = [r for r in sandbox.requests() if str(r.get("path", "")).startswith("/api/")]
    profile_requests = [r for r in api if str(r["path"]).startswith(("/api/profile-", "/api/profiles"))]
    jobs = _job_sizes(api)
    scale = 10_000 / CHANGES
    return {
        "sync.requests_per_10k_changes": round(len(profile_requests) * scale, 1),
        "sync.requests_per_10k_changes_all": round(len(api) * scale, 1),
        "sync.requests_per_10k_changes_without_drain": 10_000,
        "sync.burst_changes": CHANGES,
        "sync.burst_bulk_profile_jobs": len(jobs),
        "sync.burst_largest_job_profiles": max(jobs, default=0),
        "sync.burst_delivered": len(wanted & seen),
        "sync.burst_floor_requests": math.ceil(CHANGES / JOB_LIMIT),
        "sync.burst_seconds": round(burst_s, 1),
        "sync.event_source_batch_size": source.batch_size,
        "sync.function_timeout_s": timeout_s,
    }


def run() -> dict[str, object]:
    return dict(requests_per_burst())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
