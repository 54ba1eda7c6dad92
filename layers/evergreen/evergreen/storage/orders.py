"""Order links: which profile an order belongs to, and refunds that arrived before their order.

A link is an item beside the profiles (`sk = order#<order id>`). refunds/create names only the
order, so the link routes it; when the order is not known yet, the refund is parked on the link
and folded into the profile when the order arrives (one attribute per parked refund).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from evergreen.storage import keys

ORDER_PREFIX = "order#"
PARKED_PREFIX = "parked_refund:"
PARKED_REFUNDS_KEPT = timedelta(days=60)


@dataclass(frozen=True)
class OrderLink:
    profile_key: str | None
    parked_refunds: dict[str, dict[str, Any]] = field(default_factory=dict)


def _link_from_item(item: dict[str, Any]) -> OrderLink:
    parked = {
        name.removeprefix(PARKED_PREFIX): json.loads(value["S"])
        for name, value in item.items()
        if name.startswith(PARKED_PREFIX)
    }
    return OrderLink(item.get("profile_key", {}).get("S"), parked)


class DynamoOrderLinks:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, shop: str, order_id: str) -> dict[str, Any]:
        return {"pk": {"S": keys.shop_pk(shop)}, "sk": {"S": f"{ORDER_PREFIX}{order_id}"}}

    def get(self, shop: str, order_id: str) -> OrderLink | None:
        response = self._client.get_item(TableName=self._table, Key=self._key(shop, order_id), ConsistentRead=True)
        item = response.get("Item")
        return _link_from_item(item) if item else None

    def link(self, shop: str, order_id: str, profile_key: str) -> OrderLink:
        """Point the order at its profile; returns the link with any refunds parked meanwhile."""
        response = self._client.update_item(
            TableName=self._table,
            Key=self._key(shop, order_id),
            UpdateExpression="SET profile_key = :k REMOVE expires_at",
            ExpressionAttributeValues={":k": {"S": profile_key}},
            ReturnValues="ALL_NEW",
        )
        return _link_from_item(response["Attributes"])

    def park_refund(self, shop: str, order_id: str, refund_id: str, refund: dict[str, Any], now: datetime) -> bool:
        """Keep a refund for an order not seen yet; False when the order got linked meanwhile.

        A link that only holds parked refunds expires (DynamoDB TTL) if its order never arrives,
        for example an order with no customer and no email.
        """
        expires_at = int((now + PARKED_REFUNDS_KEPT).timestamp())
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(shop, order_id),
                UpdateExpression="SET #refund = :refund, expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression="attribute_not_exists(profile_key)",
                ExpressionAttributeNames={"#refund": f"{PARKED_PREFIX}{refund_id}"},
                ExpressionAttributeValues={
                    ":refund": {"S": json.dumps(refund, default=str)},
                    ":expires": {"N": str(expires_at)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def keys_for(self, order_ids: list[str]) -> list[str]:
        return [f"{ORDER_PREFIX}{order_id}" for order_id in order_ids]
