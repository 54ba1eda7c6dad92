"""Shopify webhooks delivered through Amazon EventBridge: the partner bus's rule queues them, this applies them.

Each SQS message is one EventBridge event in Shopify's envelope; it goes through the same ingest as an HTTPS
webhook, without the signature (AWS authenticated the partner event source). A message that is not a Shopify
event, or that the ingest refuses (malformed, oversized), is logged and dropped: retrying cannot fix it. A
storage failure raises, so SQS retries the message, then moves it to the DLQ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.observability import make_tracer, record_api_version, record_transitions
from evergreen.service.shopify_webhooks import UnreadableEnvelope, read_eventbridge
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

edges = Edges.from_env()
webhooks = edges.shopify_webhooks


def apply_record(record: SQSRecord) -> None:
    """One EventBridge event; raises only when storage fails (SQS then retries it)."""
    try:
        webhook = read_eventbridge(json.loads(record.body))
    except (ValueError, RecursionError, UnreadableEnvelope) as error:
        reason = str(error) if isinstance(error, UnreadableEnvelope) else "the message is not a JSON event"
        logger.warning("Dropped an event that is not a Shopify webhook", extra={"reason": reason})
        metrics.add_metric(name="EventBridgeEventsRefused", unit=MetricUnit.Count, value=1)
        return
    answer = webhooks.receive_enveloped(webhook)
    if answer.status != 200:
        logger.warning(
            "Dropped a Shopify event the ingest refused",
            extra={"status": answer.status, "topic": answer.topic, "reason": answer.body.get("reason")},
        )
        metrics.add_metric(name="EventBridgeEventsRefused", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="EventBridgeEventsApplied", unit=MetricUnit.Count, value=1)
    if answer.notes.get("destructive"):
        metrics.add_metric(name="DestructiveOperations", unit=MetricUnit.Count, value=1)
    if answer.outcome == "erased":
        metrics.add_metric(name="ErasedDeliveriesIgnored", unit=MetricUnit.Count, value=1)
    if record_api_version(metrics, webhook.headers.api_version):
        logger.warning("Shopify event delivered at an API version other than the pin")
    record_transitions(metrics, answer.entered, answer.exited)
    logger.info("Shopify event applied", extra={"topic": answer.topic, "outcome": answer.outcome})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=apply_record, processor=processor, context=context)
