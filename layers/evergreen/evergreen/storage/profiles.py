"""The profiles table: one item per (shop, profile key), each its own partition (storage/keys.py), written with
optimistic concurrency.

An item holds the profile as compressed JSON (storage/packed.py; with bounded order aggregates; each order is
its own item, see storage/orders.py) plus the attributes its indexes need:
`due_pk`/`next_transition_at` (sparse `due` index, keys only), `unsynced_pk`/`unsynced_since` and
`pending_change` (sparse `unsynced` index, the outbox, keys only; `unsynced_since` is when the oldest change
still unsynced was written, so further changes do not move the entry), `email_pk` (`by_email`
index), `klaviyo_pk` (sparse `by_klaviyo` index, once Klaviyo's profile id is known), `shop_pk`/`owner`
(`by_shop`, the shop's listing) and `synced_version`, which only the sync function writes. Delivery ids are
their own small items (`delivery#<id>`, kept `DELIVERY_KEPT`), not part of the profile.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from evergreen.domain.changes import SegmentChange
from evergreen.domain.erasure import ErasureGuard, Tombstone
from evergreen.domain.profile import CUSTOMER_PREFIX, Profile
from evergreen.domain.segment_counts import SyncedSnapshot
from evergreen.service.ports import ListMemberNow, OrderItem, Snapshot, SweepRun, SyncMark, VersionConflict
from evergreen.storage import keys
from evergreen.storage.orders import order_from_item, order_put
from evergreen.storage.packed import packed, unpacked
from evergreen.storage.segment_counts import SegmentCounts
from evergreen.storage.shop_items import get_many
from evergreen.storage.tombstones import (
    condition_checks,
    erased_at_of,
    tombstone_item,
    tombstone_name,
    tombstone_of,
)

__all__ = ["DynamoProfileStore", "Page", "VersionConflict", "profile_from_item"]

Item = dict[str, Any]
PageKey = dict[str, Any] | None


META_KEY = {"pk": {"S": "meta#evergreen"}, "sk": {"S": "definitions"}}
"""Which definitions every profile has been evaluated under (not a profile)."""
PROGRESS_KEY = {"pk": {"S": "meta#evergreen"}, "sk": {"S": "full-sweep"}}
"""Where an unfinished full sweep stopped, per scan segment (not a profile)."""
CURSOR_PREFIX = "cursor_"
SWEEP_RUN_KEY = {"pk": {"S": "meta#evergreen"}, "sk": {"S": "last-sweep"}}
"""When the sweep last ran, and last ran to the end (not a profile)."""
MARKS_IN_FLIGHT = 10
"""Conditional writes `mark_synced_many` keeps in flight at once (botocore's default connection pool is 10)."""
DELIVERY_KEPT = timedelta(days=7)
"""How long a delivery id is remembered: longer than Shopify's retries (4 hours) and Klaviyo's."""
klaviyo_pk = keys.klaviyo_pk


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_key: PageKey


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _is_conditional_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") in {"ConditionalCheckFailed", "TransactionConflict"} for reason in reasons)
    return False


def _erased_in(items: Iterable[Item]) -> dict[Tombstone, datetime]:
    """The tombstones among these items, with when each was written."""
    found: dict[Tombstone, datetime] = {}
    for item in items:
        tombstone = tombstone_of(keys.ref_of(item)[1])
        if tombstone is not None:
            found[tombstone] = erased_at_of(item)
    return found


def _assignment(name: str) -> str:
    """`SET` of one attribute; an outbox entry keeps the time it began waiting (its index key stays put)."""
    if name == "unsynced_since":
        return f"#{name} = if_not_exists(#{name}, :{name})"
    return f"#{name} = :{name}"


def profile_from_item(item: Item) -> Profile:
    profile = Profile.model_validate_json(unpacked(item["profile"]))
    klaviyo_id = item.get("klaviyo_profile_id", {}).get("S")
    if klaviyo_id and profile.klaviyo_profile_id != klaviyo_id:
        profile = profile.model_copy(update={"klaviyo_profile_id": klaviyo_id})
    return profile


def profiles_named(client: Any, table: str, entries: Sequence[Item]) -> list[Profile]:
    """The profiles a keys-only index page names, read consistently, in the page's order (gone: skipped)."""
    refs = [keys.ref_of(entry) for entry in entries]
    found = dict(get_many(client, table, refs, None))
    return [profile_from_item(found[ref]) for ref in refs if ref in found and "profile" in found[ref]]


class DynamoProfileStore:
    """Profiles in DynamoDB through a low-level client created once by the caller."""

    def __init__(self, client: Any, table_name: str, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards
        self.segment_counts = SegmentCounts(client, table_name)
        """The per-segment totals kept beside the profiles (storage/segment_counts.py)."""

    # reads ---------------------------------------------------------------
    def load(self, shop: str, profile_key: str) -> Profile | None:
        response = self._client.get_item(
            TableName=self._table, Key=keys.profile_key(shop, profile_key), ConsistentRead=True
        )
        item = response.get("Item")
        return profile_from_item(item) if item else None

    def load_for_write(
        self,
        shop: str,
        profile_key: str,
        order_id: str | None = None,
        guest_key: str | None = None,
        delivery_id: str | None = None,
        tombstones: Sequence[Tombstone] = (),
    ) -> Snapshot:
        """The profile, the order item, the guest profile, the delivery's note and these tombstones in one
        consistent BatchGetItem."""
        names = [profile_key]
        if order_id is not None:
            names.append(f"{keys.ORDER_PREFIX}{order_id}")
        if guest_key is not None and guest_key != profile_key:
            names.append(guest_key)
        if delivery_id is not None:
            names.append(f"{keys.DELIVERY_PREFIX}{delivery_id}")
        names += [tombstone_name(tombstone) for tombstone in dict.fromkeys(tombstones)]
        found = dict(self._get_many([(shop, name) for name in names], None))
        profile_item = found.get((shop, profile_key))
        order_item = found.get((shop, f"{keys.ORDER_PREFIX}{order_id}")) if order_id is not None else None
        guest_item = found.get((shop, guest_key)) if guest_key is not None and guest_key != profile_key else None
        return Snapshot(
            profile=profile_from_item(profile_item) if profile_item else None,
            order=order_from_item(order_item) if order_item else None,
            guest=profile_from_item(guest_item) if guest_item else None,
            erased=_erased_in(found.values()),
            seen=delivery_id is not None and (shop, f"{keys.DELIVERY_PREFIX}{delivery_id}") in found,
        )

    def remember_delivery(self, shop: str, delivery_id: str, now: datetime) -> None:
        """Note a delivery that was applied, so its redelivery is found by the write's read and writes nothing.

        A small item of its own (1 write unit) that DynamoDB's TTL removes after `DELIVERY_KEPT`. It is written
        after the write it notes: applying an event is idempotent, so a note that is lost only costs a redelivery
        the re-application that changes nothing.
        """
        expires = int((now + DELIVERY_KEPT).timestamp())
        self._client.put_item(
            TableName=self._table,
            Item={**keys.delivery_key(shop, delivery_id), "expires_at": _n(expires)},
        )

    def erased(self, shop: str, tombstones: Sequence[Tombstone]) -> dict[Tombstone, datetime]:
        names = [(shop, tombstone_name(tombstone)) for tombstone in dict.fromkeys(tombstones)]
        return _erased_in(item for _, item in self._get_many(names, None)) if names else {}

    def record_erasure(self, shop: str, tombstones: Sequence[Tombstone], at: datetime) -> None:
        """Put each tombstone (25 per BatchWriteItem); a repeated erasure moves `erased_at` to its own time."""
        unique = list(dict.fromkeys(tombstones))
        for offset in range(0, len(unique), 25):
            request: dict[str, Any] = {
                self._table: [
                    {"PutRequest": {"Item": tombstone_item(shop, tombstone, at)}}
                    for tombstone in unique[offset : offset + 25]
                ]
            }
            while request:
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}

    def load_order(self, shop: str, order_id: str) -> OrderItem | None:
        response = self._client.get_item(TableName=self._table, Key=keys.order_key(shop, order_id), ConsistentRead=True)
        item = response.get("Item")
        return order_from_item(item) if item else None

    def orders_of(self, shop: str, profile_key: str) -> list[OrderItem]:
        """Every order item owned by the profile: the `by_owner` index names them, a consistent read reads them."""
        names = self._owned_keys(shop, profile_key)
        orders: list[OrderItem] = []
        for offset in range(0, len(names), 100):
            request: dict[str, Any] = {self._table: {"Keys": names[offset : offset + 100], "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                orders += [order_from_item(item) for item in response.get("Responses", {}).get(self._table, [])]
                request = response.get("UnprocessedKeys") or {}
        return [order for order in orders if order.owner == profile_key]

    def order_ids_of(self, shop: str, profile_key: str) -> list[str]:
        return [keys.ref_of(key)[1].removeprefix(keys.ORDER_PREFIX) for key in self._owned_keys(shop, profile_key)]

    def _owned_keys(self, shop: str, profile_key: str) -> list[dict[str, Any]]:
        """The keys of the profile's order items: one query of its `by_shop` partition, by owner."""
        condition = "shop_pk = :s AND #owner = :o"
        values = {":s": _s(keys.shop_pk(shop, profile_key)), ":o": _s(profile_key)}
        return [
            {"pk": item["pk"], "sk": item["sk"]}
            for item in self._query_index("by_shop", condition, values, {"#owner": "owner"})
            if keys.ref_of(item)[1].startswith(keys.ORDER_PREFIX)
        ]

    def _query_index(
        self, index: str | None, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> Iterator[Item]:
        """Every entry of one partition of an index (None: of the table, keys only), following pages."""
        start: PageKey = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
            if index is None:
                kwargs["ProjectionExpression"] = "pk, sk"
            else:
                kwargs["IndexName"] = index
            if names:
                kwargs["ExpressionAttributeNames"] = names
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self._client.query(**kwargs)
            yield from response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def park_refund(self, item: OrderItem, now: datetime, guard: ErasureGuard | None = None) -> None:
        put = order_put(self._table, item, now)
        checks = condition_checks(self._table, item.shop, guard) if guard is not None else []
        try:
            if checks:
                self._client.transact_write_items(TransactItems=[{"Put": put}, *checks])
            else:
                self._client.put_item(**put)
        except ClientError as error:
            if _is_conditional_failure(error):
                raise VersionConflict(item.order_id) from error
            raise

    def customer_key_for_email(self, shop: str, email_normalized: str) -> str | None:
        """The key of the shop's customer profile with this email, if one exists (eventually consistent)."""
        response = self._client.query(
            TableName=self._table,
            IndexName="by_email",
            KeyConditionExpression="email_pk = :e",
            ExpressionAttributeValues={":e": _s(keys.email_pk(shop, email_normalized))},
        )
        found = sorted(keys.ref_of(item)[1] for item in response.get("Items", []))
        customers = [key for key in found if key.startswith(CUSTOMER_PREFIX)]
        return customers[0] if customers else None

    def key_for_klaviyo_profile(self, shop: str, klaviyo_profile_id: str) -> str | None:
        """The key of the shop's profile linked to this Klaviyo profile id (a customer before a guest), if any.

        One query on the sparse `by_klaviyo` index (eventually consistent), never a scan.
        """
        response = self._client.query(
            TableName=self._table,
            IndexName="by_klaviyo",
            KeyConditionExpression="klaviyo_pk = :k",
            ExpressionAttributeValues={":k": _s(klaviyo_pk(shop, klaviyo_profile_id))},
        )
        refs = [keys.ref_of(item) for item in response.get("Items", [])]
        found = sorted(name for owner, name in refs if owner == shop)
        customers = [key for key in found if key.startswith(CUSTOMER_PREFIX)]
        ranked = customers or found
        return ranked[0] if ranked else None

    def keys_with_email(self, shop: str, email_normalized: str) -> list[str]:
        """The shop's customer profiles with this email (a guest's is `guest#<email>`, found by its key)."""
        response = self._client.query(
            TableName=self._table,
            IndexName="by_email",
            KeyConditionExpression="email_pk = :e",
            ExpressionAttributeValues={":e": _s(keys.email_pk(shop, email_normalized))},
        )
        return [keys.ref_of(item)[1] for item in response.get("Items", [])]

    def keys_in_shop(self, shop: str) -> Iterator[str]:
        """The name of every item of the shop but its tombstones (in no index, they outlive a shop/redact):
        profiles, orders and parked engagements from `by_shop`'s shards, then the delivery notes' partitions."""
        for partition in keys.shop_pks(shop):
            for item in self._query_index("by_shop", "shop_pk = :s", {":s": _s(partition)}):
                yield keys.ref_of(item)[1]
        for partition in keys.delivery_pks(shop):
            for item in self._query_index(None, "pk = :p", {":p": _s(partition)}):
                yield keys.ref_of(item)[1]

    def due(self, shard: int, until: datetime, start: PageKey = None, limit: int = 200) -> Page[Profile]:
        """Profiles in one shard whose next transition is at or before `until`, oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "due",
            "KeyConditionExpression": "due_pk = :d AND next_transition_at <= :t",
            "ExpressionAttributeValues": {":d": _s(keys.due_pk(shard)), ":t": _s(keys.instant(until))},
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self._client.query(**kwargs)
        return Page(self.profiles_named(response.get("Items", [])), response.get("LastEvaluatedKey"))

    def profiles_named(self, entries: Sequence[Item]) -> list[Profile]:
        return profiles_named(self._client, self._table, entries)

    def unsynced(self, shard: int, since_before: datetime, start: PageKey = None) -> Page[SegmentChange]:
        """Pending changes in one shard that have waited since before `since_before`."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "unsynced",
            "KeyConditionExpression": "unsynced_pk = :u AND unsynced_since <= :t",
            "ExpressionAttributeValues": {":u": _s(keys.unsynced_pk(shard)), ":t": _s(keys.instant(since_before))},
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self._client.query(**kwargs)
        refs = [keys.ref_of(entry) for entry in response.get("Items", [])]
        found = dict(self._get_many(refs, "pk, sk, pending_change"))
        changes = [
            SegmentChange.model_validate_json(unpacked(found[ref]["pending_change"]))
            for ref in refs
            if "pending_change" in found.get(ref, {})
        ]
        return Page(changes, response.get("LastEvaluatedKey"))

    def scan(
        self, segment: int, total_segments: int, start: PageKey = None, members_of: Collection[str] = ()
    ) -> Page[Profile]:
        """One page of one parallel-scan segment: the full re-evaluation's read.

        With `members_of`, only profiles in one of those segments (and profiles written before the item carried
        its `membership`, which the caller checks itself) come back: a list move's read.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "FilterExpression": "attribute_exists(profile)",
        }
        if members_of:
            names = sorted(set(members_of))
            found = " OR ".join(f"contains(#membership, :segment{index})" for index in range(len(names)))
            kwargs["FilterExpression"] += f" AND ({found} OR attribute_not_exists(#membership))"
            kwargs["ExpressionAttributeNames"] = {"#membership": "membership"}
            kwargs["ExpressionAttributeValues"] = {f":segment{index}": _s(name) for index, name in enumerate(names)}
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self._client.scan(**kwargs)
        return Page([profile_from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey"))

    def _get_many(
        self, refs: Sequence[tuple[str, str]], projection: str | None
    ) -> Iterator[tuple[tuple[str, str], Item]]:
        return get_many(self._client, self._table, refs, projection)

    def synced_versions(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The last synced version of each (shop, profile key); absent when never synced or deleted."""
        return {
            ref: int(item.get("synced_version", {"N": "0"})["N"])
            for ref, item in self._get_many(refs, "pk, sk, synced_version")
        }

    def list_members_now(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ListMemberNow]:
        """Each stored profile's current segments, Klaviyo id and whether Klaviyo has it yet (a list move's read).

        An item written before profiles carried `membership` is read again whole (rare, and only once per move).
        """
        found: dict[tuple[str, str], ListMemberNow] = {}
        legacy: list[tuple[str, str]] = []
        for ref, item in self._get_many(refs, "pk, sk, membership, klaviyo_profile_id, synced_version"):
            if "membership" not in item:
                legacy.append(ref)
                continue
            found[ref] = ListMemberNow(
                segments=frozenset(value["S"] for value in item["membership"]["L"]),
                klaviyo_profile_id=item.get("klaviyo_profile_id", {}).get("S"),
                synced="synced_version" in item,
            )
        for ref, item in self._get_many(legacy, "pk, sk, profile, klaviyo_profile_id, synced_version"):
            profile = profile_from_item(item)
            found[ref] = ListMemberNow(
                frozenset(profile.membership), profile.klaviyo_profile_id, "synced_version" in item
            )
        return found

    def swept_definitions_hash(self) -> str | None:
        """The definitions hash the last complete full sweep applied to every profile."""
        response = self._client.get_item(TableName=self._table, Key=META_KEY, ConsistentRead=True)
        found: str | None = response.get("Item", {}).get("definitions_hash", {}).get("S")
        return found

    def record_swept_definitions_hash(self, definitions_hash: str) -> None:
        """Set on the marker item, which also holds the Klaviyo lists last filled (storage/list_moves.py)."""
        self._client.update_item(
            TableName=self._table,
            Key=META_KEY,
            UpdateExpression="SET definitions_hash = :h",
            ExpressionAttributeValues={":h": _s(definitions_hash)},
        )

    def record_sweep_run(self, finished_at: datetime, complete: bool) -> None:
        """One small write per run: when it finished, whether it did all its work, and the last run that did."""
        values = {":t": _s(keys.instant(finished_at)), ":c": {"BOOL": complete}}
        update = "SET last_run_at = :t, complete = :c" + (", last_complete_at = :t" if complete else "")
        self._client.update_item(
            TableName=self._table, Key=SWEEP_RUN_KEY, UpdateExpression=update, ExpressionAttributeValues=values
        )

    def last_sweep_run(self) -> SweepRun | None:
        """What `record_sweep_run` recorded last (None: no sweep has run on this table)."""
        item = self._client.get_item(TableName=self._table, Key=SWEEP_RUN_KEY, ConsistentRead=True).get("Item")
        if not item or "last_run_at" not in item:
            return None
        complete_at = item.get("last_complete_at", {}).get("S")
        return SweepRun(
            last_run_at=keys.parse_instant(item["last_run_at"]["S"]),
            complete=bool(item.get("complete", {}).get("BOOL", False)),
            last_complete_at=keys.parse_instant(complete_at) if complete_at else None,
        )

    def position_after(self, profile: Profile) -> dict[str, Any]:
        """A scan's ExclusiveStartKey that resumes right after this profile."""
        return keys.profile_key(profile.shop, profile.key)

    def full_sweep_cursors(self, definitions_hash: str) -> dict[int, dict[str, Any] | str]:
        """Where an unfinished full sweep under these definitions stopped, per scan segment."""
        response = self._client.get_item(TableName=self._table, Key=PROGRESS_KEY, ConsistentRead=True)
        item = response.get("Item", {})
        if item.get("definitions_hash", {}).get("S") != definitions_hash:
            return {}
        return {
            int(name.removeprefix(CURSOR_PREFIX)): json.loads(value["S"])
            for name, value in item.items()
            if name.startswith(CURSOR_PREFIX)
        }

    def save_full_sweep_cursors(self, definitions_hash: str, cursors: dict[int, dict[str, Any] | str]) -> None:
        """Set these segments' cursors, each its own attribute: invocations that walk other segments at the same
        time never overwrite each other's."""
        self._update_progress(
            definitions_hash,
            {f"{CURSOR_PREFIX}{segment}": _s(json.dumps(cursor)) for segment, cursor in cursors.items()},
        )

    def full_sweep_dispatched_at(self, definitions_hash: str) -> datetime | None:
        """When the full sweep under these definitions last started invocations (None: never)."""
        item = self._client.get_item(TableName=self._table, Key=PROGRESS_KEY, ConsistentRead=True).get("Item", {})
        if item.get("definitions_hash", {}).get("S") != definitions_hash or "dispatched_at" not in item:
            return None
        return keys.parse_instant(item["dispatched_at"]["S"])

    def record_full_sweep_dispatch(self, definitions_hash: str, at: datetime) -> None:
        self._update_progress(definitions_hash, {"dispatched_at": _s(keys.instant(at))})

    def _update_progress(self, definitions_hash: str, attributes: dict[str, Any]) -> None:
        """Set attributes of the progress item of these definitions; progress of other definitions is dropped."""
        names = {f"#a{index}": name for index, name in enumerate(attributes)}
        values = {f":a{index}": value for index, value in enumerate(attributes.values())}
        sets = ", ".join(f"{name} = {value}" for name, value in zip(names, values, strict=True))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=PROGRESS_KEY,
                UpdateExpression=f"SET definitions_hash = :h, {sets}",
                ConditionExpression="attribute_not_exists(definitions_hash) OR definitions_hash = :h",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":h": _s(definitions_hash), **values},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            self._client.put_item(
                TableName=self._table, Item={**PROGRESS_KEY, "definitions_hash": _s(definitions_hash), **attributes}
            )

    def finish_full_sweep(self, definitions_hash: str) -> None:
        """Every profile is evaluated under these definitions: record it, forget the cursors."""
        self.record_swept_definitions_hash(definitions_hash)
        self._client.delete_item(TableName=self._table, Key=PROGRESS_KEY)

    # writes --------------------------------------------------------------
    def save(
        self,
        profile: Profile,
        expected_version: int,
        pending: SegmentChange | None,
        now: datetime,
        order: OrderItem | None = None,
        guest: Profile | None = None,
        guard: ErasureGuard | None = None,
    ) -> None:
        """Write the profile if its stored version is still `expected_version` (0: must not exist).

        With `order`, the order item's next version is written in the same transaction (conditioned on
        `order.version`); with `guest`, the guest profile merged into this one is deleted in it. A write that
        is a transaction or creates the profile also checks the tombstones of `guard` in it
        (storage/tombstones.py); an update alone relies on the redact deleting the item after its tombstones.
        """
        update = self._update(profile, expected_version, pending, now)
        guarded = guard is not None and (order is not None or guest is not None or expected_version == 0)
        checks = condition_checks(self._table, profile.shop, guard) if guard is not None and guarded else []
        try:
            if order is None and guest is None and not checks:
                self._client.update_item(**update)
                return
            actions: list[dict[str, Any]] = [{"Update": update}]
            if order is not None:
                actions.append({"Put": order_put(self._table, order, now)})
            if guest is not None:
                actions.append(
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": keys.profile_key(guest.shop, guest.key),
                            "ConditionExpression": "version = :gv",
                            "ExpressionAttributeValues": {":gv": _n(guest.version)},
                        }
                    }
                )
            self._client.transact_write_items(TransactItems=actions + checks)
        except ClientError as error:
            if _is_conditional_failure(error):
                raise VersionConflict("the profile changed since it was read") from error
            raise

    def mark_synced(
        self,
        shop: str,
        profile_key: str,
        version: int,
        klaviyo_profile_id: str | None = None,
        snapshot: SyncedSnapshot | None = None,
        changed_at: datetime | None = None,
    ) -> None:
        """Record that `version` reached Klaviyo; clear the outbox entry unless a newer change waits.

        Klaviyo's id for the profile is kept beside the profile: sync never rewrites the profile itself. With a
        `snapshot`, the segments' running totals move by it in the same write (storage/segment_counts.py).
        """
        if snapshot is not None and changed_at is not None:
            kid_key = klaviyo_pk(shop, klaviyo_profile_id) if klaviyo_profile_id else None
            self.segment_counts.mark_counted(
                shop, profile_key, version, snapshot, changed_at, klaviyo_profile_id, kid_key
            )
            return
        key = keys.profile_key(shop, profile_key)
        values: dict[str, Any] = {":v": _n(version)}
        sets = "SET synced_version = :v"
        if klaviyo_profile_id:
            sets += ", klaviyo_profile_id = :k, klaviyo_pk = :kp"
            values[":k"] = _s(klaviyo_profile_id)
            values[":kp"] = _s(klaviyo_pk(shop, klaviyo_profile_id))
        newer = "(attribute_not_exists(synced_version) OR synced_version < :v) AND attribute_exists(pk)"
        outbox = "REMOVE unsynced_pk, unsynced_since, pending_change, pending_version"
        attempts = (
            (f"{sets} {outbox}", f"{newer} AND (attribute_not_exists(pending_version) OR pending_version <= :v)"),
            (sets, newer),
        )
        for expression, condition in attempts:
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
                return
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise

    def mark_synced_many(self, marks: Sequence[SyncMark]) -> None:
        """`mark_synced` for each, `MARKS_IN_FLIGHT` at a time.

        Each mark is its own conditional write (DynamoDB has no batch with conditions, and a transaction would
        fail whole on one newer version), so a large drained batch is bound by round trips, not by capacity.
        """
        if len(marks) <= 1:
            for mark in marks:
                self.mark_synced(*mark)
            return
        with ThreadPoolExecutor(max_workers=min(MARKS_IN_FLIGHT, len(marks))) as pool:
            for _ in pool.map(lambda mark: self.mark_synced(*mark), marks):
                pass

    def touch_unsynced(self, change: SegmentChange, now: datetime) -> None:
        """Restart the grace period of a re-sent change, unless a newer one replaced it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=keys.profile_key(change.shop, change.profile_key),
                UpdateExpression="SET unsynced_since = :now",
                ConditionExpression="pending_version = :v",
                ExpressionAttributeValues={":now": _s(keys.instant(now)), ":v": _n(change.version)},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def erase_profiles(self, shop: str, profile_keys: Sequence[str]) -> int:
        """Delete these profiles, each taking what it was counted as out of the segment totals in its own
        deletion's transaction (storage/segment_counts.py); returns how many were found."""
        return sum(self.segment_counts.delete_counted(shop, key) for key in dict.fromkeys(profile_keys))

    def delete(self, shop: str, profile_keys: Sequence[str]) -> int:
        """Delete these items of a shop; returns how many delete requests were sent."""
        unique = list(dict.fromkeys(profile_keys))
        for offset in range(0, len(unique), 25):
            request: dict[str, Any] = {
                self._table: [
                    {"DeleteRequest": {"Key": keys.item_key(shop, name)}} for name in unique[offset : offset + 25]
                ]
            }
            while request:
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
        return len(unique)

    def backfill(self, profiles: Sequence[Profile], now: datetime) -> int:
        """Put profiles unconditionally, 25 per request: the initial import of a store's customers."""
        for offset in range(0, len(profiles), 25):
            request: dict[str, Any] = {
                self._table: [
                    {"PutRequest": {"Item": self._item(profile, None, now)}}
                    for profile in profiles[offset : offset + 25]
                ]
            }
            while request:
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
        return len(profiles)

    def _attributes(
        self, profile: Profile, pending: SegmentChange | None, now: datetime
    ) -> tuple[dict[str, Any], list[str]]:
        """The item's attributes to set, and the index attributes to remove, for this profile."""
        shard = keys.shard_of(profile.shop, profile.key, self._shards)
        values: dict[str, Any] = {
            "profile": packed(profile.model_dump_json(exclude_defaults=True)),
            "version": _n(profile.version),
        }
        removes: list[str] = []
        values["membership"] = {"L": [_s(segment) for segment in sorted(profile.membership)]}
        if profile.next_transition_at is not None:
            values["due_pk"] = _s(keys.due_pk(shard))
            values["next_transition_at"] = _s(keys.instant(profile.next_transition_at))
        else:
            removes += ["due_pk", "next_transition_at"]
        if profile.email_normalized and profile.customer_id is not None:  # a guest's key is its email already
            values["email_pk"] = _s(keys.email_pk(profile.shop, profile.email_normalized))
        else:
            removes.append("email_pk")
        if profile.klaviyo_profile_id:
            values["klaviyo_pk"] = _s(klaviyo_pk(profile.shop, profile.klaviyo_profile_id))
        values |= keys.listing(profile.shop, profile.key)
        if pending is not None:
            values["pending_change"] = packed(pending.model_dump_json())
            values["pending_version"] = _n(pending.version)
            values["unsynced_pk"] = _s(keys.unsynced_pk(shard))
            values["unsynced_since"] = _s(keys.instant(now))
        return values, removes

    def _key(self, profile: Profile) -> dict[str, Any]:
        return keys.profile_key(profile.shop, profile.key)

    def _item(self, profile: Profile, pending: SegmentChange | None, now: datetime) -> Item:
        values, _ = self._attributes(profile, pending, now)
        return {**self._key(profile), **values}

    def _update(
        self, profile: Profile, expected_version: int, pending: SegmentChange | None, now: datetime
    ) -> dict[str, Any]:
        values, removes = self._attributes(profile, pending, now)
        names = {f"#{name}": name for name in values}
        expression = "SET " + ", ".join(_assignment(name) for name in values)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        placeholders = {f":{name}": value for name, value in values.items()}
        if expected_version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#version = :expected"
            placeholders[":expected"] = _n(expected_version)
        return {
            "TableName": self._table,
            "Key": self._key(profile),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": placeholders,
        }
