"""Every profile of one shop with its sync state, read page by page (the audit's read; no hot path uses it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evergreen.service.audit import StoredProfile
from evergreen.storage import keys
from evergreen.storage.profiles import profile_from_item


class DynamoShopProfiles:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def shop_profiles(self, shop: str) -> Iterator[StoredProfile]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "attribute_exists(profile)",
            "ProjectionExpression": "pk, sk, profile, synced_version, pending_version, klaviyo_profile_id",
            "ExpressionAttributeValues": {":pk": {"S": keys.shop_pk(shop)}},
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                synced = item.get("synced_version")
                pending = item.get("pending_version")
                yield StoredProfile(
                    profile_from_item(item),
                    int(synced["N"]) if synced else None,
                    int(pending["N"]) if pending else None,
                )
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
