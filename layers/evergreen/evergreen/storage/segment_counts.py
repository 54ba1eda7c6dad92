"""Per-segment running totals in the profiles table, moved in the same transaction as a profile's sync mark.

Items of the shop (storage/keys.py: each its own partition), listed in its `by_shop` index so that `shop/redact`
deletes them with everything else of the shop (none carries `profile`, so no profile read or scan sees them):
- `segcount#<segment>#<shard>`: `members`, `net_spent`, `engaged`;
- `segday#<segment>#<YYYY-MM-DD>#<shard>`: `entered`, `exited` that day (UTC).

Sharding: each transaction adds to one of `COUNT_SHARDS` items per segment, drawn at random, so a Black Friday
flood into one segment spreads over that many partitions (no hot key); a total is the sum of its shards, found
through `by_shop` and read in one BatchGetItem per 100.
Exactness: the profile's update is conditioned on the synced version it was read at, and the totals move in the
same transaction, so a version counts once or not at all; a lost race is read again and retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from evergreen.domain.segment_counts import SegmentDay, SegmentTotals, SyncedSnapshot, segment_deltas
from evergreen.storage import keys
from evergreen.storage.shop_items import get_many, listed_update, names_listed

COUNT_SHARDS = 16
"""Items per segment total (and per segment and day)."""
MARK_ATTEMPTS = 5
"""Reads and transactions tried before the mark is left for the outbox to send again (and count then)."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}


COUNT_PREFIX = "segcount#"
DAY_PREFIX = "segday#"


def _old_snapshot(item: dict[str, Any]) -> SyncedSnapshot | None:
    """The snapshot last counted, None when the profile was never counted (never synced, or synced before
    counts existed: it then counts from this sync on)."""
    if "synced_segments" not in item:
        return None
    return SyncedSnapshot(
        segments=frozenset(value["S"] for value in item["synced_segments"]["L"]),
        net_spent=Decimal(item.get("synced_net_spent", {"N": "0"})["N"]),
        engaged=item.get("synced_engaged", {"BOOL": False})["BOOL"],
    )


class SegmentCounts:
    """Marks versions synced while keeping every segment's totals; reads the totals back."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        shard: Callable[[], int] = lambda: random.randrange(COUNT_SHARDS),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._shard = shard
        self._sleep = sleep

    def mark_counted(
        self,
        shop: str,
        profile_key: str,
        version: int,
        snapshot: SyncedSnapshot,
        changed_at: datetime,
        klaviyo_profile_id: str | None = None,
        klaviyo_key: str | None = None,
    ) -> bool:
        """Record `version` as synced and move the totals by it; False when it was not newer (or the profile is
        gone), or when every attempt lost a race (the outbox then sends it again)."""
        key = keys.profile_key(shop, profile_key)
        for attempt in range(MARK_ATTEMPTS):
            item = self._counted(key, "pending_version")
            if item is None:
                return False
            synced = int(item.get("synced_version", {"N": "0"})["N"])
            if synced >= version:
                return False
            actions = [{"Update": self._mark(key, item, version, snapshot, klaviyo_profile_id, klaviyo_key)}]
            shard = self._shard()
            day = changed_at.astimezone(UTC).date()
            for segment, delta in segment_deltas(_old_snapshot(item), snapshot).items():
                actions.append({"Update": self._add_total(shop, segment, shard, delta.members, delta)})
                if delta.members:
                    actions.append({"Update": self._add_day(shop, segment, day, shard, delta.members)})
            if self._won(actions, attempt):
                return True
        return False

    def delete_counted(self, shop: str, profile_key: str) -> bool:
        """Delete a profile and take its counted snapshot out of the totals in the same transaction (an erasure:
        the profile leaves every segment it was counted in, with no day's exit recorded). False when it is gone."""
        key = keys.profile_key(shop, profile_key)
        for attempt in range(MARK_ATTEMPTS):
            item = self._counted(key)
            if item is None:
                return False
            deltas = segment_deltas(_old_snapshot(item), SyncedSnapshot(frozenset()))
            if not deltas:
                self._client.delete_item(TableName=self._table, Key=key)
                return True
            counted = item.get("synced_version")
            delete: dict[str, Any] = {"TableName": self._table, "Key": key}
            if counted is None:
                delete["ConditionExpression"] = "attribute_not_exists(synced_version)"
            else:
                delete["ConditionExpression"] = "synced_version = :was"
                delete["ExpressionAttributeValues"] = {":was": counted}
            shard = self._shard()
            actions = [{"Delete": delete}] + [
                {"Update": self._add_total(shop, segment, shard, delta.members, delta)}
                for segment, delta in deltas.items()
            ]
            if self._won(actions, attempt):
                return True
        self._client.delete_item(TableName=self._table, Key=key)  # erasure wins; the totals may keep it counted
        return True

    def _counted(self, key: dict[str, Any], *also: str) -> dict[str, Any] | None:
        """The profile's counted snapshot (and `also`), read consistently; None when the profile is gone."""
        fields = ", ".join(("pk", "synced_version", "synced_segments", "synced_net_spent", "synced_engaged", *also))
        item: dict[str, Any] | None = self._client.get_item(
            TableName=self._table, Key=key, ProjectionExpression=fields, ConsistentRead=True
        ).get("Item")
        return item

    def _won(self, actions: list[dict[str, Any]], attempt: int) -> bool:
        """Write `actions` (one update alone, else a transaction); False, after a short random pause, when the write
        lost a race to another (its conditions no longer hold: the caller reads again)."""
        try:
            if len(actions) == 1 and "Update" in actions[0]:
                self._client.update_item(**actions[0]["Update"])
            else:
                self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if not _lost_race(error):
                raise
            self._sleep(0.01 * (attempt + 1) * random.random())
            return False
        return True

    def _mark(
        self,
        key: dict[str, Any],
        item: dict[str, Any],
        version: int,
        snapshot: SyncedSnapshot,
        klaviyo_profile_id: str | None,
        klaviyo_key: str | None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":v": _n(version),
            ":segments": {"L": [_s(name) for name in sorted(snapshot.segments)]},
            ":net": _n(snapshot.net_spent),
            ":engaged": {"BOOL": snapshot.engaged},
        }
        sets = (
            "SET synced_version = :v, synced_segments = :segments, synced_net_spent = :net, synced_engaged = :engaged"
        )
        if klaviyo_profile_id and klaviyo_key:
            sets += ", klaviyo_profile_id = :k, klaviyo_pk = :kp"
            values[":k"] = _s(klaviyo_profile_id)
            values[":kp"] = _s(klaviyo_key)
        if "synced_version" in item:
            condition = "synced_version = :was"
            values[":was"] = item["synced_version"]
        else:
            condition = "attribute_exists(pk) AND attribute_not_exists(synced_version)"
        pending = item.get("pending_version")
        expression = sets
        if pending is None or int(pending["N"]) <= version:
            expression += " REMOVE unsynced_pk, unsynced_since, pending_change, pending_version"
            condition += " AND (attribute_not_exists(pending_version) OR pending_version <= :v)"
        else:
            condition += " AND pending_version > :v"
        return {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }

    def _add_total(self, shop: str, segment: str, shard: int, members: int, delta: SegmentTotals) -> dict[str, Any]:
        name = f"{COUNT_PREFIX}{segment}#{shard:02d}"
        listed, names, values = listed_update(shop, name)
        return {
            "TableName": self._table,
            "Key": keys.item_key(shop, name),
            "UpdateExpression": f"ADD members :m, net_spent :n, engaged :e SET {listed}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                **values,
                ":m": _n(members),
                ":n": _n(delta.net_spent),
                ":e": _n(delta.engaged),
            },
        }

    def _add_day(self, shop: str, segment: str, day: date, shard: int, members: int) -> dict[str, Any]:
        field = "entered" if members > 0 else "exited"
        name = f"{DAY_PREFIX}{segment}#{day.isoformat()}#{shard:02d}"
        listed, names, values = listed_update(shop, name)
        return {
            "TableName": self._table,
            "Key": keys.item_key(shop, name),
            "UpdateExpression": f"ADD {field} :one SET {listed}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {**values, ":one": _n(abs(members))},
        }

    def totals(self, shop: str) -> dict[str, SegmentTotals]:
        """Every segment's totals for the shop (segments never entered are absent)."""
        summed: dict[str, list[Any]] = {}
        for (_, name), item in self._named(shop, COUNT_PREFIX):
            segment = name.removeprefix(COUNT_PREFIX).rsplit("#", 1)[0]
            total = summed.setdefault(segment, [0, Decimal(0), 0])
            total[0] += int(item.get("members", {"N": "0"})["N"])
            total[1] += Decimal(item.get("net_spent", {"N": "0"})["N"])
            total[2] += int(item.get("engaged", {"N": "0"})["N"])
        return {segment: SegmentTotals(*total) for segment, total in summed.items()}

    def days(self, shop: str, segment: str, since: date) -> list[SegmentDay]:
        """Entries and exits per UTC day from `since`, oldest first (days with neither are absent)."""
        by_day: dict[str, list[int]] = {}
        prefix = f"{DAY_PREFIX}{segment}#"
        for (_, name), item in self._named(shop, prefix):
            day = name.removeprefix(prefix).rsplit("#", 1)[0]
            if day < since.isoformat():
                continue
            counts = by_day.setdefault(day, [0, 0])
            counts[0] += int(item.get("entered", {"N": "0"})["N"])
            counts[1] += int(item.get("exited", {"N": "0"})["N"])
        return [
            SegmentDay(datetime.fromisoformat(day).replace(tzinfo=UTC), entered, exited)
            for day, (entered, exited) in sorted(by_day.items())
        ]

    def _named(self, shop: str, prefix: str) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        """The shop's items whose names start with `prefix`: listed by `by_shop`, then read consistently."""
        names = names_listed(self._client, self._table, shop, prefix)
        return list(get_many(self._client, self._table, [(shop, name) for name in names], None))


def _lost_race(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException", "TransactionConflictException"}
