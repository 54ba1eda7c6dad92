"""The engagement poll on the local stack: how soon an event in Klaviyo changes its profile in Klaviyo, and how
many Klaviyo requests a poll costs.

engagement.poll_lag_s_p99 / _p50 / _max   60 opens added to the Klaviyo sandbox, one a second, while the poll
                                          runs on its timer every POLL_EVERY_S seconds (no Klaviyo webhook): from
                                          each event's datetime in Klaviyo to the sandbox's record of its profile
                                          import with `engaged` (bound: the interval plus 5 s)
engagement.poll_to_profile_s_p99 / _max   the same events: from the event's datetime to its profile entering
                                          `engaged` in the table (the poll's write)
engagement.poll_every_s                   the interval of that run
engagement.klaviyo_requests_per_poll      one poll after that run, whose window (15-minute overlap) holds every
                                          event added: its Klaviyo requests, metrics and events read
engagement.klaviyo_requests_per_poll_at   the requests of one steady-state poll's read (a 5-minute interval plus
                                          the 15-minute overlap: 20 minutes of events, page size 1,000) with the
                                          sandbox holding 10k, 100k and 1M engagement events a day in a typical
                                          mix, read by the poll's own reader

    uv run python bench/run.py engagement
"""

from __future__ import annotations

import json
import math
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench_freshness import SandboxWatch, _options, _percentile, _quiet

ROOT = Path(__file__).resolve().parents[1]
SHOP = "evergreen-demo.myshopify.com"
"""The shop the local stack polls Klaviyo for (LOCAL_POLL_SHOPS)."""
POLL_EVERY_S = 20.0
OPENS = 60
DAILY_VOLUMES = {"10k_per_day": 10_000, "100k_per_day": 100_000, "1m_per_day": 1_000_000}
WINDOW = timedelta(minutes=20)
MIX = {
    "Opened Email": 0.60,
    "Clicked Email": 0.20,
    "Clicked SMS": 0.08,
    "Bounced Email": 0.05,
    "Unsubscribed from Email Marketing": 0.04,
    "Unsubscribed from SMS Marketing": 0.02,
    "Marked Email as Spam": 0.01,
}
"""A typical share of each engagement metric (opens dominate)."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _customer(stack: Any, http: httpx.Client, number: int) -> str:
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET  # noqa: PLC0415

    customer_id = 830_000_000_000_000_000 + number
    customer = json.loads((ROOT / "events" / "shopify" / "customers_create.json").read_text())
    customer.update(
        id=customer_id,
        email=f"reader{number}@example.com",
        admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}",
    )
    customer["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": "2026-01-01T00:00:00Z"}
    body = json.dumps(customer).encode()
    headers = shopify_headers(body, "customers/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
    http.post(stack.shopify_webhook_url, content=body, headers=headers).raise_for_status()
    return f"{SHOP}/customer#{customer_id}"


def poll_lag() -> dict[str, Any]:
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    with _quiet(), LocalStack(_options(engagement_poll_every=POLL_EVERY_S)) as stack, httpx.Client(timeout=30) as http:
        assert stack.sandbox is not None
        keys = [_customer(stack, http, number) for number in range(OPENS)]
        known = SandboxWatch(stack.sandbox)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(known.first.keys() & set(keys)) < len(keys):
            time.sleep(0.25)
            known.poll()
        engaged = SandboxWatch(stack.sandbox, segment="engaged")
        engaged.poll()
        happened: dict[str, float] = {}
        for number, key in enumerate(keys):
            at = datetime.now(UTC).replace(microsecond=0)
            email = f"reader{number}@example.com"
            stack.sandbox.add_events([{"metric": "Opened Email", "datetime": _iso(at), "email": email}])
            happened[key] = at.timestamp()
            time.sleep(1.0)
        deadline = time.monotonic() + 2 * POLL_EVERY_S + 30
        while time.monotonic() < deadline and len(engaged.first.keys() & happened.keys()) < len(happened):
            time.sleep(0.25)
            engaged.poll()
        lags = [engaged.first[key] - at for key, at in happened.items() if key in engaged.first]
        applied = _engaged_at(stack, happened)
        after = stack.run_engagement_poll()
    (account,) = after["accounts"]
    return {
        "engagement.poll_every_s": POLL_EVERY_S,
        "engagement.poll_lag_s_p50": round(statistics.median(lags), 2),
        "engagement.poll_lag_s_p99": round(_percentile(lags, 0.99), 2),
        "engagement.poll_lag_s_max": round(max(lags), 2),
        "engagement.poll_to_profile_s_p99": round(_percentile(applied, 0.99), 2),
        "engagement.poll_to_profile_s_max": round(max(applied), 2),
        "engagement.poll_lag_events": len(lags),
        "engagement.poll_lag_events_added": len(happened),
        "engagement.klaviyo_requests_per_poll": {
            "requests": account["requests"],
            "metrics": account["metrics"],
            "events_read": account["events"],
        },
    }


def _engaged_at(stack: Any, happened: dict[str, float]) -> list[float]:
    """Per event, from its datetime to its profile entering `engaged` in the table (the poll's write)."""
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415

    resources = stack.resources
    store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
    found = []
    for key, at in happened.items():
        profile = store.load(SHOP, key.removeprefix(f"{SHOP}/"))
        if profile is not None and "engaged" in profile.membership:
            found.append(profile.membership["engaged"].timestamp() - at)
    return found


def requests_at_volumes() -> dict[str, Any]:
    """Requests one poll's read makes at each daily volume (the reader alone: what the poll asks Klaviyo)."""
    from evergreen.klaviyo import history as kh  # noqa: PLC0415
    from evergreen.klaviyo.client import KlaviyoClient  # noqa: PLC0415
    from evergreen.service.engagement_reader import EngagementReader  # noqa: PLC0415
    from evergreen_cli.sandboxes.klaviyo_api import start_sandbox  # noqa: PLC0415

    now = datetime.now(UTC).replace(microsecond=0)
    measured: dict[str, int] = {}
    with start_sandbox(port=0, validate=False) as sandbox:
        for name, per_day in DAILY_VOLUMES.items():
            sandbox.clear()
            in_window = math.ceil(per_day * WINDOW / timedelta(days=1))
            entries = []
            for metric, share in MIX.items():
                count = round(in_window * share)
                step = WINDOW / max(1, count)
                entries += [
                    {"metric": metric, "datetime": _iso(now - step * (i + 1)), "email": f"p{i}@example.com"}
                    for i in range(count)
                ]
            sandbox.add_events(entries)
            with KlaviyoClient(sandbox.url, "pk_bench", rate_limits=kh.HISTORY_RATE_LIMITS) as client:
                reader = EngagementReader(client)
                for metric_id in reader.metrics():
                    for _ in reader.pages(metric_id, now - WINDOW, now):
                        pass
            measured[name] = reader.requests
    return {"engagement.klaviyo_requests_per_poll_at": measured}


def run() -> dict[str, Any]:
    return {**requests_at_volumes(), **poll_lag()}
