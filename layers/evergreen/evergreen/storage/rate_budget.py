"""One Klaviyo rate budget per account, shared by every container: token buckets in DynamoDB.

Klaviyo's limits are per account and endpoint (a burst per second and a steady rate per minute), while each
SegmentSync container keeps its own buckets. Two containers at once, or sync beside a backfill, would each spend
the whole budget. Here each (account, operation) has one item holding both buckets:

    pk = klaviyo-rate#<account>, sk = <operationId>: burst, steady (tokens), at (epoch seconds of the last take)

A take reads the item consistently, refills both buckets for the time since `at`, and, when both hold a token,
writes them back one token lighter, conditioned on `at` being what it read (another container's take in between
makes it read again). A take costs one consistent read and one write; one item takes up to 1,000 writes a second,
far above any Klaviyo endpoint's burst.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from evergreen.klaviyo.requests import RateLimit

PREFIX = "klaviyo-rate#"
_EPSILON = 1e-9


def account_key(account_id: str | None, api_key: str) -> str:
    """The budget's account: Klaviyo's account id when the secret names it, else a hash of the key (never the key)."""
    if account_id:
        return account_id
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


class DynamoRateBudget:
    """Takes one call's tokens from the account's shared buckets; `take` answers how long to wait first."""

    def __init__(self, client: Any, table: str, account: str, clock: Callable[[], float]) -> None:
        """`clock` is wall-clock epoch seconds (shared across containers, unlike a monotonic clock)."""
        self._client = client
        self._table = table
        self._pk = {"S": PREFIX + account}
        self._clock = clock

    def take(self, operation: str, limit: RateLimit) -> float:
        """Take a token for one `operation` call: 0.0 when taken, else the seconds until one may be there."""
        key = {"pk": self._pk, "sk": {"S": operation}}
        while True:
            item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            now = self._clock()
            burst, steady, at = float(limit.burst_per_second), float(limit.steady_per_minute), None
            if item is not None:
                at = item["at"]["N"]
                elapsed = max(0.0, now - float(at))
                burst = min(burst, float(item["burst"]["N"]) + elapsed * limit.burst_per_second)
                steady = min(steady, float(item["steady"]["N"]) + elapsed * limit.steady_per_minute / 60.0)
            if burst < 1 - _EPSILON or steady < 1 - _EPSILON:
                return max(
                    (1 - burst) / limit.burst_per_second,
                    (1 - steady) / (limit.steady_per_minute / 60.0),
                    0.001,
                )
            try:
                self._put(key, burst - 1, steady - 1, now, at)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # another container took a token in between: read again
            return 0.0

    def _put(self, key: dict[str, Any], burst: float, steady: float, now: float, at: str | None) -> None:
        condition = "attribute_not_exists(pk)" if at is None else "#at = :at"
        values: dict[str, Any] = {":burst": _n(burst), ":steady": _n(steady), ":now": _n(now)}
        if at is not None:
            values[":at"] = {"N": at}
        self._client.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="SET burst = :burst, steady = :steady, #at = :now",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=values,
        )


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.6f}"}
