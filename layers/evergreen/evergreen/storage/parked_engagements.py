"""Klaviyo engagement that names only a Klaviyo profile nobody could resolve yet, kept until it can be applied.

One item per engagement, under one partition per Klaviyo profile: `pk = <shop>/parked#klaviyo#<Klaviyo profile id>`,
`sk = <external_id>` (storage/keys.py), holding the engagement (no email or phone: it
names nobody but the Klaviyo id) and `expires_at`, so DynamoDB's TTL drops it after `PARKED_DAYS`. The
put is idempotent, so a redelivery parks it once. It has no `profile` attribute and no index key, so
sweeps and sync never see it; it is listed in the shop's `by_shop` index, so `shop/redact` deletes it with
everything else of the shop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from evergreen.domain.events import EngagementRecorded
from evergreen.service.ports import ParkedEngagement
from evergreen.storage import keys

PARKED_DAYS = 30
"""How long an unresolved engagement waits for its profile to become known."""
PARKED_PREFIX = keys.PARKED_PREFIX


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoParkedEngagements:
    """Parked engagements in the profiles table, through a low-level client created once by the caller."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _prefix(klaviyo_profile_id: str) -> str:
        return f"{PARKED_PREFIX}{klaviyo_profile_id}#"

    def park(self, shop: str, delivery_id: str, event: EngagementRecorded, now: datetime) -> None:
        """Keep one engagement until its Klaviyo profile resolves (a redelivery overwrites it with itself)."""
        if not event.klaviyo_profile_id:
            raise ValueError("only an engagement that names a Klaviyo profile can be parked")
        expires = int((now + timedelta(days=PARKED_DAYS)).timestamp())
        self._client.put_item(
            TableName=self._table,
            Item={
                **keys.item_key(shop, self._prefix(event.klaviyo_profile_id) + delivery_id),
                **keys.listing(shop, self._prefix(event.klaviyo_profile_id) + delivery_id),
                "delivery_id": _s(delivery_id),
                "event": _s(event.model_dump_json()),
                "expires_at": {"N": str(expires)},
            },
        )

    def parked(self, shop: str, klaviyo_profile_id: str) -> list[ParkedEngagement]:
        """Every engagement parked for this Klaviyo profile, oldest delivery id first."""
        found: list[ParkedEngagement] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": _s(keys.parked_pk(shop, klaviyo_profile_id))},
                "ConsistentRead": True,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                event = EngagementRecorded.model_validate_json(item["event"]["S"])
                found.append(ParkedEngagement(item["delivery_id"]["S"], event))
            start = response.get("LastEvaluatedKey")
            if not start:
                return found

    def release(self, shop: str, klaviyo_profile_id: str, delivery_id: str) -> None:
        """Forget one parked engagement once it has been applied."""
        self._client.delete_item(
            TableName=self._table,
            Key=keys.item_key(shop, self._prefix(klaviyo_profile_id) + delivery_id),
        )
