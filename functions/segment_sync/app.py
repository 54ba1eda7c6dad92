"""SQS segment-changes -> Klaviyo: newest snapshot per profile, batched, partial failures reported."""

from __future__ import annotations

from typing import Any

import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.observability import make_tracer
from evergreen.service.sync import SegmentSync
from evergreen.settings import Settings
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

edges = Edges(Settings.from_env())
http = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))
clients: dict[str, KlaviyoClient] = {}


def pusher_for_shop(shop: str) -> KlaviyoPusher | None:
    account = edges.secrets.klaviyo_account(shop)
    if account is None or not account.api_key:
        return None
    client = clients.get(account.api_key)
    if client is None:
        client = clients[account.api_key] = KlaviyoClient(
            edges.settings.klaviyo_base_url, account.api_key, edges.settings.klaviyo_revision, http
        )
    return KlaviyoPusher(client, edges.definitions.klaviyo_list_ids)


sync = SegmentSync(edges.store, pusher_for_shop, edges.clock)


@tracer.capture_method
def sync_batch(records: list[SQSRecord]) -> set[str]:
    """Push the batch; returns the message ids to retry."""
    changes: list[SegmentChange] = []
    message_ids: list[str] = []
    retry: set[str] = set()
    for record in records:
        try:
            changes.append(SegmentChange.model_validate_json(record.body))
            message_ids.append(record.message_id)
        except ValidationError:
            logger.error("Unreadable segment change; left for the DLQ", extra={"message_id": record.message_id})
            retry.add(record.message_id)
    throttled_before = sum(client.throttled_count for client in clients.values())
    report = sync.sync(changes)
    throttled = sum(client.throttled_count for client in clients.values()) - throttled_before
    retry |= {message_ids[index] for index in report.failed}
    metrics.add_metric(name="ChangesSynced", unit=MetricUnit.Count, value=report.pushed)
    metrics.add_metric(name="ChangesSkippedStale", unit=MetricUnit.Count, value=report.stale + report.gone)
    metrics.add_metric(name="SyncFailures", unit=MetricUnit.Count, value=len(report.failed))
    metrics.add_metric(name="Klaviyo429s", unit=MetricUnit.Count, value=throttled)
    if report.lag_seconds:
        metrics.add_metric(name="SyncLagSeconds", unit=MetricUnit.Seconds, value=max(report.lag_seconds))
    logger.info(
        "Batch synced",
        extra={
            "received": report.received,
            "pushed": report.pushed,
            "stale": report.stale,
            "gone": report.gone,
            "failed": len(retry),
        },
    )
    return retry


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    retry = sync_batch([SQSRecord(record) for record in event.get("Records", [])])

    def report_record(record: SQSRecord) -> None:
        if record.message_id in retry:
            raise RuntimeError("segment change not yet synced")

    return process_partial_response(event=event, record_handler=report_record, processor=processor, context=context)
