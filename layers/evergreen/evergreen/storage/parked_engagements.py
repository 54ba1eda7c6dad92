"""Klaviyo engagement that names only a Klaviyo profile nobody could resolve yet, kept until it can be applied.

One item per engagement, beside the shop's profiles: `pk = shop#<shop>`,
`sk = parked#klaviyo#<Klaviyo profile id>#<when it happened>#<external_id>`, holding the engagement (no email or
phone: it names nobody but the Klaviyo id) and `expires_at`, so DynamoDB's TTL drops it after `PARKED_DAYS`. The
put is idempotent, so a redelivery parks it once. It has no `profile` attribute and no index key, so sweeps and
sync never see it; `shop/redact` deletes it with everything else under the shop. A redelivery parked again
is counted again, so the counter can run high (the trim's read corrects it).

**Bounded.** At most `PARKED_PER_KLAVIYO_ID` per Klaviyo profile and `PARKED_PER_SHOP` per shop; past either,
the engagements that happened first are dropped (and counted). A delivery parks what it could not resolve in
one go. Per Klaviyo id it names, a counter item (`parked#count#<id>`, expiring with the id's newest parked
engagement) is incremented; past the bound, that id's keys are read (one Query of the bound plus what this
delivery added), the surplus deleted and the counter set. Per shop, a counter item (`parked#count`) is
incremented by each park and decremented by each release or drop; when it passes the bound,
the shop's parked keys are read once (a Query of about `PARKED_PER_SHOP` keys) and the oldest are deleted
down to `PARKED_SHOP_TRIMMED_TO`, and the counter is set to what is left. Items the TTL removes are not
decremented, so the counter can only run high: the trim's read corrects it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from evergreen.domain.events import EngagementRecorded
from evergreen.service.ports import ParkedEngagement
from evergreen.storage import keys

PARKED_DAYS = 30
"""How long an unresolved engagement waits for its profile to become known."""
PARKED_PER_KLAVIYO_ID = 20
"""Engagements kept per unresolved Klaviyo profile: enough for a month of a person's opens and clicks."""
PARKED_PER_SHOP = 1_000
"""Engagements kept per shop (all Klaviyo ids together); a flood of unknown ids costs at most this much table."""
PARKED_SHOP_TRIMMED_TO = 900
"""What a shop's trim leaves, so that the next trim (one Query of about 1,000 keys) comes after 100 more parks."""
PARKED_PREFIX = "parked#klaviyo#"
COUNT_KEY = "parked#count"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _happened(sort_key: str) -> str:
    """The sortable time in a parked item's sort key ("" for items parked before keys carried it: oldest)."""
    parts = sort_key.removeprefix(PARKED_PREFIX).split("#")
    return parts[1] if len(parts) >= 3 and parts[1][:1].isdigit() else ""


def _oldest_first(sort_keys: Sequence[str]) -> list[str]:
    return sorted(sort_keys, key=lambda key: (_happened(key), key))


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
        keys when it may hold more than its bound) and one for the shop; a shop's trim adds one Query of its
        parked keys and the deletes.
        """
        if any(not event.klaviyo_profile_id for _, event in engagements):
            raise ValueError("only an engagement that names a Klaviyo profile can be parked")
        expires = {"N": str(int((now + timedelta(days=PARKED_DAYS)).timestamp()))}
        by_id: dict[str, list[str]] = defaultdict(list)
        items: dict[str, dict[str, Any]] = {}
        for delivery_id, event in engagements:
            sort_key = self._sort_key(delivery_id, event)
            if sort_key not in items:
                by_id[str(event.klaviyo_profile_id)].append(sort_key)
            items[sort_key] = {
                "pk": _s(keys.shop_pk(shop)),
                "sk": _s(sort_key),
                "delivery_id": _s(delivery_id),
                "event": _s(event.model_dump_json()),
                "expires_at": expires,
            }
        skipped = 0
        for sort_keys in by_id.values():  # this delivery alone may exceed an id's bound: keep only its newest
            for sort_key in _oldest_first(sort_keys)[: max(0, len(sort_keys) - PARKED_PER_KLAVIYO_ID)]:
                del items[sort_key]
                skipped += 1
        self._batch(shop, [{"PutRequest": {"Item": item}} for item in items.values()])
        trimmed = 0
        added = Counter(key.removeprefix(PARKED_PREFIX).split("#")[0] for key in items)
        for klaviyo_id, count in added.items():
            if self._count(shop, count, klaviyo_id, expires) > PARKED_PER_KLAVIYO_ID:  # older ones may be stored
                parked_for_id = self._keys(shop, self._prefix(klaviyo_id))
                trimmed += self._drop_oldest(shop, parked_for_id, PARKED_PER_KLAVIYO_ID)
                self._set_count(shop, min(len(parked_for_id), PARKED_PER_KLAVIYO_ID), klaviyo_id, expires)
        if items and self._count(shop, len(items) - trimmed) > PARKED_PER_SHOP:
            parked = self._keys(shop, PARKED_PREFIX)
            trimmed += self._drop_oldest(shop, parked, PARKED_SHOP_TRIMMED_TO)
            self._set_count(shop, min(len(parked), PARKED_SHOP_TRIMMED_TO))
        return skipped + trimmed

    def _sort_key(self, delivery_id: str, event: EngagementRecorded) -> str:
        assert event.klaviyo_profile_id is not None
        return f"{self._prefix(event.klaviyo_profile_id)}{keys.instant(event.occurred_at)}#{delivery_id}"

    def parked(self, shop: str, klaviyo_profile_id: str) -> list[ParkedEngagement]:
        """Every engagement parked for this Klaviyo profile, the one that happened first first."""
        found: list[ParkedEngagement] = []
        for item in self._query(shop, self._prefix(klaviyo_profile_id), None):
            event = EngagementRecorded.model_validate_json(item["event"]["S"])
            found.append(ParkedEngagement(item["delivery_id"]["S"], event, item["sk"]["S"]))
        return found

    def release(self, shop: str, parked: ParkedEngagement) -> None:
        """Forget one parked engagement once it has been applied."""
        response = self._client.delete_item(
            TableName=self._table, Key={"pk": _s(keys.shop_pk(shop)), "sk": _s(parked.key)}, ReturnValues="ALL_OLD"
        )
        if "Attributes" in response:
            self._count(shop, -1)
            self._count(shop, -1, parked.event.klaviyo_profile_id)

    # --- bounds --------------------------------------------------------------------------------------------

    def _keys(self, shop: str, prefix: str) -> list[str]:
        return [item["sk"]["S"] for item in self._query(shop, prefix, "sk")]

    def _query(self, shop: str, prefix: str, projection: str | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {":pk": _s(keys.shop_pk(shop)), ":prefix": _s(prefix)},
                "ConsistentRead": True,
            }
            if projection:
                kwargs["ProjectionExpression"] = projection
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self._client.query(**kwargs)
            found += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return sorted(found, key=lambda item: (_happened(item["sk"]["S"]), item["sk"]["S"]))

    def _drop_oldest(self, shop: str, sort_keys: list[str], keep: int) -> int:
        """Delete all but the `keep` newest of these (already oldest-first) keys; returns how many went."""
        surplus = _oldest_first(sort_keys)[: max(0, len(sort_keys) - keep)]
        self._batch(
            shop, [{"DeleteRequest": {"Key": {"pk": _s(keys.shop_pk(shop)), "sk": _s(key)}}} for key in surplus]
        )
        return len(surplus)

    def _batch(self, shop: str, writes: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 at a time, until nothing is left unprocessed."""
        for offset in range(0, len(writes), 25):
            request: dict[str, Any] = {self._table: writes[offset : offset + 25]}
            while request:
                request = self._client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def _count(self, shop: str, change: int, klaviyo_id: str | None = None, expires: Any = None) -> int:
        """Add `change` to the shop's parked counter (or one Klaviyo id's); returns the new count."""
        update = "ADD parked :n" + (" SET expires_at = :e" if expires is not None else "")
        values: dict[str, Any] = {":n": {"N": str(change)}}
        if expires is not None:
            values[":e"] = expires
        response = self._client.update_item(
            TableName=self._table,
            Key={"pk": _s(keys.shop_pk(shop)), "sk": _s(_count_key(klaviyo_id))},
            UpdateExpression=update,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["parked"]["N"])

    def _set_count(self, shop: str, count: int, klaviyo_id: str | None = None, expires: Any = None) -> None:
        item = {"pk": _s(keys.shop_pk(shop)), "sk": _s(_count_key(klaviyo_id)), "parked": {"N": str(count)}}
        if expires is not None:
            item["expires_at"] = expires
        self._client.put_item(TableName=self._table, Item=item)


def _count_key(klaviyo_id: str | None) -> str:
    """The counter of a shop's parked engagements, or of one Klaviyo id's (which expires with its newest one)."""
    return f"{COUNT_KEY}#{klaviyo_id}" if klaviyo_id else COUNT_KEY
