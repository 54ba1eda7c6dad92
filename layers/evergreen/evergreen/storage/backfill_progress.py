"""Where a shop's backfill stands: one item per shop in the profiles table (`pk = backfill#<shop>`).

The item sits outside the shop's own partition, so profile scans and shop redaction never see it as a
profile. A resumed backfill reads it and skips the lines it already applied.
"""

from __future__ import annotations

from typing import Any

from evergreen.service.backfill_model import BackfillProgress

PROGRESS_SK = "progress"


def _key(shop: str) -> dict[str, Any]:
    return {"pk": {"S": f"backfill#{shop}"}, "sk": {"S": PROGRESS_SK}}


class DynamoBackfillProgress:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, shop: str) -> BackfillProgress | None:
        response = self._client.get_item(TableName=self._table, Key=_key(shop), ConsistentRead=True)
        item = response.get("Item")
        return BackfillProgress.model_validate_json(item["progress"]["S"]) if item else None

    def save(self, progress: BackfillProgress) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**_key(progress.shop), "progress": {"S": progress.model_dump_json()}},
        )

    def clear(self, shop: str) -> None:
        self._client.delete_item(TableName=self._table, Key=_key(shop))
