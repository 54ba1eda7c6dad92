"""Every profile of one shop with its sync state, read page by page (the audit's read; no hot path uses it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evergreen.domain.profile import CUSTOMER_PREFIX, GUEST_PREFIX
from evergreen.service.audit import StoredProfile
from evergreen.storage.profiles import profile_from_item
from evergreen.storage.shop_items import get_many, names_listed

PAGE = 100
"""Profiles read per BatchGetItem."""


class DynamoShopProfiles:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def shop_profiles(self, shop: str) -> Iterator[StoredProfile]:
        """The shop's profiles, listed by the `by_shop` index and read consistently 100 at a time."""
        for prefix in (CUSTOMER_PREFIX, GUEST_PREFIX):
            names = names_listed(self._client, self._table, shop, prefix)
            for offset in range(0, len(names), PAGE):
                refs = [(shop, name) for name in names[offset : offset + PAGE]]
                projection = "pk, sk, profile, synced_version, pending_version, klaviyo_profile_id"
                for _, item in get_many(self._client, self._table, refs, projection):
                    if "profile" not in item:
                        continue
                    synced = item.get("synced_version")
                    pending = item.get("pending_version")
                    yield StoredProfile(
                        profile_from_item(item),
                        int(synced["N"]) if synced else None,
                        int(pending["N"]) if pending else None,
                    )
