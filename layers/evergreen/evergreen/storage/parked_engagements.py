"""Klaviyo engagement that names only a Klaviyo profile nobody could resolve yet, kept until it can be applied.

One item per engagement, under one partition per Klaviyo profile (storage/keys.py): item name
`parked#klaviyo#<Klaviyo profile id>#<when it happened>#<delivery id>`, so `pk = <shop>/parked#klaviyo#<id>` and
`sk = <when it happened>#<delivery id>` (oldest first). It holds the engagement (no email or phone: it names
nobody but the Klaviyo id) and `expires_at`, so DynamoDB's TTL drops it after `PARKED_DAYS`. The put is
idempotent, so a redelivery parks it once. It has no `profile` attribute and no due or outbox key, so sweeps and
sync never see it; it is listed in the shop's `by_shop` index, so `shop/redact` deletes it with everything else.

**Bounded.** At most `PARKED_PER_KLAVIYO_ID` per Klaviyo profile and `PARKED_PER_SHOP` per shop; past either, the
engagements that happened first are dropped (and counted). Per Klaviyo id a delivery names, a counter item
(`parked#count#<id>`, expiring with the id's newest parked engagement) is incremented; past the bound, that id's
partition is read (one Query), the surplus deleted and the counter set. Per shop, a counter item (`parked#count`)
is incremented by each park and decremented by each release or drop; when it passes the bound, the shop's parked
names are listed from `by_shop` (its shards, `begins_with(owner, parked#klaviyo#)`) and the oldest are deleted
down to `PARKED_SHOP_TRIMMED_TO`. Items the TTL removes are not decremented, so a counter can only run high: the
trim's read corrects it. Parking is rare (a Klaviyo id no profile carries yet), so the shop counter is no hot key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from evergreen.domain.events import EngagementRecorded
from evergreen.service.ports import ParkedEngagement
from evergreen.storage import keys
from evergreen.storage.shop_items import listed_update, names_listed

PARKED_DAYS = 30
"""How long an unresolved engagement waits for its profile to become known."""
PARKED_PER_KLAVIYO_ID = 20
"""Engagements kept per unresolved Klaviyo profile: enough for a month of a person's opens and clicks."""
PARKED_PER_SHOP = 1_000
"""Engagements kept per shop (all Klaviyo ids together); a flood of unknown ids costs at most this much table."""
PARKED_SHOP_TRIMMED_TO = 900
"""What a shop's trim leaves, so that the next trim comes after 100 more parks."""
PARKED_PREFIX = keys.PARKED_PREFIX
COUNT_KEY = "parked#count"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _happened(name: str) -> str:
    """The sortable time in a parked item's name ("" for a name without one: oldest)."""
    parts = name.removeprefix(PARKED_PREFIX).split("#")
    return parts[1] if len(parts) >= 3 and parts[1][:1].isdigit() else ""


def _oldest_first(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda name: (_happened(name), name))


class DynamoParkedEngagements:
    """Parked engagements in the profiles table, through a low-level client created once by the caller."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _prefix(klaviyo_profile_id: str) -> str:
        return f"{PARKED_PREFIX}{klaviyo_profile_id}#"

    def park(self, shop: str, engagements: Sequence[tuple[str, EngagementRecorded]], now: datetime) -> int:
        """Keep these (delivery id, engagement) pairs until their Klaviyo profiles resolve (a redelivery overwrites
        an item with itself). Returns how many parked engagements were dropped to stay within the bounds.

        Costs one BatchWriteItem per 25 and one counter update per Klaviyo id named (plus one Query of that id's
        partition when it may hold more than its bound) and one for the shop; a shop's trim adds a listing of its
        parked names and the deletes.
        """
        if any(not event.klaviyo_profile_id for _, event in engagements):
            raise ValueError("only an engagement that names a Klaviyo profile can be parked")
        expires = {"N": str(int((now + timedelta(days=PARKED_DAYS)).timestamp()))}
        by_id: dict[str, list[str]] = defaultdict(list)
        items: dict[str, dict[str, Any]] = {}
        for delivery_id, event in engagements:
            name = self._name(delivery_id, event)
            if name not in items:
                by_id[str(event.klaviyo_profile_id)].append(name)
            items[name] = {
                **keys.item_key(shop, name),
                **keys.listing(shop, name),
                "delivery_id": _s(delivery_id),
                "event": _s(event.model_dump_json()),
                "expires_at": expires,
            }
        skipped = 0
        for names in by_id.values():  # this delivery alone may exceed an id's bound: keep only its newest
            for name in _oldest_first(names)[: max(0, len(names) - PARKED_PER_KLAVIYO_ID)]:
                del items[name]
                skipped += 1
        self._batch([{"PutRequest": {"Item": item}} for item in items.values()])
        trimmed = 0
        added = Counter(name.removeprefix(PARKED_PREFIX).split("#")[0] for name in items)
        for klaviyo_id, count in added.items():
            if self._count(shop, count, klaviyo_id, expires) > PARKED_PER_KLAVIYO_ID:  # older ones may be stored
                parked_for_id = [
                    self._prefix(klaviyo_id) + item["sk"]["S"] for item in self._partition(shop, klaviyo_id)
                ]
                trimmed += self._drop_oldest(shop, parked_for_id, PARKED_PER_KLAVIYO_ID)
                self._set_count(shop, min(len(parked_for_id), PARKED_PER_KLAVIYO_ID), klaviyo_id, expires)
        if items and self._count(shop, len(items) - trimmed) > PARKED_PER_SHOP:
            parked = self._names_in_shop(shop)
            trimmed += self._drop_oldest(shop, parked, PARKED_SHOP_TRIMMED_TO)
            self._set_count(shop, min(len(parked), PARKED_SHOP_TRIMMED_TO))
        return skipped + trimmed

    def _name(self, delivery_id: str, event: EngagementRecorded) -> str:
        assert event.klaviyo_profile_id is not None
        return f"{self._prefix(event.klaviyo_profile_id)}{keys.instant(event.occurred_at)}#{delivery_id}"

    def parked(self, shop: str, klaviyo_profile_id: str) -> list[ParkedEngagement]:
        """Every engagement parked for this Klaviyo profile, the one that happened first first."""
        found: list[ParkedEngagement] = []
        for item in self._partition(shop, klaviyo_profile_id):
            event = EngagementRecorded.model_validate_json(item["event"]["S"])
            found.append(ParkedEngagement(item["delivery_id"]["S"], event, keys.ref_of(item)[1]))
        return found

    def release(self, shop: str, parked: ParkedEngagement) -> None:
        """Forget one parked engagement once it has been applied."""
        response = self._client.delete_item(
            TableName=self._table, Key=keys.item_key(shop, parked.key), ReturnValues="ALL_OLD"
        )
        if "Attributes" in response:
            self._count(shop, -1)
            self._count(shop, -1, parked.event.klaviyo_profile_id)

    # --- bounds --------------------------------------------------------------------------------------------

    def _partition(self, shop: str, klaviyo_profile_id: str) -> list[dict[str, Any]]:
        """The items parked for one Klaviyo profile, oldest first (their sort keys start with the time)."""
        found: list[dict[str, Any]] = []
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
            found += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return found

    def _names_in_shop(self, shop: str) -> list[str]:
        """Every parked engagement's name in the shop, from the `by_shop` index's shards."""
        return names_listed(self._client, self._table, shop, PARKED_PREFIX)

    def _drop_oldest(self, shop: str, names: list[str], keep: int) -> int:
        """Delete all but the `keep` newest of these parked items; returns how many went."""
        surplus = _oldest_first(names)[: max(0, len(names) - keep)]
        self._batch([{"DeleteRequest": {"Key": keys.item_key(shop, name)}} for name in surplus])
        return len(surplus)

    def _batch(self, writes: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 at a time, until nothing is left unprocessed."""
        for offset in range(0, len(writes), 25):
            request: dict[str, Any] = {self._table: writes[offset : offset + 25]}
            while request:
                request = self._client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def _count(self, shop: str, change: int, klaviyo_id: str | None = None, expires: Any = None) -> int:
        """Add `change` to the shop's parked counter (or one Klaviyo id's); returns the new count. The counter is
        listed in `by_shop`, so shop/redact deletes it too."""
        name = _count_name(klaviyo_id)
        listed, names, values = listed_update(shop, name)
        update = f"ADD parked :n SET {listed}" + (", expires_at = :e" if expires is not None else "")
        values = {**values, ":n": {"N": str(change)}}
        if expires is not None:
            values[":e"] = expires
        response = self._client.update_item(
            TableName=self._table,
            Key=keys.item_key(shop, name),
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["parked"]["N"])

    def _set_count(self, shop: str, count: int, klaviyo_id: str | None = None, expires: Any = None) -> None:
        name = _count_name(klaviyo_id)
        item = {**keys.item_key(shop, name), **keys.listing(shop, name), "parked": {"N": str(count)}}
        if expires is not None:
            item["expires_at"] = expires
        self._client.put_item(TableName=self._table, Item=item)


def _count_name(klaviyo_id: str | None) -> str:
    """The counter of a shop's parked engagements, or of one Klaviyo id's (which expires with its newest one)."""
    return f"{COUNT_KEY}#{klaviyo_id}" if klaviyo_id else COUNT_KEY
