"""Freshness on the local stack: how long a change takes to reach the Klaviyo sandbox, and how close to its exact
instant a time-based change arrives. Plus the hot-customer 5xx ratio on moto server.

freshness.event_to_klaviyo_ms_p50 / _p99    500 signed orders/create webhooks at 10/s (one customer each): from the
                                            webhook POST to Klaviyo having imported that customer's profile: the
                                            sandbox's record of a profile-import, or the completion of the bulk job
                                            that carried it (the sandbox's jobs take freshness.sandbox_job_seconds)
freshness.event_to_klaviyo_accepted_ms_p99  the same, to Klaviyo's acceptance (a bulk job's 202), as before issue 24
freshness.event_to_klaviyo_via_bulk_jobs    how many of them went in a bulk job (the rest: profile-import)
freshness.event_to_klaviyo_floor_ms_p50     the floor in the same run: the webhook POST's own answer
freshness.burst_event_to_klaviyo_ms_p99     300 webhooks sent at once (32 at a time): a backlog the sync drains into
  / _accepted_ms_p99 / _via_bulk_jobs       bulk jobs; the same figures
freshness.transition_lateness_s_p99 / _max  240 profiles whose segment flips at known instants over ~2.5 minutes
                                            (a definitions file with a 3-minute window), one scheduled sweep at the
                                            start with the deployed default interval (5 min, so the sweep itself
                                            never applies them): from the instant to the sandbox's import
freshness.transition_applied_s_p99          from the instant to the profile's write (membership entered_at)
freshness.transition_lateness_floor_s_p50   the floor in the same run: from that write to the sandbox's import
ingest.hot_customer_5xx_ratio               20 Lambda containers deliver 10 orders each for one customer at once,
                                            through the real handler on moto server (the local HTTP API runs one
                                            invocation per function at a time, so it cannot race)
ingest.hot_customer_lost_updates            accepted orders missing from the profile (must be 0)

    uv run python bench/run.py freshness
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench-freshness.myshopify.com"
WEBHOOKS = 500
RATE_PER_SECOND = 10.0
TRANSITIONS = 240
FIRST_TRANSITION_S = 20
LAST_TRANSITION_S = 150
SWEEP_INTERVAL_S = 300.0
HOT_CONTAINERS = 20
HOT_ORDERS_EACH = 10
SANDBOX_JOB_SECONDS = 2.0
"""How long the sandbox's bulk import jobs take from acceptance to completion (Klaviyo's vary with its load)."""
BURST_WEBHOOKS = 300
SHORT_DEFINITIONS = """\
version: 1
segments:
  stale:
    description: Last order 3 minutes ago or more (a short window, for this benchmark).
    when:
      last_order_at: {older_than: 3m}
"""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _profiles_in(node: Any) -> Iterator[tuple[str, list[str]]]:
    """(external_id, evergreen_segments) of every profile a recorded Klaviyo request carries."""
    if isinstance(node, dict):
        external_id = node.get("external_id")
        if isinstance(external_id, str):
            properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
            segments = properties.get("evergreen_segments") if properties else None
            yield external_id, list(segments) if isinstance(segments, list) else []
        for value in node.values():
            yield from _profiles_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _profiles_in(value)


class SandboxWatch:
    """The first time the sandbox recorded each profile (optionally: with a given segment), and the first time it
    imported it: at once for a profile-import, when its job completed for a bulk import job."""

    def __init__(self, sandbox: Any, segment: str | None = None) -> None:
        self._sandbox = sandbox
        self._segment = segment
        self._seen = 0
        self.first: dict[str, float] = {}
        self.imported: dict[str, float] = {}
        self.via_jobs: set[str] = set()

    def poll(self) -> None:
        recorded = self._sandbox.requests()
        for request in recorded[self._seen :]:
            if not str(request.get("path", "")).startswith("/api/") or request.get("status", 500) >= 300:
                continue
            at = datetime.fromisoformat(request["received_at"]).timestamp()
            for external_id, segments in _profiles_in(request.get("json")):
                if self._segment is None or self._segment in segments:
                    self.first.setdefault(external_id, at)
                    if request["path"] == "/api/profile-import":
                        self.imported.setdefault(external_id, at)
        self._seen = len(recorded)
        with self._sandbox.state.lock:
            self._sandbox.state.advance_jobs()
            jobs = [job for job in self._sandbox.state.jobs.values() if job.ended and not job.cancel]
        for job in jobs:
            done = job.created_at.timestamp() + job.seconds
            for attributes, _ in job.profiles:
                external_id = attributes.get("external_id")
                segments = (attributes.get("properties") or {}).get("evergreen_segments") or []
                if isinstance(external_id, str) and (self._segment is None or self._segment in segments):
                    self.via_jobs.add(external_id)
                    self.imported[external_id] = min(done, self.imported.get(external_id, done))


def _quiet() -> contextlib.AbstractContextManager[Any]:
    logging.getLogger().setLevel(logging.WARNING)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    return contextlib.redirect_stdout(io.StringIO())


def _options(**overrides: Any) -> Any:
    from evergreen_cli.local_stack.stack import options_on_free_ports  # noqa: PLC0415

    settings: dict[str, Any] = {
        "sweep_every": None,
        "engagement_poll_every": None,
        "use_sandbox": True,
        "environ": {},
        "state_file": None,
    }
    return options_on_free_ports(**{**settings, **overrides})


def event_to_klaviyo() -> dict[str, float]:
    steady = _event_to_klaviyo(WEBHOOKS, RATE_PER_SECOND, first_customer=810_000_000_000_000_000)
    burst = _event_to_klaviyo(BURST_WEBHOOKS, None, first_customer=820_000_000_000_000_000)
    return {
        **{f"freshness.{name}": value for name, value in steady.items()},
        **{f"freshness.burst_{name}": value for name, value in burst.items()},
        "freshness.sandbox_job_seconds": SANDBOX_JOB_SECONDS,
    }


def _event_to_klaviyo(count: int, rate_per_s: float | None, first_customer: int) -> dict[str, float]:
    """`count` webhooks at `rate_per_s` (None: all at once, 32 at a time), one customer each."""
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET  # noqa: PLC0415
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    template = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    posted: dict[str, float] = {}
    answers: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    with _quiet(), LocalStack(_options()) as stack, httpx.Client(timeout=30) as http:
        assert stack.sandbox is not None
        stack.sandbox.jobs(seconds=SANDBOX_JOB_SECONDS)
        watch = SandboxWatch(stack.sandbox)

        def send(number: int) -> None:
            customer_id = first_customer + number
            body = dict(template, id=customer_id + 1, customer=dict(template["customer"], id=customer_id))
            raw = json.dumps(body).encode()
            headers = shopify_headers(raw, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
            started = time.time()
            with lock:
                posted[f"{SHOP}/customer#{customer_id}"] = started
            answer = http.post(stack.shopify_webhook_url, content=raw, headers=headers)
            with lock:
                answers.append((time.time() - started) * 1000)
                statuses.append(answer.status_code)

        begin = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for number in range(count):
                if rate_per_s is not None:
                    time.sleep(max(0.0, begin + number / rate_per_s - time.monotonic()))
                pool.submit(send, number)
        deadline = time.monotonic() + 60 + 2 * SANDBOX_JOB_SECONDS
        while time.monotonic() < deadline and len(watch.imported.keys() & posted.keys()) < len(posted):
            time.sleep(0.25)
            watch.poll()
    latencies = [(watch.imported[key] - at) * 1000 for key, at in posted.items() if key in watch.imported]
    accepted = [(watch.first[key] - at) * 1000 for key, at in posted.items() if key in watch.first]
    return {
        "event_to_klaviyo_ms_p50": round(statistics.median(latencies), 1),
        "event_to_klaviyo_ms_p99": round(_percentile(latencies, 0.99), 1),
        "event_to_klaviyo_accepted_ms_p50": round(statistics.median(accepted), 1),
        "event_to_klaviyo_accepted_ms_p99": round(_percentile(accepted, 0.99), 1),
        "event_to_klaviyo_via_bulk_jobs": len(watch.via_jobs & posted.keys()),
        "event_to_klaviyo_floor_ms_p50": round(statistics.median(answers), 1),
        "event_to_klaviyo_delivered": len(latencies),
        "event_to_klaviyo_sent": len(posted),
        "event_to_klaviyo_webhook_5xx": sum(1 for status in statuses if status >= 500),
    }


def transition_lateness() -> dict[str, float]:
    from evergreen.domain.profile import OrderRecord, Profile  # noqa: PLC0415
    from evergreen.domain.reducers import with_orders  # noqa: PLC0415
    from evergreen.segments import load_definitions  # noqa: PLC0415
    from evergreen.service.membership import reevaluate  # noqa: PLC0415
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as directory:
        definitions_file = Path(directory) / "segments.yaml"
        definitions_file.write_text(SHORT_DEFINITIONS, encoding="utf-8")
        definitions = load_definitions(definitions_file)
        previous = os.environ.get("SEGMENTS_FILE")
        os.environ["SEGMENTS_FILE"] = str(definitions_file)
        try:
            # The bench's own run_sweep below is the interval's scheduled run: no start-up sweep before it.
            with _quiet(), LocalStack(_options(sweep_every=SWEEP_INTERVAL_S, sweep_at_start=False)) as stack:
                resources = stack.resources
                assert resources is not None and stack.sandbox is not None
                store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
                now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
                span = LAST_TRANSITION_S - FIRST_TRANSITION_S
                profiles = []
                for number in range(TRANSITIONS):
                    flips_in = FIRST_TRANSITION_S + span * number / (TRANSITIONS - 1)
                    last_order = now - timedelta(minutes=3) + timedelta(seconds=round(flips_in))
                    blank = Profile(
                        shop=SHOP,
                        customer_id=str(900_000 + number),
                        email=f"t{number}@example.com",
                        email_normalized=f"t{number}@example.com",
                    )
                    profile = with_orders(
                        blank, [OrderRecord(order_id=f"t{number}", created_at=last_order, total=Decimal(10))]
                    )
                    profiles.append(reevaluate(profile, definitions, now, version=1).profile)
                store.backfill(profiles, now)
                due = {f"{SHOP}/{p.key}": p.next_transition_at.timestamp() for p in profiles if p.next_transition_at}
                report = stack.run_sweep()  # the scheduled run at the start of an interval
                watch = SandboxWatch(stack.sandbox, segment="stale")
                deadline = time.time() + LAST_TRANSITION_S + 30
                while time.time() < deadline and len(watch.imported.keys() & due.keys()) < len(due):
                    time.sleep(0.25)
                    watch.poll()
                applied = {}
                for profile in profiles:
                    stored = store.load(SHOP, profile.key)
                    if stored is not None and "stale" in stored.membership:
                        applied[f"{SHOP}/{profile.key}"] = stored.membership["stale"].timestamp()
        finally:
            if previous is None:
                os.environ.pop("SEGMENTS_FILE", None)
            else:
                os.environ["SEGMENTS_FILE"] = previous
    lateness = [watch.imported[key] - at for key, at in due.items() if key in watch.imported]
    applied_lateness = [applied[key] - at for key, at in due.items() if key in applied]
    sync_leg = [watch.imported[key] - applied[key] for key in applied.keys() & watch.imported.keys()]
    return {
        "freshness.transition_lateness_s_p99": round(_percentile(lateness, 0.99), 2),
        "freshness.transition_lateness_s_max": round(max(lateness), 2),
        "freshness.transition_lateness_s_p50": round(statistics.median(lateness), 2),
        "freshness.transition_applied_s_p99": round(_percentile(applied_lateness, 0.99), 2),
        "freshness.transition_lateness_floor_s_p50": round(statistics.median(sync_leg), 2),
        "freshness.transitions_due": len(due),
        "freshness.transitions_reached_klaviyo": len(lateness),
        "freshness.transitions_scheduled_by_sweep": int(report.get("scheduled", 0)) if isinstance(report, dict) else 0,
    }


def hot_customer() -> dict[str, float]:
    from evergreen.domain.profile import customer_profile_key  # noqa: PLC0415
    from evergreen.storage.profiles import DynamoProfileStore  # noqa: PLC0415
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.http_api import build_http_api_v2_event  # noqa: PLC0415
    from evergreen_cli.local_stack.lambda_runtime import LambdaRuntime  # noqa: PLC0415
    from evergreen_cli.local_stack.moto_server import MotoServer  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET, LocalSecrets, provision  # noqa: PLC0415
    from evergreen_cli.local_stack.template import load_template  # noqa: PLC0415

    customer = 830_000_000_000_000_000
    sample = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())

    def order_event(order_id: int, total: str) -> dict[str, Any]:
        body = dict(sample, id=order_id, total_price=total, current_total_price=total)
        body["total_price_set"] = {"shop_money": {"amount": total, "currency_code": "USD"}}
        body["customer"] = dict(sample["customer"], id=customer)
        raw = json.dumps(body).encode()
        headers = shopify_headers(raw, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
        return build_http_api_v2_event("POST", "/webhooks/shopify", headers, raw)

    orders = [(70_000 + n, f"{n % 7 + 1}.00") for n in range(HOT_CONTAINERS * HOT_ORDERS_EACH)]
    server = MotoServer("127.0.0.1", 0).start()
    try:
        with _quiet():
            resources = provision(load_template(), server.url, prefix="bench-hot", local_secrets=LocalSecrets())
            containers = [LambdaRuntime(resources) for _ in range(HOT_CONTAINERS)]
            try:

                def deliver_from(index: int) -> list[tuple[tuple[int, str], int]]:
                    runtime = containers[index]
                    return [
                        (order, int(runtime.invoke("ShopifyWebhookFunction", order_event(*order))["statusCode"]))
                        for order in orders[index::HOT_CONTAINERS]
                    ]

                with ThreadPoolExecutor(max_workers=HOT_CONTAINERS) as pool:
                    answers = [answer for batch in pool.map(deliver_from, range(HOT_CONTAINERS)) for answer in batch]
            finally:
                containers[0].restore_environment()
            store = DynamoProfileStore(resources.client("dynamodb"), resources.table_name, 8)
            profile = store.load(SHOP, customer_profile_key(str(customer)))
    finally:
        server.stop()
    accepted = [order for order, status in answers if status == 200]
    counted = int(profile.facts()["orders_count"]) if profile else 0
    return {
        "ingest.hot_customer_5xx_ratio": round(sum(1 for _, status in answers if status >= 500) / len(answers), 4),
        "ingest.hot_customer_requests": len(answers),
        "ingest.hot_customer_lost_updates": len(accepted) - counted,
    }


def run() -> dict[str, object]:
    results: dict[str, object] = {}
    for part in (hot_customer, event_to_klaviyo, transition_lateness):
        started = time.perf_counter()
        results.update(part())
        print(f"   {part.__name__}: {time.perf_counter() - started:.0f} s", flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
