"""Capacity at Black Friday rates: what the code writes, metered on in-process moto, fed to bench/capacity_model.py.

A flash sale on one shop: half the orders come from new customers (customers/create, checkouts/create,
orders/create, orders/paid, customers/update), half from returning ones (the same with customers/update first),
who ordered 90 days before and whose changes Klaviyo already has (so the sale's order moves their next transition
and puts them back in the outbox).
Every delivery goes through the real Shopify webhook handler; `WriteUnits` reads each written item before and
after and bills what DynamoDB bills (1 KB units, twice in a transaction, index puts and deletes). Then a changed
segments file is re-evaluated in full, metered the same way.

ingest.wru_per_orders_create          write units of one orders/create, the higher of a new and a returning buyer
ingest.wru_per_orders_create_by_buyer {"new": units, "returning": units}
ingest.wru_per_webhook                {topic: mean write units} over the sale
scale.max_orders_per_min_one_shop     the highest rate the model takes with no throttled second
scale.full_resweep_hours_10m          10M profiles re-evaluated by the fan-out, beside a 10,000 orders/min sale
scale.*                               the model's other figures (capacity_model.scale_keys)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BUYERS = 20
"""Buyers of each kind (new, returning) in the metered sale."""
NEW_BUYER = ["customers/create", "checkouts/create", "orders/create", "orders/paid", "customers/update"]
RETURNING_BUYER = ["customers/update", "checkouts/create", "orders/create", "orders/paid", "customers/update"]
SAMPLE = {topic: f"{topic.replace('/', '_')}.json" for topic in {*NEW_BUYER, *RETURNING_BUYER}}


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_class(target: str, partition: str) -> str:
    """The model's class of a metered write: the index, or which kind of item the table key names."""
    if target != "table":
        return target
    name = partition.partition("/")[2]
    for kind in ("order#", "delivery#", "parked#"):
        if name.startswith(kind):
            return f"table:{kind.rstrip('#')}"
    return "table:profile"


EARLIER = "2026-08-22T12:00:00-05:00"
"""A returning buyer's previous order: 90 days before the sample orders' day."""


def _body(topic: str, buyer: int, order: int, earlier: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "events" / "shopify" / SAMPLE[topic]).read_text())
    customer_id, order_id = 7_100_000_000_000_000 + buyer, 9_100_000_000_000_000 + order
    if topic.startswith("customers/"):
        body["id"] = customer_id
        body["email"] = f"buyer{buyer}@example.com"
    if topic.startswith("orders/"):
        body["id"] = order_id
        body["email"] = f"buyer{buyer}@example.com"
    if isinstance(body.get("customer"), dict):
        body["customer"]["id"] = customer_id
        body["customer"]["email"] = f"buyer{buyer}@example.com"
    if topic.startswith("checkouts/"):
        body["token"] = f"checkout-{order}"
        body["email"] = f"buyer{buyer}@example.com"
    if earlier:
        body |= {name: EARLIER for name in ("created_at", "updated_at", "processed_at") if name in body}
    return body


def run() -> dict[str, object]:
    ingest = _module("bench_ingest")
    model = _module("capacity_model")
    ingest._environment()
    from moto import mock_aws  # noqa: PLC0415

    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        from evergreen_cli.local_stack.inprocess import create_resources  # noqa: PLC0415
        from evergreen_cli.local_stack.lambda_runtime import LambdaContext  # noqa: PLC0415
        from evergreen_cli.local_stack.metering import WriteUnits, item_bytes  # noqa: PLC0415

        os.environ.update(create_resources({ingest.SHOP: ingest.SECRET}, {}))
        handler = ingest._load_handler()
        table = os.environ["PROFILES_TABLE"]
        meter = WriteUnits(handler.edges.dynamodb, table)
        sent = Counter[str]()

        def count_changes(params: dict[str, Any], model: Any, **_: Any) -> None:
            if params.get("QueueUrl") == os.environ["SEGMENT_CHANGES_QUEUE_URL"]:
                sent["changes"] += len(params.get("Entries", [])) if model.name == "SendMessageBatch" else 1

        handler.edges.sqs.meta.events.register("before-parameter-build.sqs", count_changes)
        context = LambdaContext(
            "bench", 512, "arn:aws:lambda:us-east-1:123456789012:function:bench", timeout_seconds=10
        )
        per_topic: dict[str, list[int]] = {}
        orders_create: dict[str, list[int]] = {"new": [], "returning": []}
        units: Counter[str] = Counter()
        requests = webhooks = 0
        _history(handler, ingest, context)
        for buyer in range(BUYERS):
            for kind, topics, who, order in (
                ("new", NEW_BUYER, buyer, 2 * buyer),
                ("returning", RETURNING_BUYER, BUYERS + buyer, 2 * buyer + 1),
            ):
                for topic in topics:
                    meter.reset()
                    body = json.dumps(_body(topic, who, order)).encode()
                    answer = handler.lambda_handler(ingest._event(topic, body), context)
                    assert answer["statusCode"] == 200, (topic, answer)
                    per_topic.setdefault(topic, []).append(meter.total)
                    if topic == "orders/create":
                        orders_create[kind].append(meter.total)
                    for (target, partition), amount in meter.by_partition.items():
                        units[write_class(target, partition)] += amount
                    requests += meter.requests
                    webhooks += 1
        orders = 2 * BUYERS
        writes = model.OrderWrites(
            units={name: amount / orders for name, amount in units.items()},
            webhooks=webhooks // orders,
            requests_per_webhook=requests / webhooks,
            changes=sent["changes"] / orders,
        )
        profiles = [
            item
            for item in handler.edges.dynamodb.scan(TableName=table)["Items"]
            if "profile" in item and "pending_change" not in item
        ] or [item for item in handler.edges.dynamodb.scan(TableName=table)["Items"] if "profile" in item]
        confirm_units = _sync_confirmation(handler, meter, profiles)
        resweep_units, written = _resweep(handler)
    deployed = _deployed()
    resweep = model.Resweep(
        profiles=10_000_000,
        item_bytes=statistics.mean(item_bytes(item) for item in profiles),
        wru_per_profile=resweep_units / written,
        invocations=deployed["FULL_SWEEP_INVOCATIONS"],
        evaluations_per_s=_evaluations_per_s(),
    )
    limits = model.Limits(due_shards=deployed["DUE_SHARDS"])
    return {
        "ingest.wru_per_orders_create": max(statistics.mean(values) for values in orders_create.values()),
        "ingest.wru_per_orders_create_by_buyer": {
            kind: round(statistics.mean(values), 2) for kind, values in orders_create.items()
        },
        "ingest.wru_per_webhook": {topic: round(statistics.mean(values), 2) for topic, values in per_topic.items()},
        "scale.wru_per_order_by_class": {name: round(amount, 2) for name, amount in sorted(writes.units.items())},
        "scale.resweep_wru_per_profile": round(resweep.wru_per_profile, 2),
        "scale.sync_confirm_wru_per_change": round(confirm_units, 2),
        "scale.cost_wru_per_customer_month": round(
            _customer_month(per_topic, confirm_units, resweep.wru_per_profile), 1
        ),
        **model.scale_keys(writes, resweep, limits),
    }


def _resweep(handler: Any) -> tuple[int, int]:
    """Write units and profiles written by a full re-evaluation after the segments file changed."""
    from evergreen.service.sweep import SweepRequest  # noqa: PLC0415
    from evergreen.wiring import Edges  # noqa: PLC0415
    from evergreen_cli.local_stack.metering import WriteUnits  # noqa: PLC0415

    default = (ROOT / "layers" / "evergreen" / "evergreen" / "segments" / "segments.yaml").read_text()
    changed = default.replace('net_spent: {gte: "500.00"}', 'net_spent: {gte: "450.00"}')
    assert changed != default, "the default segments file no longer has the threshold this bench moves"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "segments.yaml"
        path.write_text(changed)
        edges = Edges(handler.edges.settings.model_copy(update={"segments_file": str(path)}), handler.edges.clock)
        meter = WriteUnits(edges.dynamodb, edges.settings.profiles_table)
        report = edges.sweep.run(SweepRequest(full=True))
    return meter.total, max(1, report.written)


def _history(handler: Any, ingest: ModuleType, context: Any) -> None:
    """The returning buyers' earlier lives: created, one order 90 days before the sale, synced to Klaviyo."""
    from evergreen.storage import keys  # noqa: PLC0415
    from evergreen.storage.profiles import profile_from_item  # noqa: PLC0415

    for buyer in range(BUYERS, 2 * BUYERS):
        for topic in ("customers/create", "orders/create"):
            body = json.dumps(_body(topic, buyer, 10_000 + buyer, earlier=True)).encode()
            assert handler.lambda_handler(ingest._event(topic, body), context)["statusCode"] == 200
    for item in handler.edges.dynamodb.scan(TableName=os.environ["PROFILES_TABLE"])["Items"]:
        if "pending_version" in item:
            shop, key = keys.ref_of(item)
            handler.edges.store.mark_synced(shop, key, profile_from_item(item).version, f"01K{key[-12:]}")


def _sync_confirmation(handler: Any, meter: Any, profiles: list[dict[str, Any]]) -> float:
    """Write units SegmentSync's record of a pushed change costs (`mark_synced`: the version, the outbox entry out)."""
    from evergreen.storage import keys  # noqa: PLC0415
    from evergreen.storage.profiles import profile_from_item  # noqa: PLC0415

    waiting = [item for item in handler.edges.dynamodb.scan(TableName=os.environ["PROFILES_TABLE"])["Items"]]
    waiting = [item for item in waiting if "pending_version" in item] or profiles
    meter.reset()
    for item in waiting:
        shop, key = keys.ref_of(item)
        handler.edges.store.mark_synced(shop, key, profile_from_item(item).version, "01KLAVIYOPROFILE")
    return float(meter.total / len(waiting))


MONTH = {"orders/create": 1, "orders/paid": 3, "customers/update": 1}
"""Shopify deliveries per customer and month in the README's cost table: an order created, then paid, updated
and fulfilled (each an order update that costs what orders/paid costs), one customer update."""
KLAVIYO_DELIVERIES = 3
"""Opens and clicks per customer and month; each writes the profile and a delivery note, as checkouts/create does."""
CHANGES = 1.5
"""Segment changes per customer and month: each a sweep re-evaluation and a sync confirmation."""


def _customer_month(per_topic: dict[str, list[int]], confirm: float, reevaluation: float) -> float:
    """Write units per customer and month, from the metered costs (the README's DynamoDB row)."""
    shopify = sum(times * statistics.mean(per_topic[topic]) for topic, times in MONTH.items())
    klaviyo = KLAVIYO_DELIVERIES * statistics.mean(per_topic["checkouts/create"])
    return shopify + klaviyo + CHANGES * (reevaluation + confirm)


def _deployed() -> dict[str, int]:
    """What template.yaml deploys: the due shards (DueShards' default) and the fan-out's invocations."""
    from evergreen_cli.local_stack.template import load_template  # noqa: PLC0415

    template = load_template(ROOT / "template.yaml")
    sweep = template["Resources"]["StalenessSweepFunction"]["Properties"]["Environment"]["Variables"]
    return {
        "DUE_SHARDS": int(template["Parameters"]["DueShards"]["Default"]),
        "FULL_SWEEP_INVOCATIONS": int(sweep["FULL_SWEEP_INVOCATIONS"]),
    }


def _evaluations_per_s() -> float:
    """One thread's evaluations a second, as bench_engine last measured it (100,000 when it has not run)."""
    results = json.loads((BENCH_DIR / "results.json").read_text())
    return float(results.get("engine.evals_per_sec", 100_000.0))


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
