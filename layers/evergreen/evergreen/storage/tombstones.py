"""Tombstones: what an erasure leaves in the profiles table so that no later delivery brings the customer back.

One item per erased name, alone in its partition like a profile (`<shop>/erased#<kind>#<name>`,
`keys.tombstone_name`), so reading or checking one never touches another customer's key:
`erased_at` (to the microsecond, compared with a delivery's own timestamp) and, for addresses and the shop,
`expires_at` for DynamoDB's TTL (`domain.erasure.ADDRESS_TOMBSTONE_KEPT`). Customer and order tombstones
have no `expires_at`: they are kept for good. No item holds an email or phone, only hashes.

Writers read the tombstones their delivery names in the BatchGetItem they make anyway, and every write
that creates an item (or writes an order item or merges a guest, always a transaction) checks them again in
the same TransactWriteItems (`condition_checks`, all but the shop's), so a redact that lands between the read
and the write cancels the write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evergreen.domain.erasure import ADDRESS_TOMBSTONE_KEPT, ErasureGuard, Tombstone
from evergreen.storage import keys

TOMBSTONE_PREFIX = keys.TOMBSTONE_PREFIX


def tombstone_name(tombstone: Tombstone) -> str:
    """The tombstone's item name within its shop (`keys.item_key` makes its key)."""
    return keys.tombstone_name(tombstone.kind, tombstone.name)


def tombstone_key(shop: str, tombstone: Tombstone) -> dict[str, Any]:
    return keys.item_key(shop, tombstone_name(tombstone))


def tombstone_of(name: str) -> Tombstone | None:
    """The tombstone an item name (`keys.ref_of`) names, or None when the item is not a tombstone."""
    if not name.startswith(TOMBSTONE_PREFIX):
        return None
    kind, _, name = name.removeprefix(TOMBSTONE_PREFIX).partition("#")
    if kind not in {"customer", "order", "email", "phone", "shop"}:
        return None
    return Tombstone(kind, name)  # type: ignore[arg-type]  # checked against the kinds just above


def tombstone_item(shop: str, tombstone: Tombstone, erased_at: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        **tombstone_key(shop, tombstone),
        "erased_at": {"S": keys.precise_instant(erased_at)},
    }
    if not tombstone.permanent:
        item["expires_at"] = {"N": str(int((erased_at + ADDRESS_TOMBSTONE_KEPT).timestamp()))}
    return item


def erased_at_of(item: dict[str, Any]) -> datetime:
    return keys.parse_precise_instant(item["erased_at"]["S"])


def condition_checks(table: str, shop: str, guard: ErasureGuard) -> list[dict[str, Any]]:
    """TransactWriteItems ConditionChecks that fail when a tombstone this delivery must not cross exists.

    Not the shop's: every write in a shop would then name that one item, and DynamoDB cancels a transaction
    that names an item another transaction in progress names (TransactionConflict), so writes of different
    customers would conflict. The shop's tombstone is read with each write instead (shop/redact comes 48 hours
    after the app was uninstalled, when Shopify sends the shop nothing else).
    """
    checks: list[dict[str, Any]] = []
    for tombstone in guard.tombstones:
        if tombstone.kind == "shop":
            continue
        check: dict[str, Any] = {"TableName": table, "Key": tombstone_key(shop, tombstone)}
        if tombstone.permanent or guard.occurred_at is None:
            check["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            check["ConditionExpression"] = "attribute_not_exists(pk) OR erased_at < :occurred"
            check["ExpressionAttributeValues"] = {":occurred": {"S": keys.precise_instant(guard.occurred_at)}}
        checks.append({"ConditionCheck": check})
    return checks
