"""Backfill figures: a synthetic store from the Shopify sandbox into in-process moto, synced to the Klaviyo sandbox.

backfill.objects_per_sec                    JSONL objects applied per second (bulk waits, download, parse,
                                            DynamoDB reads/writes, order links, bulk sync: the whole run)
backfill.parse_floor_objects_per_sec        the same objects through parse + `__parentId` join + translate only
backfill.ddb_requests_per_object            DynamoDB calls per JSONL object on a first run (for cost estimates)
backfill.klaviyo_requests_per_10k_profiles  Klaviyo calls a 10,000-customer backfill makes: measured on a smaller
                                            store with the checkpoint interval scaled by the same factor, so it
                                            flushes as many times as the 10,000-customer store would
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

CUSTOMERS = 200
WORKERS = 8
SCALE_TO = 10_000
DEFAULT_CHECKPOINT = 2_000
SHOP = "bench-backfill.myshopify.com"


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_SERVICE_NAME": "evergreen",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


def _parse_floor(lines: list[bytes]) -> float:
    from evergreen.service.backfill import customer_payload, order_payload, records  # noqa: PLC0415
    from evergreen.shopify import translate  # noqa: PLC0415

    now = datetime.now(UTC)
    started = time.perf_counter()
    for record in records(iter(enumerate(lines, start=1))):
        if "gid://shopify/Customer/" in str(record.root.get("id")):
            translate("customers/update", customer_payload(record.root), now)
        else:
            translate("orders/updated", order_payload(record.root, record.children), now)
    return len(lines) / (time.perf_counter() - started)


def _one_request_at_a_time(client: Any) -> None:
    """In-process moto is not thread-safe (a TransactWriteItems deep-copies the table while another thread
    writes to it): serialise the client's calls, as the local stack's moto server does with its lock."""
    lock = threading.Lock()
    call = client._make_api_call

    def serialised(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return call(*args, **kwargs)

    client._make_api_call = serialised


def run() -> dict[str, Any]:
    _environment()
    import httpx  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from evergreen.backfill_wiring import build_backfill  # noqa: PLC0415
    from evergreen.klaviyo.client import KlaviyoClient  # noqa: PLC0415
    from evergreen.settings import Settings  # noqa: PLC0415
    from evergreen.shopify.admin import ShopifyAdmin  # noqa: PLC0415
    from evergreen.wiring import Edges  # noqa: PLC0415
    from evergreen_cli.local_stack.inprocess import create_resources  # noqa: PLC0415
    from evergreen_cli.local_stack.moto_server import apply_patches  # noqa: PLC0415
    from evergreen_cli.sandboxes.klaviyo_api import start_sandbox  # noqa: PLC0415
    from evergreen_cli.sandboxes.shopify_admin import start_shopify_sandbox  # noqa: PLC0415
    from evergreen_cli.sandboxes.synthetic_shop import synthetic_store  # noqa: PLC0415

    apply_patches()  # moto as the local stack runs it: no whole-table copy per transaction or query
    store = synthetic_store(CUSTOMERS, seed=1, shop=SHOP)
    with start_shopify_sandbox(port=0) as shopify, mock_aws():
        klaviyo = start_sandbox(port=0, validate=False)
        try:
            shopify.load(store)
            environment = create_resources({SHOP: "s"}, {SHOP: {"api_key": "pk_bench", "webhook_secret": "k"}})
            edges = Edges(Settings.from_env(environment))
            calls = {"dynamodb": 0}

            def count(**_: Any) -> None:
                calls["dynamodb"] += 1

            edges.dynamodb.meta.events.register("before-call.dynamodb", count)
            _one_request_at_a_time(edges.dynamodb)
            admin = ShopifyAdmin(SHOP, "shpat_bench", base_url=shopify.url, sleep=lambda _: None)
            sender = KlaviyoClient(klaviyo.url, "pk_bench", http=httpx.Client(), sleep=lambda _: None)
            checkpoint = max(1, DEFAULT_CHECKPOINT * CUSTOMERS // SCALE_TO)
            backfill = build_backfill(
                edges, admin, sender, checkpoint_every=checkpoint, poll_every_s=0.0, workers=WORKERS
            )
            started = time.perf_counter()
            report = backfill.run(SHOP)
            elapsed = time.perf_counter() - started
            objects = report.counts.read
            operation = admin.wait(admin.run_bulk_query("orders").id, poll_every_s=0)
            lines = [line for _, line in admin.stream_lines(operation.url or "")]
            customers = admin.wait(admin.run_bulk_query("customers").id, poll_every_s=0)
            lines += [line for _, line in admin.stream_lines(customers.url or "")]
        finally:
            klaviyo.stop()
    return {
        "backfill.objects_per_sec": round(objects / elapsed, 1),
        "backfill.parse_floor_objects_per_sec": round(_parse_floor(lines), 1),
        "backfill.ddb_requests_per_object": round(calls["dynamodb"] / objects, 2),
        "backfill.klaviyo_requests_per_10k_profiles": report.counts.klaviyo_requests,
    }


if __name__ == "__main__":
    print(run())
