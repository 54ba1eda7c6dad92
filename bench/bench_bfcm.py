"""Black Friday freshness: order webhooks at 30 a second against a Klaviyo as slow as the real one.

freshness.bfcm_event_to_klaviyo_ms_p50 / _p99   orders/create webhooks for new customers at RATE_PER_SECOND for
                                                SECONDS, applied by INGEST_CONTAINERS ShopifyWebhooks use cases
                                                in a process of their own (one per Lambda container, each with
                                                its own clients, as the deployed function scales out; the
                                                local HTTP API runs one invocation at a time, which no burst on
                                                AWS does); the local stack's
                                                SegmentSync (one poller, as one of the deployed function's two)
                                                pushes to the Klaviyo sandbox, whose answers take a log-normal
                                                p50 200 ms / p99 1 s. From the webhook's arrival to Klaviyo's
                                                answer to the first request carrying that customer's profile.
freshness.bfcm_floor_ms_p50 / _p99              the same burst with Klaviyo answering at once: the local stack's own
                                                share (moto, in a process of its own, answers far slower than
                                                DynamoDB and SQS)
freshness.bfcm_delivered / _sent                profiles that reached Klaviyo / webhooks sent
freshness.bfcm_webhook_5xx                      webhooks answered 5xx (must be 0)
freshness.bfcm_klaviyo_requests                 Klaviyo requests the burst cost
freshness.bfcm_klaviyo_p50_ms / _p99_ms         the sandbox's modelled latency
freshness.bfcm_load_average                     the host's 1-minute load average at the end (2 cores, shared)

    uv run python bench/run.py bfcm
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_freshness import SandboxWatch, _options, _percentile, _profiles_in, _quiet

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench-bfcm.myshopify.com"
RATE_PER_SECOND = 30.0
SECONDS = int(os.environ.get("BENCH_BFCM_SECONDS", "40"))
INGEST_CONTAINERS = 8
KLAVIYO_P50_MS = 200.0
KLAVIYO_P99_MS = 1000.0


def answered_at(request: dict[str, object]) -> float:
    """When the sandbox answered a recorded request: its arrival plus the modelled latency."""
    received = datetime.fromisoformat(str(request["received_at"])).timestamp()
    latency_ms = request.get("latency_ms") or 0
    return received + float(latency_ms) / 1000  # type: ignore[arg-type]


def first_answers(sandbox: object) -> dict[str, float]:
    """The first answered time of each profile in successful API requests."""
    first: dict[str, float] = {}
    for request in sandbox.requests():  # type: ignore[attr-defined]
        if not str(request.get("path", "")).startswith("/api/") or (request.get("status") or 500) >= 300:
            continue
        at = answered_at(request)
        for external_id, _ in _profiles_in(request.get("json")):
            first[external_id] = min(first.get(external_id, at), at)
    return first


def run() -> dict[str, object]:
    measured = burst_apart(KLAVIYO_P50_MS, KLAVIYO_P99_MS)
    floor = burst_apart(0.0, 0.0)
    return {
        "freshness.bfcm_event_to_klaviyo_ms_p50": round(statistics.median(measured.latencies), 1),
        "freshness.bfcm_event_to_klaviyo_ms_p99": round(_percentile(measured.latencies, 0.99), 1),
        "freshness.bfcm_floor_ms_p50": round(statistics.median(floor.latencies), 1),
        "freshness.bfcm_floor_ms_p99": round(_percentile(floor.latencies, 0.99), 1),
        "freshness.bfcm_delivered": len(measured.latencies),
        "freshness.bfcm_sent": measured.sent,
        "freshness.bfcm_webhook_5xx": measured.failed,
        "freshness.bfcm_ingest_ms_p50": round(statistics.median(measured.answered), 1),
        "freshness.bfcm_ingest_ms_p99": round(_percentile(measured.answered, 0.99), 1),
        "freshness.bfcm_klaviyo_requests": measured.requests,
        "freshness.bfcm_klaviyo_p50_ms": KLAVIYO_P50_MS,
        "freshness.bfcm_klaviyo_p99_ms": KLAVIYO_P99_MS,
        "freshness.bfcm_load_average": round(os.getloadavg()[0], 1),
    }


class Burst(NamedTuple):
    latencies: list[float]
    answered: list[float]
    sent: int
    failed: int
    requests: int


MOTO_APART = (
    "import sys, time\n"
    "from evergreen_cli.local_stack.moto_server import MotoServer\n"
    "server = MotoServer('127.0.0.1', 0).start()\n"
    "print(server.url, flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def moto_apart() -> Iterator[str]:
    """The local stack's moto server (the same patched server) in a process of its own, as DynamoDB and SQS are
    other machines on AWS: its work then does not wait for the bench's interpreter lock. Yields its URL."""
    with subprocess.Popen(
        [sys.executable, "-c", MOTO_APART], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None and server.stdin is not None
        url = server.stdout.readline().strip()
        try:
            yield url
        finally:
            server.stdin.close()
            server.wait(timeout=30)


def burst_apart(p50_ms: float, p99_ms: float) -> Burst:
    """`burst` in a process of its own: a second local stack in one process does not get its changes synced."""
    done = subprocess.run(
        [sys.executable, __file__, "--burst", str(p50_ms), str(p99_ms)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return Burst(*json.loads(done.stdout.strip().splitlines()[-1]))


def burst(p50_ms: float, p99_ms: float) -> Burst:
    """One burst on a fresh local stack whose Klaviyo sandbox answers with that latency (0: at once)."""
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    webhooks = int(RATE_PER_SECOND * SECONDS)
    with moto_apart() as moto, _quiet(), LocalStack(_options(moto_endpoint=moto)) as stack:
        assert stack.sandbox is not None
        stack.sandbox.set_latency(p50_ms, p99_ms, seed=20261127)
        watch = SandboxWatch(stack.sandbox)
        os.environ.pop("ANSWER_WITHIN_SECONDS", None)
        # The ingest containers run in a process of their own (Lambda containers are other machines), with the
        # stack's environment, so they never wait for this process's interpreter lock, nor it for theirs.
        done = subprocess.run(
            [sys.executable, __file__, "--ingest", str(webhooks)],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
            env=dict(os.environ),
        )
        posted, statuses, answered = json.loads(done.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(watch.first.keys() & posted.keys()) < len(posted):
            time.sleep(0.5)
            watch.poll()
        answers = first_answers(stack.sandbox)
        requests = len([r for r in stack.sandbox.requests() if str(r.get("path", "")).startswith("/api/")])
    latencies = [(answers[key] - at) * 1000 for key, at in posted.items() if key in answers]
    failed = sum(1 for status in statuses if status >= 500)
    return Burst(latencies, answered, len(posted), failed, requests)


def ingest(webhooks: int) -> tuple[dict[str, float], list[int], list[float]]:
    """Send `webhooks` orders/create at RATE_PER_SECOND through INGEST_CONTAINERS ShopifyWebhooks use cases (each
    with its own clients, as a Lambda container); (when each was sent by profile, statuses, answer times in ms)."""
    from evergreen.service.shopify_webhooks import ShopifyDelivery  # noqa: PLC0415
    from evergreen.shopify.hmac import sign_shopify_body  # noqa: PLC0415
    from evergreen.wiring import Edges  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET  # noqa: PLC0415

    template = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    posted: dict[str, float] = {}
    statuses: list[int] = []
    answered: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def container() -> Edges:
        if not hasattr(local, "edges"):
            local.edges = Edges.from_env()
        edges: Edges = local.edges
        return edges

    def send(number: int) -> None:
        customer_id = 820_000_000_000_000_000 + number
        body = dict(template, id=customer_id + 1, customer=dict(template["customer"], id=customer_id))
        raw = json.dumps(body).encode()
        delivery = ShopifyDelivery(
            shop=SHOP,
            topic="orders/create",
            hmac=sign_shopify_body(raw, DEFAULT_LOCAL_SHOPIFY_SECRET),
            body=raw,
            event_id=str(uuid.uuid4()),
        )
        started = time.time()
        with lock:
            posted[f"{SHOP}/customer#{customer_id}"] = started
        try:
            status = container().shopify_webhooks.receive(delivery).status
        except Exception:  # the handler answers 503 for any of these
            status = 503
        with lock:
            statuses.append(status)
            answered.append((time.time() - started) * 1000)

    begin = time.monotonic()
    with _quiet(), ThreadPoolExecutor(max_workers=INGEST_CONTAINERS) as pool:
        for number in range(webhooks):
            time.sleep(max(0.0, begin + number / RATE_PER_SECOND - time.monotonic()))
            pool.submit(send, number)
    return posted, statuses, answered


if __name__ == "__main__":
    if sys.argv[1:2] == ["--burst"]:
        print(json.dumps(burst(float(sys.argv[2]), float(sys.argv[3]))))
    elif sys.argv[1:2] == ["--ingest"]:
        print(json.dumps(ingest(int(sys.argv[2]))))
    else:
        print(json.dumps(run(), indent=2))
