"""Item keys and index keys of the profiles table (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

SHOP_PREFIX = "shop#"
ORDER_PREFIX = "order#"


def shop_pk(shop: str) -> str:
    return f"{SHOP_PREFIX}{shop}"


def tombstone_sk(kind: str, name: str) -> str:
    """The sort key of an erasure's tombstone (storage/tombstones.py) beside the shop's profiles."""
    return f"erased#{kind}#{name}" if name else f"erased#{kind}"


def shard_of(shop: str, profile_key: str, shards: int) -> int:
    """A stable shard for a profile, spreading the due and unsynced indexes over `shards` partitions."""
    digest = hashlib.blake2b(f"{shop}/{profile_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def due_pk(shard: int) -> str:
    return f"due#{shard}"


def unsynced_pk(shard: int) -> str:
    return f"unsynced#{shard}"


def email_pk(shop: str, email_normalized: str) -> str:
    return f"{shop}#{email_normalized}"


def owner_pk(shop: str, profile_key: str) -> str:
    """The `by_owner` index key: every order item of one profile."""
    return f"{shop}/{profile_key}"


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
