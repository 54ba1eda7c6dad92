"""Where a shop's backfill stands: one item per shop in the profiles table (`pk = backfill#<shop>`).

The item sits outside the shop's own partition, so profile scans and shop redaction never see it as a
profile. A resumed backfill reads it and skips the lines it already applied.

Beside it, `sk = finished#<operation gid>` notes a bulk_operations/finish webhook: the waiting backfill
checks for it between polls and polls Shopify at once instead of sleeping out its interval. The note
expires with the operation's result URL (7 days), through the table's TTL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from evergreen.service.backfill_model import BackfillProgress

PROGRESS_SK = "progress"
FINISHED_PREFIX = "finished#"
FINISHED_NOTE_KEPT = timedelta(days=7)
"""As long as a bulk operation's result URL lives."""


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

    def record_finished(self, shop: str, operation_id: str, status: str | None, at: datetime) -> None:
        """Note that Shopify said `operation_id` ended (bulk_operations/finish). Idempotent."""
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"backfill#{shop}"},
                "sk": {"S": f"{FINISHED_PREFIX}{operation_id}"},
                "status": {"S": status or "unknown"},
                "expires_at": {"N": str(int((at + FINISHED_NOTE_KEPT).timestamp()))},
            },
        )

    def operation_finished(self, shop: str, operation_id: str) -> bool:
        """Whether a bulk_operations/finish webhook named this operation of this shop."""
        key = {"pk": {"S": f"backfill#{shop}"}, "sk": {"S": f"{FINISHED_PREFIX}{operation_id}"}}
        response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return "Item" in response
