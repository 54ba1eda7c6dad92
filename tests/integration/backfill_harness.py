"""Shared set-up for the backfill tests: moto server tables, the Shopify and Klaviyo sandboxes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from evergreen.backfill_wiring import build_backfill
from evergreen.clock import FixedClock
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.service.backfill import Backfill
from evergreen.settings import Settings
from evergreen.shopify.admin import ShopifyAdmin
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen.wiring import Edges

SHOP = "backfill-test.myshopify.com"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Harness:
    edges: Edges
    admin: ShopifyAdmin
    klaviyo: KlaviyoClient
    shopify_sandbox: Any
    klaviyo_sandbox: Any

    def backfill(self, **options: Any) -> Backfill:
        options.setdefault("poll_every_s", 0.0)
        return build_backfill(self.edges, self.admin, self.klaviyo, **options)

    @property
    def progress(self) -> DynamoBackfillProgress:
        return DynamoBackfillProgress(self.edges.dynamodb, self.edges.settings.profiles_table)


def make_harness(local_resources: Any, shopify_sandbox: Any, klaviyo_sandbox: Any, monkeypatch: Any) -> Harness:
    environment = local_resources.function_environment("ShopifyWebhookFunction")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    edges = Edges(Settings.from_env(environment), clock=FixedClock(NOW))
    no_sleep: Callable[[float], None] = lambda _: None  # noqa: E731
    admin = ShopifyAdmin(SHOP, "shpat_sandbox", base_url=shopify_sandbox.url, sleep=no_sleep)
    klaviyo = KlaviyoClient(klaviyo_sandbox.url, "pk_sandbox", http=httpx.Client(), sleep=no_sleep)
    return Harness(edges, admin, klaviyo, shopify_sandbox, klaviyo_sandbox)
