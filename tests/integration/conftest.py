"""The local sandboxes the integration tests talk to, one of each per test module (port 0: any free port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evergreen_local.klaviyo_sandbox import SandboxServer, start_sandbox
from evergreen_local.shopify_sandbox import ShopifySandbox, start_shopify_sandbox


@pytest.fixture(scope="module")
def shopify_sandbox() -> Iterator[ShopifySandbox]:
    with start_shopify_sandbox(port=0) as server:
        yield server


@pytest.fixture(scope="module")
def klaviyo_sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(port=0) as server:
        yield server
