"""Unit tests run AWS in-process (moto's `mock_aws`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_sync_mark_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto copies a whole table inside TransactWriteItems, which races with writes from other threads,
    so sync's marks (a transaction when they move segment totals) go one at a time here; in AWS, and on moto
    server in the integration tests, they go `MARKS_IN_FLIGHT` at a time."""
    monkeypatch.setattr("evergreen.storage.profiles.MARKS_IN_FLIGHT", 1)
