"""An in-memory ProfileStore: the port's contract without DynamoDB, for fast service tests.

It serialises every item as the DynamoDB adapter does (to enforce the item size limit). It honours
what the service relies on: version conditions on profiles and order items (a stale write raises
`VersionConflict` and changes nothing), atomic profile + order + guest writes, the `by_email` and `by_shop`
lookups, and DynamoDB's 400 KB item size limit (an oversized write fails, as DynamoDB's would).
It also counts requests the way DynamoDB bills round trips: one per read batch, one per write or transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from evergreen.domain.changes import ProfileErasure, SegmentChange
from evergreen.domain.erasure import ErasureGuard, Tombstone
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.service.ports import ListMemberNow, OrderItem, Snapshot, VersionConflict

ITEM_SIZE_LIMIT = 400 * 1024
"""DynamoDB's maximum item size, names and values included."""


class ItemTooLarge(Exception):
    """The write would store an item over DynamoDB's 400 KB limit (DynamoDB answers ValidationException)."""


@dataclass
class _ProfileItem:
    profile_json: str
    version: int
    email: str | None
    profile: Profile
    """The profile that was stored (the service never mutates a profile; the moto tests cover the JSON round trip)."""

    @property
    def size(self) -> int:
        return len("profile") + len(self.profile_json.encode()) + 64


@dataclass
class _OrderItem:
    state_json: str
    owner: str | None
    version: int
    state: OrderState

    @property
    def size(self) -> int:
        return len("order") + len(self.state_json.encode()) + 64


@dataclass
class InMemoryProfileStore:
    """Profiles and order items of every shop, keyed by (shop, sort key)."""

    profiles: dict[tuple[str, str], _ProfileItem] = field(default_factory=dict)
    orders: dict[tuple[str, str], _OrderItem] = field(default_factory=dict)
    tombstones: dict[tuple[str, Tombstone], datetime] = field(default_factory=dict)
    deliveries: set[tuple[str, str]] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)

    # reads ---------------------------------------------------------------
    def load(self, shop: str, profile_key: str) -> Profile | None:
        self.requests["GetItem"] += 1
        return self._profile(shop, profile_key)

    def load_for_write(
        self,
        shop: str,
        profile_key: str,
        order_id: str | None = None,
        guest_key: str | None = None,
        delivery_id: str | None = None,
        tombstones: Sequence[Tombstone] = (),
    ) -> Snapshot:
        self.requests["BatchGetItem"] += 1
        guest = self._profile(shop, guest_key) if guest_key is not None and guest_key != profile_key else None
        order = self._order(shop, order_id) if order_id is not None else None
        seen = delivery_id is not None and (shop, delivery_id) in self.deliveries
        return Snapshot(self._profile(shop, profile_key), order, guest, self._erased(shop, tombstones), seen)

    def remember_delivery(self, shop: str, delivery_id: str, now: datetime) -> None:
        self.requests["PutItem"] += 1
        self.deliveries.add((shop, delivery_id))

    def erased(self, shop: str, tombstones: Sequence[Tombstone]) -> dict[Tombstone, datetime]:
        self.requests["BatchGetItem"] += 1
        return self._erased(shop, tombstones)

    def record_erasure(self, shop: str, tombstones: Sequence[Tombstone], at: datetime) -> None:
        self.requests["BatchWriteItem"] += (len(tombstones) + 24) // 25
        for tombstone in tombstones:
            self.tombstones[(shop, tombstone)] = at

    def list_members_now(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ListMemberNow]:
        """Every stored profile counts as synced (the fake keeps no synced version)."""
        self.requests["BatchGetItem"] += (len(refs) + 99) // 100
        found = {ref: self._profile(*ref) for ref in refs}
        return {
            ref: ListMemberNow(frozenset(profile.membership), profile.klaviyo_profile_id, True)
            for ref, profile in found.items()
            if profile is not None
        }

    def load_order(self, shop: str, order_id: str) -> OrderItem | None:
        self.requests["GetItem"] += 1
        return self._order(shop, order_id)

    def orders_of(self, shop: str, profile_key: str) -> list[OrderItem]:
        self.requests["Query"] += 1
        found = []
        for (item_shop, order_id), item in self.orders.items():
            if item_shop == shop and item.owner == profile_key:
                found.append(OrderItem(shop, order_id, item.owner, item.state, item.version))
        return found

    def order_ids_of(self, shop: str, profile_key: str) -> list[str]:
        return [order.order_id for order in self.orders_of(shop, profile_key)]

    def customer_key_for_email(self, shop: str, email_normalized: str) -> str | None:
        customers = [key for key in self.keys_with_email(shop, email_normalized) if key.startswith("customer#")]
        return min(customers) if customers else None

    def keys_with_email(self, shop: str, email_normalized: str) -> list[str]:
        self.requests["Query"] += 1
        return [
            key
            for (item_shop, key), item in self.profiles.items()
            if item_shop == shop and item.email == email_normalized
        ]

    def keys_in_shop(self, shop: str) -> Iterator[str]:
        self.requests["Query"] += 1
        keys = [key for item_shop, key in self.profiles if item_shop == shop]
        keys += [f"order#{order_id}" for item_shop, order_id in self.orders if item_shop == shop]
        return iter(keys)

    def keys_for(self, order_ids: list[str]) -> list[str]:
        return [f"order#{order_id}" for order_id in order_ids]

    # writes --------------------------------------------------------------
    def save(
        self,
        profile: Profile,
        expected_version: int,
        pending: SegmentChange | None,
        now: datetime,
        order: OrderItem | None = None,
        guest: Profile | None = None,
        guard: ErasureGuard | None = None,
    ) -> None:
        self.requests["TransactWriteItems" if order is not None or guest is not None else "UpdateItem"] += 1
        key = (profile.shop, profile.key)
        current = self.profiles.get(key)
        if (current.version if current else 0) != expected_version:
            raise VersionConflict("the profile changed since it was read")
        if guard is not None and guard.blocked_by(self._erased(profile.shop, guard.tombstones)):
            raise VersionConflict("a tombstone stops this write")
        if order is not None:
            self._check_order(order)
        if guest is not None:
            stored_guest = self.profiles.get((guest.shop, guest.key))
            if stored_guest is None or stored_guest.version != guest.version:
                raise VersionConflict("the guest changed since it was read")
        profile_json = profile.model_dump_json(exclude_defaults=True)
        item = _ProfileItem(profile_json, profile.version, profile.email_normalized, profile)
        order_item = self._order_item(order) if order is not None else None
        for size in (item.size, order_item.size if order_item else 0):
            if size > ITEM_SIZE_LIMIT:
                raise ItemTooLarge(f"item of {size} bytes exceeds {ITEM_SIZE_LIMIT}")
        self.profiles[key] = item
        if order is not None and order_item is not None:
            self.orders[(order.shop, order.order_id)] = order_item
        if guest is not None:
            del self.profiles[(guest.shop, guest.key)]

    def park_refund(self, item: OrderItem, now: datetime, guard: ErasureGuard | None = None) -> None:
        self.requests["PutItem"] += 1
        self._check_order(item)
        if guard is not None and guard.blocked_by(self._erased(item.shop, guard.tombstones)):
            raise VersionConflict("a tombstone stops this write")
        self.orders[(item.shop, item.order_id)] = self._order_item(item)

    def delete(self, shop: str, profile_keys: Sequence[str]) -> int:
        unique = list(dict.fromkeys(profile_keys))
        self.requests["BatchWriteItem"] += (len(unique) + 24) // 25
        for key in unique:
            self.profiles.pop((shop, key), None)
            if key.startswith("order#"):
                self.orders.pop((shop, key.removeprefix("order#")), None)
        return len(unique)

    def erase_profiles(self, shop: str, profile_keys: Sequence[str]) -> int:
        """The fake keeps no segment totals: erasing is deleting."""
        unique = [key for key in dict.fromkeys(profile_keys) if (shop, key) in self.profiles]
        self.delete(shop, unique)
        return len(unique)

    def touch_unsynced(self, change: SegmentChange, now: datetime) -> None:
        """The outbox index is not modelled: a re-sent change's grace period has nothing to restart."""
        self.requests["UpdateItem"] += 1

    # sizes ---------------------------------------------------------------
    def profile_item_size(self, shop: str, profile_key: str) -> int:
        return self.profiles[(shop, profile_key)].size

    # helpers -------------------------------------------------------------
    def _erased(self, shop: str, tombstones: Sequence[Tombstone]) -> dict[Tombstone, datetime]:
        return {t: self.tombstones[(shop, t)] for t in tombstones if (shop, t) in self.tombstones}

    def _profile(self, shop: str, key: str | None) -> Profile | None:
        item = self.profiles.get((shop, key)) if key is not None else None
        return item.profile if item else None

    def _order(self, shop: str, order_id: str) -> OrderItem | None:
        item = self.orders.get((shop, order_id))
        if item is None:
            return None
        return OrderItem(shop, order_id, item.owner, item.state, item.version)

    def _check_order(self, order: OrderItem) -> None:
        stored = self.orders.get((order.shop, order.order_id))
        if (stored.version if stored else 0) != order.version:
            raise VersionConflict("the order changed since it was read")

    @staticmethod
    def _order_item(order: OrderItem) -> _OrderItem:
        state_json = order.state.model_dump_json(exclude_defaults=True)
        return _OrderItem(state_json, order.owner, order.version + 1, order.state)


@dataclass
class ListPublisher:
    """A ChangePublisher that keeps what it was given."""

    published: list[SegmentChange] = field(default_factory=list)
    erasures: list[ProfileErasure] = field(default_factory=list)

    def publish(self, changes: Sequence[SegmentChange]) -> None:
        self.published.extend(changes)

    def publish_erasure(self, erasure: ProfileErasure) -> None:
        self.erasures.append(erasure)


@dataclass
class DictExporter:
    """A DataExporter that keeps documents in memory."""

    documents: dict[str, dict[str, object]] = field(default_factory=dict)

    def export(self, key: str, document: dict[str, object]) -> str:
        self.documents[key] = document
        return key
