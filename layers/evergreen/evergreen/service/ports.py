"""The small interfaces the use cases need from storage and messaging."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import Profile


class PageLike[T](Protocol):
    @property
    def items(self) -> list[T]: ...
    @property
    def next_key(self) -> dict[str, Any] | None: ...


class ProfileStore(Protocol):
    def load(self, shop: str, profile_key: str) -> Profile | None: ...
    def customer_key_for_email(self, shop: str, email_normalized: str) -> str | None: ...
    def keys_with_email(self, shop: str, email_normalized: str) -> list[str]: ...
    def keys_in_shop(self, shop: str) -> Iterator[str]: ...
    def save(self, profile: Profile, expected_version: int, pending: SegmentChange | None, now: datetime) -> None: ...
    def save_merged(
        self, profile: Profile, expected_version: int, guest: Profile, pending: SegmentChange | None, now: datetime
    ) -> None: ...
    def delete(self, shop: str, profile_keys: Sequence[str]) -> int: ...


class ChangePublisher(Protocol):
    def publish(self, changes: Sequence[SegmentChange]) -> None: ...


class DataExporter(Protocol):
    def export(self, key: str, document: dict[str, Any]) -> str: ...
