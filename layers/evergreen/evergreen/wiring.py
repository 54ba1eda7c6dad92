"""The composition root: builds the edges (AWS and HTTP clients, stores, publishers) and the use cases over them.

Handlers create one `Edges` at module scope and take their use case from it (`edges.shopify_webhooks`,
`edges.klaviyo_webhooks`, `edges.sweep`, `edges.segment_sync`, `edges.transitions`); the backfill's are built
in `backfill_wiring.py` from the same edges. Every client is created on first use, so a function creates only
the clients its module scope and hot path touch: the webhook functions DynamoDB, SQS and Secrets Manager; the
sweep DynamoDB and SQS; sync DynamoDB at init, then Secrets Manager and SQS when a batch needs them. S3
(customers/data_request exports) is created by the first export; a Klaviyo client per API key by the first
call for its shop. A use case's own modules are imported by the property that builds it, so a function does not
import another's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from evergreen.clock import Clock, SystemClock
from evergreen.segments import Definitions, default_definitions, load_definitions
from evergreen.service.list_moves import ListMover
from evergreen.service.profile_writer import ProfileWriter, RetryPolicy
from evergreen.service.sweep import StalenessSweep
from evergreen.service.transitions import ExactTransitions, TransitionScheduler
from evergreen.settings import Settings
from evergreen.storage.exports import S3DataExporter
from evergreen.storage.list_moves import DynamoListMoves
from evergreen.storage.orders import DynamoOrderLinks
from evergreen.storage.profiles import DynamoProfileStore
from evergreen.storage.queue import SqsBacklog, SqsChangePublisher, SqsDelayedSender, SqsRedelivery
from evergreen.storage.schedule import DynamoTransitionSchedule
from evergreen.storage.secrets import ShopSecrets
from evergreen.storage.sweep_fanout import LambdaSweepFanout

if TYPE_CHECKING:
    import httpx

    from evergreen.klaviyo.client import ConcurrentCalls, KlaviyoClient
    from evergreen.klaviyo.pusher import KlaviyoPusher
    from evergreen.service.engagement_poll import EngagementPoll
    from evergreen.service.klaviyo_webhooks import KlaviyoWebhooks
    from evergreen.service.shopify_webhooks import ShopifyWebhooks
    from evergreen.service.sync import SegmentSync
    from evergreen.service.sync_drain import DrainingSync
    from evergreen.storage.rate_budget import DynamoRateBudget

AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5)
ANSWERING_AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=0.5, read_timeout=1)
"""Where a sender waits for the answer (`ANSWER_WITHIN_SECONDS`): one retry, short timeouts. DynamoDB and SQS
answer in milliseconds; a call that hangs is better answered 503 (the sender retries) than past its deadline."""
WRITE_SHARE_OF_ANSWER = 0.5
"""The share of the answer deadline a write may spend retrying lost races; the rest covers a cold start, the
secret's first read and the last attempt's own calls (docs/architecture.md, "Answering within 5 s")."""


def definitions_for(settings: Settings) -> Definitions:
    return load_definitions(Path(settings.segments_file)) if settings.segments_file else default_definitions()


@dataclass
class Edges:
    """One process's AWS clients and the adapters over them, each created on first use."""

    settings: Settings
    clock: Clock = SystemClock()  # noqa: RUF009 - stateless

    @classmethod
    def from_env(cls) -> Edges:
        """The edges a Lambda function runs on, configured by its environment."""
        return cls(Settings.from_env())

    @cached_property
    def definitions(self) -> Definitions:
        return definitions_for(self.settings)

    @cached_property
    def aws_config(self) -> Config:
        """Short timeouts and one retry where a sender waits for the answer; patient ones elsewhere."""
        return ANSWERING_AWS_CONFIG if self.settings.answer_within_seconds else AWS_CONFIG

    @cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", config=self.aws_config)

    @cached_property
    def sqs(self) -> Any:
        return boto3.client("sqs", config=self.aws_config)

    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3", config=self.aws_config)

    @cached_property
    def lambda_client(self) -> Any:
        """The backfill's, to continue in a new invocation of itself."""
        return boto3.client("lambda", config=self.aws_config)

    @cached_property
    def store(self) -> DynamoProfileStore:
        return DynamoProfileStore(self.dynamodb, self.settings.profiles_table, self.settings.due_shards)

    @cached_property
    def order_links(self) -> DynamoOrderLinks:
        return DynamoOrderLinks(self.dynamodb, self.settings.profiles_table)

    @cached_property
    def publisher(self) -> SqsChangePublisher:
        return SqsChangePublisher(self.sqs, self.settings.segment_changes_queue_url)

    @cached_property
    def exporter(self) -> OnFirstExport:
        """customers/data_request exports; the S3 client is created by the first one (the topic is rare)."""
        return OnFirstExport(self)

    @cached_property
    def secrets(self) -> ShopSecrets:
        provider = SecretsProvider(boto3_client=boto3.client("secretsmanager", config=self.aws_config))
        return ShopSecrets(
            provider,
            self.settings.shopify_secrets_id,
            self.settings.klaviyo_secrets_id,
            self.settings.secrets_cache_seconds,
        )

    @cached_property
    def writer(self) -> ProfileWriter:
        within = self.settings.answer_within_seconds
        retry = RetryPolicy(budget_seconds=within * WRITE_SHARE_OF_ANSWER) if within else None
        return ProfileWriter(
            self.store, self.publisher, self.definitions, self.clock, retry=retry, handoff=self.transition_scheduler
        )

    @cached_property
    def sweep(self) -> StalenessSweep:
        return StalenessSweep(
            self.store,
            self.publisher,
            self.definitions,
            self.clock,
            shards=self.settings.due_shards,
            sync_grace=timedelta(seconds=self.settings.sync_grace_seconds),
            handoff=self.transition_scheduler,
            list_mover=self.list_mover,
            fanout=self.sweep_fanout,
            fanout_groups=self.settings.full_sweep_invocations,
        )

    @cached_property
    def sweep_fanout(self) -> LambdaSweepFanout | None:
        """Parallel invocations of the sweep for a full re-evaluation (None: not deployed as a Lambda function)."""
        if not self.settings.sweep_fanout_function:
            return None
        return LambdaSweepFanout(self.lambda_client, self.settings.sweep_fanout_function)

    @cached_property
    def list_moves(self) -> DynamoListMoves:
        """The Klaviyo lists last filled, and an unfinished list move's progress."""
        return DynamoListMoves(self.dynamodb, self.settings.profiles_table)

    @cached_property
    def list_mover(self) -> ListMover:
        return ListMover(self.list_moves, self.store, self.publisher, self.definitions, self.clock)

    @cached_property
    def transitions_sender(self) -> SqsDelayedSender:
        return SqsDelayedSender(self.sqs, self.settings.transitions_queue_url)

    @cached_property
    def transition_scheduler(self) -> TransitionScheduler | None:
        """The sweep's hand-off to the exact-instant path; None without a transitions queue or lookahead."""
        if not self.settings.transitions_queue_url or not self.settings.transition_lookahead_seconds:
            return None
        return TransitionScheduler(
            DynamoTransitionSchedule(self.dynamodb, self.settings.profiles_table),
            self.transitions_sender,
            self.clock,
            timedelta(seconds=self.settings.transition_lookahead_seconds),
        )

    @cached_property
    def transitions(self) -> ExactTransitions:
        return ExactTransitions(self.store, self.sweep, self.transitions_sender, self.clock)

    @cached_property
    def shopify_webhooks(self) -> ShopifyWebhooks:
        from evergreen.service.shopify_webhooks import ShopifyWebhooks  # noqa: PLC0415 - this function's only
        from evergreen.storage.backfill_progress import DynamoBackfillProgress  # noqa: PLC0415

        return ShopifyWebhooks(
            secrets_for_shop=self.secrets.shopify_webhook_secrets,
            writer=self.writer,
            store=self.store,
            order_links=self.order_links,
            exporter=self.exporter,
            clock=self.clock,
            max_body_bytes=self.settings.max_body_bytes,
            bulk_operations=DynamoBackfillProgress(self.dynamodb, self.settings.profiles_table),
        )

    @cached_property
    def klaviyo_webhooks(self) -> KlaviyoWebhooks:
        """Klaviyo engagement onto profiles; Klaviyo's GET profile (one try, short timeouts) routes id-only ones."""
        from evergreen.service.klaviyo_webhooks import KlaviyoWebhooks  # noqa: PLC0415 - this function's only
        from evergreen.storage.parked_engagements import DynamoParkedEngagements  # noqa: PLC0415

        return KlaviyoWebhooks(
            accounts=self.secrets.klaviyo_accounts,
            writer=self.writer,
            store=self.store,
            clock=self.clock,
            max_body_bytes=self.settings.max_body_bytes,
            klaviyo_index=self.store,
            klaviyo_api=self.klaviyo_lookup,
            parked=DynamoParkedEngagements(self.dynamodb, self.settings.profiles_table),
        )

    @cached_property
    def engagement_poll(self) -> EngagementPoll:
        """Every Klaviyo account's new engagement events, applied through `klaviyo_webhooks` (one reader client
        per API key, honouring the Events API's rate limits)."""
        from evergreen.klaviyo.client import KlaviyoClient  # noqa: PLC0415 - this function's only
        from evergreen.klaviyo.history import HISTORY_RATE_LIMITS  # noqa: PLC0415
        from evergreen.service.engagement_poll import EngagementPoll  # noqa: PLC0415
        from evergreen.storage.engagement_poll import DynamoPollCheckpoints  # noqa: PLC0415

        readers: dict[str, KlaviyoClient] = {}

        def reader_for(shop: str) -> KlaviyoClient | None:
            account = self.secrets.klaviyo_account(shop)
            if account is None or not account.api_key:
                return None
            if account.api_key not in readers:
                readers[account.api_key] = KlaviyoClient(
                    self.settings.klaviyo_base_url,
                    account.api_key,
                    self.settings.klaviyo_revision,
                    self.klaviyo_http,
                    rate_limits=HISTORY_RATE_LIMITS,
                )
            return readers[account.api_key]

        settings = self.settings
        return EngagementPoll(
            self.secrets.klaviyo_accounts,
            reader_for,
            self.klaviyo_webhooks,
            DynamoPollCheckpoints(self.dynamodb, settings.profiles_table),
            self.clock,
            overlap=timedelta(seconds=settings.engagement_poll_overlap_seconds),
            max_window=timedelta(seconds=settings.engagement_poll_max_window_seconds),
            wildcard_shops=[shop.strip() for shop in settings.engagement_poll_shops.split(",") if shop.strip()],
        )

    @cached_property
    def klaviyo_clients(self) -> dict[str, KlaviyoClient]:
        """One Klaviyo client per API key, created the first time a shop with that key needs one."""
        return {}

    def klaviyo_lookup(self, shop: str) -> KlaviyoClient | None:
        """The shop's Klaviyo client for profile lookups in a webhook, or None when it has no API key.

        One try and short timeouts: a webhook must answer fast; an unresolved engagement is parked, not lost. Its
        lookups take tokens from the account's shared rate budget, as sync's calls do.
        """
        import httpx  # noqa: PLC0415 - only the functions that call Klaviyo load it

        from evergreen.klaviyo.client import KlaviyoClient  # noqa: PLC0415

        def create(api_key: str) -> KlaviyoClient:
            return KlaviyoClient(
                self.settings.klaviyo_base_url,
                api_key,
                self.settings.klaviyo_revision,
                httpx.Client(timeout=httpx.Timeout(3.0, connect=1.0)),
                max_attempts=1,
                shared_budget=self.klaviyo_budget(shop, api_key),
            )

        return self._klaviyo_client(shop, create)

    def _klaviyo_client(self, shop: str, create: Callable[[str], KlaviyoClient]) -> KlaviyoClient | None:
        account = self.secrets.klaviyo_account(shop)
        if account is None or not account.api_key:
            return None
        client = self.klaviyo_clients.get(account.api_key)
        if client is None:
            client = self.klaviyo_clients[account.api_key] = create(account.api_key)
        return client

    @cached_property
    def klaviyo_http(self) -> httpx.Client:
        """The HTTP client SegmentSync's Klaviyo clients share."""
        import httpx  # noqa: PLC0415 - only the functions that call Klaviyo load it

        return httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))

    @cached_property
    def klaviyo_calls(self) -> ConcurrentCalls:
        """The thread pool SegmentSync's per-change Klaviyo calls run on at once."""
        from evergreen.klaviyo.client import ConcurrentCalls  # noqa: PLC0415 - only the functions that call Klaviyo

        return ConcurrentCalls(self.settings.klaviyo_concurrent_calls)

    def pusher_for_shop(self, shop: str) -> KlaviyoPusher | None:
        """The shop's Klaviyo pusher (its client created on first use, then reused), or None without an API key."""
        from evergreen.klaviyo.client import KlaviyoClient  # noqa: PLC0415 - only the functions that call Klaviyo
        from evergreen.klaviyo.pusher import KlaviyoPusher  # noqa: PLC0415

        def create(api_key: str) -> KlaviyoClient:
            return KlaviyoClient(
                self.settings.klaviyo_base_url,
                api_key,
                self.settings.klaviyo_revision,
                self.klaviyo_http,
                shared_budget=self.klaviyo_budget(shop, api_key),
            )

        client = self._klaviyo_client(shop, create)
        if client is None:
            return None
        return KlaviyoPusher(client, self.definitions.klaviyo_list_ids, fanout=self.klaviyo_calls)

    def klaviyo_budget(self, shop: str, api_key: str) -> DynamoRateBudget | None:
        """The shop's Klaviyo account's rate budget, shared with every other container (None when turned off)."""
        if not self.settings.klaviyo_shared_budget:
            return None
        from evergreen.storage.rate_budget import DynamoRateBudget, account_key  # noqa: PLC0415

        account = self.secrets.klaviyo_account(shop)
        key = account_key(account.account_id if account is not None else None, api_key)
        return DynamoRateBudget(self.dynamodb, self.settings.profiles_table, key, lambda: self.clock.now().timestamp())

    def klaviyo_throttled(self) -> int:
        """429s Klaviyo answered so far, over every client of this process."""
        return sum(client.throttled_count for client in self.klaviyo_clients.values())

    @cached_property
    def segment_sync(self) -> SegmentSync:
        from evergreen.service.sync import SegmentSync  # noqa: PLC0415 - this function's only

        self.klaviyo_http  # noqa: B018 - created (and httpx imported) at init, as before, not by the first batch
        return SegmentSync(
            self.store,
            self.pusher_for_shop,
            self.clock,
            delete_profiles_in_klaviyo=self.settings.klaviyo_delete_on_redact,
        )

    @cached_property
    def draining_sync(self) -> DrainingSync:
        """SegmentSync per invocation: drains the backlog when the event source's batch is full, then redelivery."""
        import random  # noqa: PLC0415 - this function's only

        from evergreen.service.sync import RETRY_JITTER  # noqa: PLC0415
        from evergreen.service.sync_drain import DrainingSync, DrainLimits  # noqa: PLC0415

        settings = self.settings
        limits = DrainLimits(
            full_batch=settings.sync_batch_size,
            max_changes=settings.sync_drain_max_changes,
            max_bytes=settings.sync_drain_max_bytes,
            safety_ms=settings.sync_drain_safety_ms,
            handling_ms_per_change=settings.sync_drain_ms_per_change,
        )
        return DrainingSync(
            self.segment_sync, self.redelivery, self.backlog, limits, lambda: random.uniform(0, RETRY_JITTER)
        )

    @cached_property
    def backlog(self) -> SqsBacklog | None:
        """The segment-changes queue as SegmentSync's drain reads it; None without a queue or with the drain off."""
        if not self.settings.segment_changes_queue_url or not self.settings.sync_drain_max_changes:
            return None
        return SqsBacklog(self.sqs, self.settings.segment_changes_queue_url)

    @cached_property
    def redelivery(self) -> SqsRedelivery:
        """Postpones failed segment-change messages and dead-letters poison (SQS created on first use)."""
        return SqsRedelivery(self.sqs, self.settings.segment_changes_queue_url, self.settings.segment_changes_dlq_url)


@dataclass
class OnFirstExport:
    """An `S3DataExporter` whose S3 client is created when the first export is written."""

    edges: Edges

    @cached_property
    def _exporter(self) -> S3DataExporter:
        return S3DataExporter(self.edges.s3, self.edges.settings.exports_bucket)

    def export(self, key: str, document: dict[str, Any]) -> str:
        return self._exporter.export(key, document)
