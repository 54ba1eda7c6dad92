"""Where each account's engagement poll stands: one item per shop (`pk = poll#<shop>`, `sk = engagement`).

The item sits outside the shop's own partition, so profile scans and shop redaction never see it. It holds
instants only (no PII): what the poll has covered, when it last completed, the newest event it read, and the
last failure. A save never moves `covered_until` back (ISO 8601 instants in UTC compare as strings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from evergreen.service.engagement_poll import PollCheckpoint

POLL_SK = "engagement"
_FIELDS = ("covered_until", "completed_at", "newest_event_at", "failed_at")


def _key(shop: str) -> dict[str, Any]:
    return {"pk": {"S": f"poll#{shop}"}, "sk": {"S": POLL_SK}}


class DynamoPollCheckpoints:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, shop: str) -> PollCheckpoint | None:
        response = self._client.get_item(TableName=self._table, Key=_key(shop), ConsistentRead=True)
        item = response.get("Item")
        if not item or "covered_until" not in item:
            return None
        instants = {name: datetime.fromisoformat(item[name]["S"]) if name in item else None for name in _FIELDS}
        failure = item.get("failure", {}).get("S")
        return PollCheckpoint(
            covered_until=instants["covered_until"] or datetime.fromisoformat(item["covered_until"]["S"]),
            completed_at=instants["completed_at"],
            newest_event_at=instants["newest_event_at"],
            failed_at=instants["failed_at"],
            failure=failure,
        )

    def save(self, shop: str, checkpoint: PollCheckpoint) -> None:
        item: dict[str, Any] = {**_key(shop)}
        for name in _FIELDS:
            value = getattr(checkpoint, name)
            if value is not None:
                item[name] = {"S": value.astimezone(UTC).isoformat()}
        if checkpoint.failure is not None:
            item["failure"] = {"S": checkpoint.failure}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                # Two runs that overlap (a schedule shorter than a run) never move the checkpoint back.
                ConditionExpression="attribute_not_exists(covered_until) OR covered_until <= :covered",
                ExpressionAttributeValues={":covered": item["covered_until"]},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
