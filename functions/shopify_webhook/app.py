"""POST /webhooks/shopify: verify, apply to the customer's profile, re-evaluate segments."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.http_events import json_response, raw_body
from evergreen.observability import make_tracer, record_transitions
from evergreen.service.shopify_webhooks import ShopifyDelivery, ShopifyWebhooks
from evergreen.settings import Settings
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges(Settings.from_env())
webhooks = ShopifyWebhooks(
    secrets_for_shop=edges.secrets.shopify_webhook_secrets,
    writer=edges.writer,
    store=edges.store,
    order_links=edges.order_links,
    exporter=edges.exporter,
    clock=edges.clock,
    max_body_bytes=edges.settings.max_body_bytes,
)


def delivery_of(event: APIGatewayProxyEventV2) -> ShopifyDelivery:
    header = event.headers.get
    return ShopifyDelivery(
        shop=header("x-shopify-shop-domain"),
        topic=header("x-shopify-topic"),
        hmac=header("x-shopify-hmac-sha256"),
        body=raw_body(event),
        event_id=header("x-shopify-event-id"),
        webhook_id=header("x-shopify-webhook-id"),
        api_version=header("x-shopify-api-version"),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEventV2)
def lambda_handler(event: APIGatewayProxyEventV2, context: LambdaContext) -> dict[str, Any]:
    delivery = delivery_of(event)
    logger.append_keys(shop=delivery.shop, topic=delivery.topic, webhook_id=delivery.webhook_id)
    try:
        answer = webhooks.receive(delivery)
    except Exception:
        # DynamoDB down or throttled, conflicts exhausted: a 5xx makes Shopify retry.
        logger.exception("Webhook failed; Shopify will retry")
        return json_response(503, {"error": "try again later"})
    metrics.add_dimension("topic", answer.topic)
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    if answer.status == 401:
        metrics.add_metric(name="SignatureFailures", unit=MetricUnit.Count, value=1)
        logger.warning("Rejected webhook with a bad or missing signature")
    record_transitions(metrics, answer.entered, answer.exited)
    logger.info("Webhook handled", extra={"status": answer.status, "outcome": answer.outcome})
    return json_response(answer.status, answer.body)
