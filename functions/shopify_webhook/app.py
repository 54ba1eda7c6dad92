"""POST /webhooks/shopify: verify, apply to the customer's profile, re-evaluate segments."""

from __future__ import annotations

import traceback
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.http_events import BadRequestBody, json_response, raw_body
from evergreen.observability import make_tracer, record_api_version, record_transitions, record_unavailable
from evergreen.service.shopify_webhooks import ShopifyDelivery, UnreadableHeaders, read_headers
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges.from_env()
webhooks = edges.shopify_webhooks


def delivery_of(event: APIGatewayProxyEventV2) -> ShopifyDelivery:
    """The delivery as sent. Raises BadRequestBody or UnreadableHeaders (both answer 400)."""
    headers = read_headers(event.headers)
    return ShopifyDelivery(
        shop=headers.shop,
        topic=headers.topic,
        hmac=headers.hmac,
        body=raw_body(event),
        event_id=headers.event_id,
        webhook_id=headers.webhook_id,
        api_version=headers.api_version,
        triggered_at=headers.triggered_at,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEventV2)
def lambda_handler(event: APIGatewayProxyEventV2, context: LambdaContext) -> dict[str, Any]:
    try:
        delivery = delivery_of(event)
    except (BadRequestBody, UnreadableHeaders) as error:
        logger.warning("Refused a request that cannot be read", extra={"reason": str(error)})
        return json_response(400, {"error": "bad request", "reason": str(error)})
    logger.append_keys(
        shop=delivery.shop, topic=delivery.topic, webhook_id=delivery.webhook_id, api_version=delivery.api_version
    )
    try:
        answer = webhooks.receive(delivery)
    except Exception as error:
        # DynamoDB down or throttled, conflicts exhausted: a 5xx makes Shopify retry. The exception's message
        # is not logged (a library's message can quote input), only its type and where it was raised.
        logger.error(
            "Webhook failed; Shopify will retry",
            extra={"error_type": type(error).__name__, "stack": "".join(traceback.format_tb(error.__traceback__))},
        )
        record_unavailable(metrics)
        return json_response(503, {"error": "try again later"})
    metrics.add_dimension("topic", answer.topic)
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    if answer.notes.get("destructive"):
        metrics.add_metric(name="DestructiveOperations", unit=MetricUnit.Count, value=1)
    if answer.outcome == "erased":
        metrics.add_metric(name="ErasedDeliveriesIgnored", unit=MetricUnit.Count, value=1)
    if answer.status == 401:
        metrics.add_metric(name="SignatureFailures", unit=MetricUnit.Count, value=1)
        logger.warning("Rejected webhook with a bad or missing signature")
    if answer.status != 401 and record_api_version(metrics, delivery.api_version):
        logger.warning("Webhook delivered at an API version other than the pin")
    record_transitions(metrics, answer.entered, answer.exited)
    logger.info("Webhook handled", extra={"status": answer.status, "outcome": answer.outcome})
    return json_response(answer.status, answer.body)
