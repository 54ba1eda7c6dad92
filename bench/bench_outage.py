"""Recovery from a Klaviyo outage on the local stack.

freshness.recovery_after_outage_s       the Klaviyo sandbox answers every API request 429 with Retry-After: 60
                                        for 2 minutes, during which a burst of signed orders/create webhooks
                                        arrives; from the end of the outage until the sandbox's profiles carry
                                        exactly the segments the table holds for every customer of the burst
freshness.recovery_floor_s              the floor in the same run: the sandbox's last 429 plus its Retry-After,
                                        after the end of the outage (a message throttled then may not come back
                                        sooner)
freshness.recovery_dlq_messages         segment changes in the DLQ at the end (goal 0)

    uv run python bench/run.py outage
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from bench_freshness import ROOT, _options, _quiet

SHOP = "bench-outage.myshopify.com"
BURST = 200
OUTAGE_S = 120.0
RETRY_AFTER_S = 60
WAIT_AFTER_S = 150.0
FOREVER = 100_000
"""Faults queued for the outage; cleared when it ends."""


def _sandbox_segments(sandbox: Any) -> dict[str, list[str]]:
    """external_id -> evergreen_segments, as the sandbox holds them."""
    with sandbox.state.lock:
        profiles = json.loads(json.dumps(sandbox.state.profiles))
    found: dict[str, list[str]] = {}
    for attributes in profiles.values():
        external_id = attributes.get("external_id")
        segments = (attributes.get("properties") or {}).get("evergreen_segments")
        if isinstance(external_id, str):
            found[external_id] = sorted(segments) if isinstance(segments, list) else []
    return found


def recovery_after_outage() -> dict[str, float]:
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET  # noqa: PLC0415
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    template = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    customers = [840_000_000_000_000_000 + number for number in range(BURST)]
    with _quiet(), LocalStack(_options()) as stack, httpx.Client(timeout=30) as http:
        sandbox, resources = stack.sandbox, stack.resources
        assert sandbox is not None and resources is not None
        store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
        sandbox.fail_next(429, count=FOREVER, retry_after=RETRY_AFTER_S)
        outage_started = time.monotonic()

        def send(customer_id: int) -> int:
            body = dict(template, id=customer_id + 1, customer=dict(template["customer"], id=customer_id))
            raw = json.dumps(body).encode()
            headers = shopify_headers(raw, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
            return http.post(stack.shopify_webhook_url, content=raw, headers=headers).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(send, customers))
        time.sleep(max(0.0, outage_started + OUTAGE_S - time.monotonic()))
        with sandbox.state.lock:
            sandbox.state.failures.clear()
        outage_ended, outage_ended_wall = time.monotonic(), time.time()
        expected: dict[str, list[str]] = {}
        for customer_id in customers:
            profile = store.load(SHOP, f"customer#{customer_id}")
            if profile is not None:
                expected[f"{SHOP}/{profile.key}"] = sorted(profile.membership)
        recovered_at: float | None = None
        while time.monotonic() < outage_ended + WAIT_AFTER_S:
            held = _sandbox_segments(sandbox)
            if all(held.get(key) == segments for key, segments in expected.items()):
                recovered_at = time.monotonic()
                break
            time.sleep(0.25)
        held = _sandbox_segments(sandbox)
        throttled = [
            datetime.fromisoformat(request["received_at"]).timestamp()
            for request in sandbox.requests()
            if request.get("status") == 429
        ]
        dlq = resources.client("sqs").get_queue_attributes(
            QueueUrl=resources.ref("SegmentChangesDLQ"), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    return {
        "freshness.recovery_after_outage_s": round((recovered_at or time.monotonic()) - outage_ended, 1),
        "freshness.recovery_complete": int(recovered_at is not None),
        "freshness.recovery_floor_s": round(max([0.0, *throttled]) + RETRY_AFTER_S - outage_ended_wall, 1),
        "freshness.recovery_429s": len(throttled),
        "freshness.recovery_burst_webhooks": len(customers),
        "freshness.recovery_burst_5xx": sum(1 for status in statuses if status >= 500),
        "freshness.recovery_profiles_matching": sum(1 for key, s in expected.items() if held.get(key) == s),
        "freshness.recovery_dlq_messages": int(dlq),
    }


def run() -> dict[str, object]:
    return dict(recovery_after_outage())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
