"""Reading a shop's items by name: many at once (BatchGetItem), and the names the `by_shop` index lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from evergreen.storage import keys

Item = dict[str, Any]


def get_many(
    client: Any, table: str, refs: Sequence[tuple[str, str]], projection: str | None
) -> Iterator[tuple[tuple[str, str], Item]]:
    """((shop, name), item) of each stored ref, read consistently 100 keys per request."""
    unique = list(dict.fromkeys(refs))
    for offset in range(0, len(unique), 100):
        wanted: dict[str, Any] = {
            "Keys": [keys.item_key(shop, name) for shop, name in unique[offset : offset + 100]],
            "ConsistentRead": True,
        }
        if projection is not None:
            wanted["ProjectionExpression"] = projection
        request: dict[str, Any] = {table: wanted}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                yield keys.ref_of(item), item
            request = response.get("UnprocessedKeys") or {}


def names_listed(client: Any, table: str, shop: str, prefix: str) -> list[str]:
    """The names of the shop's items that start with `prefix`, from every shard of the keys-only `by_shop` index
    (eventually consistent: an item written a moment ago may be missing)."""
    names: list[str] = []
    for partition in keys.shop_pks(shop):
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": table,
                "IndexName": "by_shop",
                "KeyConditionExpression": "shop_pk = :s AND begins_with(#owner, :p)",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":s": {"S": partition}, ":p": {"S": prefix}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = client.query(**kwargs)
            names += [keys.ref_of(item)[1] for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
    return names


def listed_update(shop: str, name: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The `SET` clause, names and values that keep an item updated with ADD listed in `by_shop` (so shop/redact
    finds it): (clause, ExpressionAttributeNames, ExpressionAttributeValues)."""
    listing = keys.listing(shop, name)
    return (
        "shop_pk = :listing_pk, #owner = :listing_owner",
        {"#owner": "owner"},
        {
            ":listing_pk": listing["shop_pk"],
            ":listing_owner": listing["owner"],
        },
    )
