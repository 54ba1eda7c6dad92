"""Order items: one per order, each its own partition (`<shop>/order#<order id>`, storage/keys.py).

An order item holds the order's newest snapshot and its refunds (`OrderState` as JSON), the key of the
profile that owns it (`owner`; `~unowned` while only refunds that arrived before the order are parked) and
`shop_pk`, the `by_shop` index key that lists a profile's orders (and the whole shop's items).
refunds/create names only the order, so the item routes it to its profile. It is written in the same
transaction as its profile, conditioned on its own `version`. An item that only holds parked refunds
carries `expires_at`, so DynamoDB's TTL removes it if its order never arrives (60 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from evergreen.domain.orders import OrderState
from evergreen.service.ports import OrderItem
from evergreen.storage import keys

ORDER_PREFIX = keys.ORDER_PREFIX
PARKED_REFUNDS_KEPT = timedelta(days=60)
order_key = keys.order_key


def order_from_item(item: dict[str, Any]) -> OrderItem:
    shop, name = keys.ref_of(item)
    order_id = name.removeprefix(ORDER_PREFIX)
    raw = item.get("order", {}).get("S")
    state = OrderState.model_validate_json(raw) if raw else OrderState()
    owner = item.get("owner", {}).get("S")
    version = int(item.get("version", {"N": "0"})["N"])
    return OrderItem(shop, order_id, None if owner == keys.UNOWNED else owner, state, version)


def order_put(table: str, order: OrderItem, now: datetime) -> dict[str, Any]:
    """A conditional Put of the item's next version (the one after `order.version`)."""
    item: dict[str, Any] = {
        **order_key(order.shop, order.order_id),
        "order": {"S": order.state.model_dump_json(exclude_defaults=True)},
        "version": {"N": str(order.version + 1)},
    }
    if order.owner is not None:
        item |= keys.listing(order.shop, order.owner)
    else:
        item |= keys.listing(order.shop, keys.UNOWNED)
        item["expires_at"] = {"N": str(int((now + PARKED_REFUNDS_KEPT).timestamp()))}
    put: dict[str, Any] = {"TableName": table, "Item": item}
    if order.version == 0:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "version = :ov"
        put["ExpressionAttributeValues"] = {":ov": {"N": str(order.version)}}
    return put


class DynamoOrderLinks:
    """The sort keys of order items, for deletions that know only order ids."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def keys_for(self, order_ids: list[str]) -> list[str]:
        return [f"{ORDER_PREFIX}{order_id}" for order_id in order_ids]
