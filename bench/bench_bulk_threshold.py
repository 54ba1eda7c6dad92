"""Where the per-change path stops paying: one push of N changes, per change (calls at once) or as bulk jobs,
against the Klaviyo sandbox answering with a log-normal p50 200 ms / p99 1 s.

sync.threshold_trickle_ms_p50 / _flood_ms_p50   {N: median push time over ROUNDS pushes} of N new VIPs (one
                                                profile import, two events and two list calls each, per change;
                                                bulk jobs and list calls in a flood)
sync.threshold_trickle_requests / _flood_...    {N: Klaviyo requests of one push}
sync.threshold_profile_imports_per_min_limit    Klaviyo's steady limit on profile-import (per account)
sync.bulk_threshold                             the threshold the pusher uses (KlaviyoPusher's default)

    uv run python bench/run.py bulk_threshold
"""

from __future__ import annotations

import inspect
import json
import statistics
import time
from datetime import UTC, datetime

SIZES = (1, 2, 5, 10, 20, 35, 50, 75, 100)
ROUNDS = 5
LISTS = {"vip": "LIST_VIP", "lapsed": "LIST_LAPSED"}


def run() -> dict[str, object]:
    import httpx  # noqa: PLC0415

    from evergreen.domain.changes import SegmentChange  # noqa: PLC0415
    from evergreen.klaviyo.client import ConcurrentCalls, KlaviyoClient  # noqa: PLC0415
    from evergreen.klaviyo.pusher import KlaviyoPusher  # noqa: PLC0415
    from evergreen.klaviyo.requests import OP_PROFILE_IMPORT, RATE_LIMITS, RateLimit  # noqa: PLC0415
    from evergreen_cli.sandboxes.klaviyo_api import start_sandbox  # noqa: PLC0415

    def change(number: int) -> SegmentChange:
        return SegmentChange(
            shop="bench-threshold.myshopify.com",
            profile_key=f"customer#{9_000_000 + number}",
            version=1,
            changed_at=datetime(2026, 11, 27, 5, 0, tzinfo=UTC),
            segments=["vip"],
            entered=["vip"],
            exited=["lapsed"],
            customer_id=str(9_000_000 + number),
            email=f"bench{number}@example.com",
        )

    sandbox = start_sandbox(port=0, validate=False)
    calls = ConcurrentCalls(10)
    timings: dict[str, dict[int, float]] = {"trickle": {}, "flood": {}}
    requests: dict[str, dict[int, int]] = {"trickle": {}, "flood": {}}
    try:
        sandbox.set_latency(200, 1000, seed=11)
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0)) as http:
            # Klaviyo's rate limits off: this measures time per push; the limits are weighed apart (the note).
            unlimited = {operation: RateLimit(10**6, 10**8) for operation in RATE_LIMITS}
            client = KlaviyoClient(sandbox.url, "pk_bench", http=http, rate_limits=unlimited)
            for size in SIZES:
                batch = [change(number) for number in range(size)]
                for mode, threshold in (("trickle", size + 1), ("flood", 1)):
                    pusher = KlaviyoPusher(client, LISTS, bulk_threshold=threshold, fanout=calls)
                    spent = []
                    for _ in range(ROUNDS):
                        started = time.perf_counter()
                        result = pusher.push(batch)
                        spent.append((time.perf_counter() - started) * 1000)
                        assert not result.failed, result.errors
                    timings[mode][size] = round(statistics.median(spent), 1)
                    requests[mode][size] = result.requests
    finally:
        sandbox.stop()
    return {
        "sync.threshold_trickle_ms_p50": timings["trickle"],
        "sync.threshold_flood_ms_p50": timings["flood"],
        "sync.threshold_trickle_requests": requests["trickle"],
        "sync.threshold_flood_requests": requests["flood"],
        "sync.threshold_profile_imports_per_min_limit": RATE_LIMITS[OP_PROFILE_IMPORT].steady_per_minute,
        "sync.bulk_threshold": inspect.signature(KlaviyoPusher).parameters["bulk_threshold"].default,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
