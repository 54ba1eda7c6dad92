"""Builds the edges (AWS clients, stores, publishers) from settings. Handlers call it once, at module scope.

Every client is created on first use, so a function creates only the clients its module scope and hot path touch:
the webhook functions DynamoDB, SQS and Secrets Manager; the sweep DynamoDB and SQS; sync DynamoDB and Secrets
Manager. S3 (customers/data_request exports) is created by the first export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from evergreen.clock import Clock, SystemClock
from evergreen.segments import Definitions, default_definitions, load_definitions
from evergreen.service.profile_writer import ProfileWriter
from evergreen.service.sweep import StalenessSweep
from evergreen.service.transitions import ExactTransitions, TransitionScheduler
from evergreen.settings import Settings
from evergreen.storage.exports import S3DataExporter
from evergreen.storage.orders import DynamoOrderLinks
from evergreen.storage.profiles import DynamoProfileStore
from evergreen.storage.queue import SqsChangePublisher, SqsDelayedSender
from evergreen.storage.schedule import DynamoTransitionSchedule
from evergreen.storage.secrets import ShopSecrets

AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5)


def definitions_for(settings: Settings) -> Definitions:
    return load_definitions(Path(settings.segments_file)) if settings.segments_file else default_definitions()


@dataclass
class Edges:
    """One process's AWS clients and the adapters over them, each created on first use."""

    settings: Settings
    clock: Clock = SystemClock()  # noqa: RUF009 - stateless

    @cached_property
    def definitions(self) -> Definitions:
        return definitions_for(self.settings)

    @cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", config=AWS_CONFIG)

    @cached_property
    def sqs(self) -> Any:
        return boto3.client("sqs", config=AWS_CONFIG)

    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3", config=AWS_CONFIG)

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
        provider = SecretsProvider(boto3_client=boto3.client("secretsmanager", config=AWS_CONFIG))
        return ShopSecrets(
            provider,
            self.settings.shopify_secrets_id,
            self.settings.klaviyo_secrets_id,
            self.settings.secrets_cache_seconds,
        )

    @cached_property
    def writer(self) -> ProfileWriter:
        return ProfileWriter(
            self.store, self.publisher, self.definitions, self.clock, handoff=self.transition_scheduler
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
        )

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


@dataclass
class OnFirstExport:
    """An `S3DataExporter` whose S3 client is created when the first export is written."""

    edges: Edges

    @cached_property
    def _exporter(self) -> S3DataExporter:
        return S3DataExporter(self.edges.s3, self.edges.settings.exports_bucket)

    def export(self, key: str, document: dict[str, Any]) -> str:
        return self._exporter.export(key, document)
