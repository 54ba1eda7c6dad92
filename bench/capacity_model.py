"""A capacity model of one stack in pure Python (no AWS): how many orders a minute one shop can take, and how
long a full re-evaluation of 10M profiles takes, from write units the code was measured to write.

Inputs are counts, not guesses: `OrderWrites` holds the write request units one order's webhooks wrote, per
write class (which item or index, hence which partition key), as bench_capacity.py metered them on moto.
The model places each class's units on the partition key the code's own key functions (evergreen.storage.keys)
give a synthetic customer, and runs token buckets with AWS's published limits:

- a partition key value takes at most 1,000 write units a second (DynamoDB never spreads one key value's writes
  further; split-for-heat by sort key is not counted on);
- a table, and each global secondary index, takes at most `table_wru_per_s` (the default on-demand table quota,
  40,000) and, before it has been warmed to it, `warm_wru_per_s` spread over `warm_wru_per_s / 1,000` key ranges
  (a new on-demand table serves 4,000 at once and doubles its previous peak);
- Lambda runs at most `lambda_concurrency` invocations at once (the default account quota, 1,000);
- Klaviyo takes 150 bulk profile-import jobs a minute of up to 10,000 profiles each, per account (the OpenAPI
  spec's `x-klaviyo-ratelimit`, steady).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

PARTITION_WRU_PER_S = 1_000
"""DynamoDB: one partition serves up to 1,000 write request units a second."""
TABLE_WRU_PER_S = 40_000
"""DynamoDB: the default per-table (and per-index) on-demand throughput quota."""
LAMBDA_CONCURRENCY = 1_000
"""Lambda: the default concurrent executions of an account and Region."""
KLAVIYO_BULK_JOBS_PER_MIN = 150
KLAVIYO_PROFILES_PER_BULK_JOB = 10_000

SHARED = ("by_shop", "due", "unsynced", "delivery")
"""Write classes whose partition keys one shop's customers share (the rest have a key per customer or order)."""


@dataclass(frozen=True)
class OrderWrites:
    """What one order's webhooks write, measured: units per write class, DynamoDB requests, Klaviyo changes."""

    units: Mapping[str, float]
    """Write units per class: "table:profile", "table:order", "table:delivery", "due", "unsynced", "by_shop"..."""
    webhooks: int
    requests_per_webhook: float
    changes: float
    """Segment changes one order enqueues for Klaviyo."""

    @property
    def total(self) -> float:
        return sum(self.units.values())


@dataclass(frozen=True)
class Limits:
    partition_wru_per_s: int = PARTITION_WRU_PER_S
    table_wru_per_s: int = TABLE_WRU_PER_S
    warm_wru_per_s: int = TABLE_WRU_PER_S
    """What the table and its indexes are warmed to before the sale (WarmThroughput, or a previous peak)."""
    lambda_concurrency: int = LAMBDA_CONCURRENCY
    dynamodb_request_ms: float = 10.0
    """A DynamoDB request from Lambda in the same Region (AWS documents single-digit milliseconds)."""
    handler_overhead_ms: float = 30.0
    due_shards: int = 32


@dataclass
class Verdict:
    throttled: bool
    hottest: dict[str, float] = field(default_factory=dict)
    """Per target: the highest units one key (or key range) took in one second."""


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _partition_of(kind: str, shop: str, customer: str, n: int, limits: Limits) -> str:
    """The partition key the code gives this class of write for customer `customer`'s n-th write."""
    from evergreen.storage import keys  # noqa: PLC0415 - the code's own key format, pure

    if kind in ("due", "unsynced"):
        return f"{kind}#{keys.shard_of(shop, customer, limits.due_shards)}"
    if kind == "by_shop":
        return keys.shop_pk(shop, customer)
    if kind == "table:delivery":
        return keys.delivery_key(shop, f"{customer}/{n}")["pk"]["S"]
    if kind == "table:shop":  # the layout before issue 20: every item of a shop under one key, for comparison
        return f"shop#{shop}"
    return f"{kind}/{customer}/{n}"


def simulate(writes: OrderWrites, orders_per_s: float, limits: Limits, seconds: int = 5, seed: int = 20) -> Verdict:
    """Token buckets per key value and per key range, one second at a time, for one shop's orders."""
    rng = random.Random(seed)
    shop = "flash-sale.myshopify.com"
    verdict = Verdict(throttled=False)
    ranges = max(1, limits.warm_wru_per_s // limits.partition_wru_per_s)
    for second in range(seconds):
        count = int(orders_per_s) + (1 if rng.random() < orders_per_s % 1 else 0)
        by_key: defaultdict[tuple[str, str], float] = defaultdict(float)
        by_range: defaultdict[tuple[str, int], float] = defaultdict(float)
        by_target: defaultdict[str, float] = defaultdict(float)
        for order in range(count):
            customer = f"customer#{rng.getrandbits(52)}"
            for kind, units in writes.units.items():
                target = kind.split(":")[0]
                key = _partition_of(kind, shop, customer, second * 1_000_000 + order, limits)
                by_key[(target, key)] += units
                by_range[(target, _hash(key) % ranges)] += units
                by_target[target] += units
        for (target, _), load in by_key.items():
            verdict.hottest[target] = max(verdict.hottest.get(target, 0.0), load)
        over_key = any(load > limits.partition_wru_per_s for load in by_key.values())
        over_range = any(load > limits.partition_wru_per_s for load in by_range.values())
        over_table = any(load > min(limits.table_wru_per_s, limits.warm_wru_per_s) for load in by_target.values())
        verdict.throttled = verdict.throttled or over_key or over_range or over_table
    return verdict


def lambda_concurrency(writes: OrderWrites, orders_per_s: float, limits: Limits) -> float:
    """Concurrent webhook invocations (Little's law: arrivals x time each takes)."""
    seconds = (writes.requests_per_webhook * limits.dynamodb_request_ms + limits.handler_overhead_ms) / 1000
    return orders_per_s * writes.webhooks * seconds


def klaviyo_orders_per_s(writes: OrderWrites) -> float:
    """Orders a second whose changes Klaviyo's bulk import takes at its steady rate (one account)."""
    profiles_per_s = KLAVIYO_BULK_JOBS_PER_MIN * KLAVIYO_PROFILES_PER_BULK_JOB / 60
    return profiles_per_s / writes.changes if writes.changes else math.inf


def max_orders_per_s(writes: OrderWrites, limits: Limits, ceiling: float = 20_000.0) -> float:
    """The highest rate with no throttled second in the model and no Lambda or Klaviyo bound exceeded."""
    low, high = 0.0, ceiling

    def fits(rate: float) -> bool:
        return (
            not simulate(writes, rate, limits).throttled
            and lambda_concurrency(writes, rate, limits) <= limits.lambda_concurrency
            and rate <= klaviyo_orders_per_s(writes)
        )

    for _ in range(18):
        middle = (low + high) / 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


@dataclass(frozen=True)
class Resweep:
    """A full re-evaluation: every profile read by a parallel Scan, re-evaluated, and written once."""

    profiles: int
    item_bytes: float
    """The average profile item, as stored (measured)."""
    wru_per_profile: float
    """Write units one re-evaluated profile costs, indexes included (measured)."""
    requests_per_profile: float = 1.0
    """DynamoDB requests per profile besides the Scan pages (its conditional write)."""
    invocations: int = 16
    threads_per_invocation: int = 4
    evaluations_per_s: float = 100_000.0
    """One thread's segment-engine evaluations a second (bench_engine measures it)."""


def resweep_hours(resweep: Resweep, limits: Limits, reserved_wru_per_s: float) -> tuple[float, dict[str, float]]:
    """Hours to re-evaluate every profile, and the rate each bound allows (profiles a second).

    `reserved_wru_per_s` is kept for what runs at the same time (a sale's ingest, the due sweep), so the
    re-evaluation never takes the table from them.
    """
    per_thread_s = resweep.requests_per_profile * limits.dynamodb_request_ms / 1000 + 1 / resweep.evaluations_per_s
    bounds = {
        "lambda": resweep.invocations * resweep.threads_per_invocation / per_thread_s,
        "table_writes": max(0.0, limits.table_wru_per_s - reserved_wru_per_s) / resweep.wru_per_profile,
        # an eventually consistent Scan reads 4 KB per half read unit; 12,000 read units a new table serves
        "table_reads": 12_000 / (0.5 * resweep.item_bytes / 4096),
    }
    rate = min(bounds.values())
    return resweep.profiles / rate / 3600, bounds


def scale_keys(
    writes: OrderWrites,
    resweep: Resweep,
    limits: Limits,
    sale_orders_per_min: float = 10_000,
    classify: Callable[[str], str] = str,
) -> dict[str, object]:
    """The `scale.*` figures bench/results.json keeps."""
    best = max_orders_per_s(writes, limits)
    sale_rate = sale_orders_per_min / 60
    sale = simulate(writes, sale_rate, limits)
    reserved = writes.total * sale_rate
    hours, bounds = resweep_hours(resweep, limits, reserved)
    return {
        "scale.max_orders_per_min_one_shop": round(best * 60),
        "scale.wru_per_order": round(writes.total, 2),
        "scale.sale_hottest_key_wru_per_s": {classify(k): round(v, 1) for k, v in sorted(sale.hottest.items())},
        "scale.sale_throttled": int(sale.throttled),
        "scale.sale_lambda_concurrency": round(lambda_concurrency(writes, sale_rate, limits), 1),
        "scale.klaviyo_max_orders_per_min": round(klaviyo_orders_per_s(writes) * 60),
        "scale.full_resweep_hours_10m": round(hours, 3),
        "scale.full_resweep_profiles_per_s": {name: round(value) for name, value in bounds.items()},
    }
