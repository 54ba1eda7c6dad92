"""Item keys and index keys of the profiles table (pure): the one place that knows their format.

Every item of a shop has its own partition key, `<shop>/<name>`, where the name is what the item is within
its shop: a profile key (`customer#<id>`, `guest#<email>`), `order#<order id>` or `delivery#<delivery id>`.
A partition takes 1,000 write units a second, and a key per profile and per order means no key ever takes
more than one customer's writes. Parked Klaviyo engagements share one key per Klaviyo profile
(`<shop>/parked#klaviyo#<id>`, sort key the delivery id), since they are read together. Delivery notes go
to `SHOP_SHARDS` partitions per shop by the hash of their id (`<shop>/delivery#<shard>`, sort key the
delivery id), so shop/redact can read them back without an index.

What must list a whole shop (shop/redact) or all of a profile's orders reads the sparse, keys-only `by_shop`
index: `shop_pk = <shop>#<shard>` with `SHOP_SHARDS` shards per shop, sorted by `owner` (the profile key
that owns the item). A profile and its orders share a shard (the shard of the owner), so a profile's orders
are one query. The `due` and `unsynced` indexes are sharded by the hash of (shop, profile key) over the
stack's `DUE_SHARDS`, so one shop's profiles spread over every shard.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

ORDER_PREFIX = "order#"
DELIVERY_PREFIX = "delivery#"
PARKED_PREFIX = "parked#klaviyo#"
TOMBSTONE_PREFIX = "erased#"
ITEM_SK = "#"
"""The sort key of every item that is alone in its partition (all but parked engagements)."""
SHOP_SHARDS = 32
"""Partitions of one shop in the `by_shop` index (32 x 1,000 new items a second). Part of the key format:
changing it on a live table needs a re-write of every item."""
UNOWNED = "~unowned"
"""The `owner` sort key of an order item whose order has not arrived yet (only parked refunds)."""

Key = dict[str, dict[str, str]]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def item_pk(shop: str, name: str) -> str:
    return f"{shop}/{name}"


def item_key(shop: str, name: str) -> Key:
    """The table key of a shop's item named `name` (a profile key, `order#<id>`, a parked engagement...)."""
    if name.startswith(PARKED_PREFIX):
        owner, _, delivery = name.removeprefix(PARKED_PREFIX).partition("#")
        return {"pk": _s(item_pk(shop, f"{PARKED_PREFIX}{owner}")), "sk": _s(delivery)}
    if name.startswith(DELIVERY_PREFIX):
        delivery = name.removeprefix(DELIVERY_PREFIX)
        return {"pk": _s(item_pk(shop, f"{DELIVERY_PREFIX}{_shard(delivery, SHOP_SHARDS)}")), "sk": _s(delivery)}
    return {"pk": _s(item_pk(shop, name)), "sk": _s(ITEM_SK)}


def profile_key(shop: str, key: str) -> Key:
    return item_key(shop, key)


def order_key(shop: str, order_id: str) -> Key:
    return item_key(shop, f"{ORDER_PREFIX}{order_id}")


def delivery_key(shop: str, delivery_id: str) -> Key:
    return item_key(shop, f"{DELIVERY_PREFIX}{delivery_id}")


def parked_pk(shop: str, klaviyo_profile_id: str) -> str:
    return item_pk(shop, f"{PARKED_PREFIX}{klaviyo_profile_id}")


def ref_of(item: dict[str, Any]) -> tuple[str, str]:
    """(shop, name) of a stored item or index entry: the inverse of `item_key`."""
    shop, _, name = item["pk"]["S"].partition("/")
    sk = item["sk"]["S"]
    if sk == ITEM_SK:
        return shop, name
    if name.startswith(DELIVERY_PREFIX):
        return shop, f"{DELIVERY_PREFIX}{sk}"
    return shop, f"{name}#{sk}"


def delivery_pks(shop: str) -> list[str]:
    """Every partition of a shop's delivery notes."""
    return [item_pk(shop, f"{DELIVERY_PREFIX}{shard}") for shard in range(SHOP_SHARDS)]


def _shard(text: str, shards: int) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def tombstone_name(kind: str, name: str) -> str:
    """The item name of an erasure's tombstone (storage/tombstones.py): alone in its partition like a profile."""
    return f"{TOMBSTONE_PREFIX}{kind}#{name}" if name else f"{TOMBSTONE_PREFIX}{kind}"


def shard_of(shop: str, profile_key: str, shards: int) -> int:
    """A stable shard for a profile, spreading the due and unsynced indexes over `shards` partitions."""
    return _shard(f"{shop}/{profile_key}", shards)


def shop_pk(shop: str, owner: str) -> str:
    """The `by_shop` partition of an item owned by `owner` (a profile key; an unowned item names itself)."""
    return f"{shop}#{_shard(owner, SHOP_SHARDS)}"


def shop_pks(shop: str) -> list[str]:
    """Every `by_shop` partition of a shop: what a shop-wide listing queries."""
    return [f"{shop}#{shard}" for shard in range(SHOP_SHARDS)]


def listing(shop: str, owner: str) -> dict[str, dict[str, str]]:
    """The `by_shop` index attributes of an item owned by `owner`."""
    return {"shop_pk": _s(shop_pk(shop, owner)), "owner": _s(owner)}


def due_pk(shard: int) -> str:
    return f"due#{shard}"


def unsynced_pk(shard: int) -> str:
    return f"unsynced#{shard}"


def email_pk(shop: str, email_normalized: str) -> str:
    return f"{shop}#{email_normalized}"


def klaviyo_pk(shop: str, klaviyo_profile_id: str) -> str:
    """The `by_klaviyo` index key: a shop's profile by the Klaviyo profile id sync learned for it."""
    return f"{shop}#{klaviyo_profile_id}"


def precise_instant(at: datetime) -> str:
    """A sortable UTC timestamp to the microsecond (an erasure's time is compared with a delivery's)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_precise_instant(text: str) -> datetime:
    """The datetime `precise_instant` wrote."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def instant(at: datetime) -> str:
    """A sortable UTC timestamp, to the second, used as an index sort key."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """The datetime `instant` wrote."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
