"""In-process moto for the use cases: the real DynamoDB/SQS adapters, no network."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto import mock_aws

from evergreen.clock import FixedClock
from evergreen.domain.profile import Profile
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.service.shopify_webhooks import ShopifyDelivery, ShopifyWebhooks, WebhookAnswer
from evergreen.settings import Settings
from evergreen.shopify.hmac import sign_shopify_body
from evergreen.storage import keys
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen.storage.exports import S3DataExporter
from evergreen.storage.packed import unpacked
from evergreen.wiring import Edges
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox

SHOP = "evergreen-test.myshopify.com"
SHOPIFY_SECRET = "unit-test-shopify-secret"
KLAVIYO_SECRET = "unit-test-klaviyo-secret"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        yield


@pytest.fixture
def settings(aws: None) -> Settings:
    environment = create_resources(
        {SHOP: SHOPIFY_SECRET}, {SHOP: {"api_key": "pk_test", "webhook_secret": KLAVIYO_SECRET}}
    )
    return Settings.from_env({**environment, "SECRETS_CACHE_SECONDS": "0"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def edges(settings: Settings, clock: FixedClock) -> Edges:
    return Edges(settings, clock)


def edges_with_segments(settings: Settings, clock: FixedClock, folder: Path, segments: str, **more: Any) -> Edges:
    """The use cases evaluating the definitions `segments` (YAML text) instead of the default pack."""
    definitions = folder / "segments.yaml"
    definitions.write_text(segments)
    return Edges(settings.model_copy(update={"segments_file": str(definitions), **more}), clock)


@pytest.fixture
def klaviyo_sandbox() -> Iterator[SandboxServer]:
    """The Klaviyo sandbox on a free port, checking requests against the spec where it is present."""
    server = start_sandbox("127.0.0.1", 0, None)
    yield server
    server.stop()


@pytest.fixture
def klaviyo_client(klaviyo_sandbox: SandboxServer) -> KlaviyoClient:
    return KlaviyoClient(klaviyo_sandbox.url, "pk_test", http=httpx.Client(), sleep=lambda _: None, max_attempts=3)


class World:
    """The use cases wired to in-process moto, with helpers that read like the product."""

    def __init__(self, edges: Edges, clock: FixedClock) -> None:
        self.edges = edges
        self.clock = clock
        self.webhooks = ShopifyWebhooks(
            secrets_for_shop=edges.secrets.shopify_webhook_secrets,
            writer=edges.writer,
            store=edges.store,
            order_links=edges.order_links,
            exporter=S3DataExporter(edges.s3, edges.settings.exports_bucket),
            clock=clock,
            max_body_bytes=edges.settings.max_body_bytes,
            bulk_operations=DynamoBackfillProgress(edges.dynamodb, edges.settings.profiles_table),
        )

    def shopify(
        self,
        topic: str,
        payload: dict[str, Any] | bytes,
        event_id: str | None = None,
        secret: str = SHOPIFY_SECRET,
        shop: str = SHOP,
        triggered_at: str | None = None,
    ) -> WebhookAnswer:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        delivery = ShopifyDelivery(
            shop=shop,
            topic=topic,
            hmac=sign_shopify_body(body, secret),
            body=body,
            event_id=event_id or str(uuid.uuid4()),
            webhook_id=str(uuid.uuid4()),
            triggered_at=triggered_at,
        )
        return self.webhooks.receive(delivery)

    def profile(self, customer_id: str | int) -> Profile | None:
        return self.edges.store.load(SHOP, f"customer#{customer_id}")

    def guest(self, email: str) -> Profile | None:
        return self.edges.store.load(SHOP, f"guest#{email}")

    def facts(self, customer_id: str | int) -> dict[str, Any]:
        profile = self.profile(customer_id)
        assert profile is not None
        return profile.facts()

    def readable_items(self, *, tombstones: bool = True) -> str:
        """Every table item as JSON, compressed attributes unpacked: what a reader of the table could learn
        (without the erasure tombstones, which keep ids by design, when `tombstones` is False)."""
        return json.dumps(
            [
                {name: {"S": unpacked(value)} if "B" in value else value for name, value in item.items()}
                for item in self.items()
                if tombstones or not keys.ref_of(item)[1].startswith(keys.TOMBSTONE_PREFIX)
            ]
        )

    def items(self) -> list[dict[str, Any]]:
        client = self.edges.dynamodb
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.edges.settings.profiles_table}
        while True:
            page = client.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queued(self) -> list[dict[str, Any]]:
        """Drain the segment-changes queue."""
        client = self.edges.sqs
        url = self.edges.settings.segment_changes_queue_url
        found: list[dict[str, Any]] = []
        while True:
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def world(edges: Edges, clock: FixedClock) -> World:
    return World(edges, clock)
