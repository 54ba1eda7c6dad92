"""The local sandboxes the integration tests talk to, one of each per test module (port 0: any free port)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from evergreen_cli.sandboxes.shopify_admin import ShopifySandbox, start_shopify_sandbox
from tests.integration.stack_state import leave_stack_state


@pytest.fixture(scope="module")
def shopify_sandbox() -> Iterator[ShopifySandbox]:
    with start_shopify_sandbox(port=0) as server:
        yield server


@pytest.fixture(scope="module")
def klaviyo_sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(port=0) as server:
        yield server


@pytest.fixture
def stack_environment(local_resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh local stack's table and queues, as `evergreen run` leaves them for the other commands."""
    return leave_stack_state(local_resources.function_environment("ShopifyWebhookFunction"), tmp_path, monkeypatch)
