"""Counting what DynamoDB hands back, with botocore's event hooks (tests and benchmarks)."""

from __future__ import annotations

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
