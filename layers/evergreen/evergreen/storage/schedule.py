"""The profiles table as the exact-instant hand-off sees it: a window of the `due` index, and a mark saying how
far ahead transitions are already on the transitions queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from evergreen.domain.profile import Profile
from evergreen.storage import keys
from evergreen.storage.profiles import Page, PageKey, profiles_named

MARK_KEY = {"pk": {"S": "meta#evergreen"}, "sk": {"S": "transitions-scheduled"}}
"""Up to which instant the sweep has handed due transitions off (not a profile)."""


class DynamoTransitionSchedule:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def due_between(
        self, shard: int, after: datetime, until: datetime, start: PageKey = None, limit: int = 200
    ) -> Page[Profile]:
        """Profiles in one shard whose next transition is in (after, until], soonest first.

        Instants are whole seconds, so "after `after`" starts at the next whole second.
        """
        lower = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "due",
            "KeyConditionExpression": "due_pk = :d AND next_transition_at BETWEEN :a AND :t",
            "ExpressionAttributeValues": {
                ":d": {"S": keys.due_pk(shard)},
                ":a": {"S": keys.instant(lower)},
                ":t": {"S": keys.instant(until)},
            },
            "Limit": limit,
        }
        if lower > until:
            return Page([], None)
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self._client.query(**kwargs)
        return Page(
            profiles_named(self._client, self._table, response.get("Items", [])), response.get("LastEvaluatedKey")
        )

    def scheduled_through(self) -> datetime | None:
        response = self._client.get_item(TableName=self._table, Key=MARK_KEY, ConsistentRead=True)
        found = response.get("Item", {}).get("scheduled_through", {}).get("S")
        return datetime.strptime(found, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if found else None

    def record_scheduled_through(self, until: datetime) -> None:
        self._client.put_item(TableName=self._table, Item={**MARK_KEY, "scheduled_through": {"S": keys.instant(until)}})
