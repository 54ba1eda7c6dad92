"""Counting what DynamoDB hands back, with botocore's event hooks (tests and benchmarks)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class ProfileItemReads:
    """Profile items a DynamoDB client receives: from Query, Scan, GetItem and BatchGetItem."""

    def __init__(self, client: Any) -> None:
        self.items = 0
        self.calls: Counter[str] = Counter()
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name in ("Query", "Scan"):
            self.items += sum(1 for item in parsed.get("Items", []) if "profile" in item)
        elif model.name == "GetItem" and "profile" in parsed.get("Item", {}):
            self.items += 1
        elif model.name == "BatchGetItem":
            self.items += sum(
                1 for items in parsed.get("Responses", {}).values() for item in items if "profile" in item
            )

    def reset(self) -> None:
        self.items = 0
        self.calls.clear()


KIB = 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def attribute_bytes(value: dict[str, Any]) -> int:
    """A value's size as DynamoDB counts it toward an item's size (close enough for whole write units)."""
    (kind, inner), *_ = value.items()
    if kind in ("S", "B"):
        return len(inner.encode()) if isinstance(inner, str) else len(inner)
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_bytes(element) for name, element in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_bytes({kind[0]: element}) for element in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size: each attribute's name plus its value."""
    return sum(len(name.encode()) + attribute_bytes(value) for name, value in item.items())


def units(size: int) -> int:
    """Write request units of one write of `size` bytes (1 KB each, at least 1)."""
    return max(1, -(-size // KIB))


class WriteUnits:
    """Write request units of every write a DynamoDB client makes to one table, its indexes included.

    It reads each written item before and after the write (consistently, through the same client) and bills
    what DynamoDB bills: the larger image in 1 KB units, twice inside TransactWriteItems; for each index, a put
    of the new entry, a delete of the old one, both when the index key changed, nothing when neither the key nor a
    projected attribute changed. Units are kept by target ("table" or the index name) and by partition key value,
    so a model can see which partitions take them. Each thread's write is metered on its own (the sweep's lanes
    write from threads).
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        described = client.describe_table(TableName=table_name)["Table"]
        self._keys = [key["AttributeName"] for key in described["KeySchema"]]
        self._indexes: dict[str, tuple[list[str], str, list[str]]] = {
            index["IndexName"]: (
                [key["AttributeName"] for key in index["KeySchema"]],
                index["Projection"]["ProjectionType"],
                index["Projection"].get("NonKeyAttributes", []),
            )
            for index in described.get("GlobalSecondaryIndexes", [])
        }
        self.by_target: Counter[str] = Counter()
        self.by_partition: Counter[tuple[str, str]] = Counter()
        self.requests = 0
        """DynamoDB requests the client made (the meter's own reads not counted)."""
        self._thread = threading.local()
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._remember_before)
        client.meta.events.register("after-call.dynamodb", self._bill)

    @property
    def total(self) -> int:
        return sum(self.by_target.values())

    def reset(self) -> None:
        self.by_target.clear()
        self.by_partition.clear()
        self.requests = 0

    @property
    def _reading(self) -> bool:
        return bool(getattr(self._thread, "reading", False))

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        self._thread.reading = True
        try:
            found: dict[str, Any] | None = self._client.get_item(
                TableName=self._table, Key=key, ConsistentRead=True
            ).get("Item")
            return found
        finally:
            self._thread.reading = False

    def _written(self, operation: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """(key, multiplier) of each item the request writes to this table."""
        if operation == "PutItem" and params.get("TableName") == self._table:
            return [({name: params["Item"][name] for name in self._keys}, 1)]
        if operation in ("UpdateItem", "DeleteItem") and params.get("TableName") == self._table:
            return [(params["Key"], 1)]
        found: list[tuple[dict[str, Any], int]] = []
        if operation == "TransactWriteItems":
            for action in params.get("TransactItems", []):
                for kind, body in action.items():
                    if body.get("TableName") != self._table or kind == "ConditionCheck":
                        continue
                    key = body["Key"] if "Key" in body else {name: body["Item"][name] for name in self._keys}
                    found.append((key, 2))
        if operation == "BatchWriteItem":
            for request in params.get("RequestItems", {}).get(self._table, []):
                if "PutRequest" in request:
                    found.append(({name: request["PutRequest"]["Item"][name] for name in self._keys}, 1))
                else:
                    found.append((request["DeleteRequest"]["Key"], 1))
        return found

    def _remember_before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self._reading or model.name not in WRITES:
            return
        self._thread.before = [(key, self._read(key), times) for key, times in self._written(model.name, params)]

    def _bill(self, parsed: dict[str, Any], model: Any, http_response: Any, **_: Any) -> None:
        if self._reading:
            return
        with self._lock:
            self.requests += 1
        before: list[tuple[dict[str, Any], dict[str, Any] | None, int]] = getattr(self._thread, "before", [])
        if model.name not in WRITES or not before:
            return
        self._thread.before = []
        if http_response.status_code != 200:
            return
        for key, old, times in before:
            new = self._read(key)
            if old is None and new is None:
                continue
            size = max(item_bytes(old) if old else 0, item_bytes(new) if new else 0)
            self._add("table", (new or old or key)[self._keys[0]]["S"], units(size) * times)
            for name in self._indexes:
                self._bill_index(name, old, new)

    def _entry(self, index: str, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None:
            return None
        keys, projection, included = self._indexes[index]
        if any(name not in item for name in keys):
            return None
        if projection == "ALL":
            return dict(item)
        kept = {*self._keys, *keys, *(included if projection == "INCLUDE" else [])}
        return {name: value for name, value in item.items() if name in kept}

    def _bill_index(self, index: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        hash_key = self._indexes[index][0]
        before, after = self._entry(index, old), self._entry(index, new)
        if before == after:
            return
        same_key = before is not None and after is not None and all(before[k] == after[k] for k in hash_key)
        if same_key and after is not None:
            self._add(index, after[hash_key[0]]["S"], units(item_bytes(after)))
            return
        for entry in (before, after):
            if entry is not None:
                self._add(index, entry[hash_key[0]]["S"], units(item_bytes(entry)))

    def _add(self, target: str, partition: str, amount: int) -> None:
        with self._lock:
            self.by_target[target] += amount
            self.by_partition[(target, partition)] += amount
