"""Emails and phone numbers never appear in clear in what the functions log."""

from __future__ import annotations

import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.awsrequest import AWSResponse

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"


def signed(topic: str, body: bytes) -> dict:
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SECRET),
        "x-shopify-event-id": f"pii-{topic}",
    }
    return build_http_api_v2_event("POST", "/webhooks/shopify", headers, body)


def test_webhooks_redaction_and_malformed_payloads_log_no_email_or_phone(handlers, context, capfd):
    logger = handlers["shopify_webhook"].logger
    written = io.StringIO()
    capture = logging.StreamHandler(written)
    capture.setFormatter(logger.registered_formatter)  # the JSON lines CloudWatch would receive
    logger.addHandler(capture)
    order = (ROOT / "events" / "shopify" / "orders_create.json").read_bytes()
    redact = json.dumps(
        {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": 115310627314723954, "email": "jon.snow@example.com", "phone": "+16135550123"},
            "orders_to_redact": [],
        }
    ).encode()
    broken = json.dumps({"email": "jon.snow@example.com", "phone": "+16135550123", "id": "not-a-number"}).encode()

    logger.setLevel("DEBUG")
    for topic, body in (("orders/create", order), ("customers/redact", redact), ("orders/create", broken)):
        handlers["shopify_webhook"].lambda_handler(signed(topic, body), context)

    logger.setLevel("WARNING")
    logger.removeHandler(capture)
    logged = capfd.readouterr()
    text = (written.getvalue() + logged.out + logged.err).lower()
    assert "jon.snow@example.com" not in text
    assert "6135550123" not in text
    assert "webhook handled" in text, "the handler did log"


GUEST_EMAILS = [f"guest.contention{n}@example.test" for n in range(6)]


class ConflictingTable:
    """Fault injection on the AWS client (not our code): every conditional profile write is refused, as
    DynamoDB does when another writer got there first; and, optionally, some calls fail with a message that
    quotes a key, as some AWS errors do."""

    def __init__(self, client, quote_key_in_error: bool) -> None:
        self.client = client
        self.quote = quote_key_in_error

    def __enter__(self):
        for operation in ("UpdateItem", "TransactWriteItems"):
            self.client.meta.events.register(f"before-call.dynamodb.{operation}", self.refuse)
        return self

    def __exit__(self, *exc):
        for operation in ("UpdateItem", "TransactWriteItems"):
            self.client.meta.events.unregister(f"before-call.dynamodb.{operation}", self.refuse)

    def refuse(self, params, **kwargs):
        text = str(params)
        if self.quote and "contention3" in text:
            error = {"Code": "ValidationException", "Message": f"The provided key element is invalid: {text[:300]}"}
        else:
            error = {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}
        return AWSResponse("https://dynamodb", 400, {}, None), {"Error": error, "ResponseMetadata": {}}


def guest_order(number: int, email: str) -> bytes:
    order = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_bytes())
    order.update({"id": 880000 + number, "admin_graphql_api_id": f"gid://shopify/Order/{880000 + number}"})
    order.update({"email": email, "contact_email": email, "customer": None, "phone": "+16135550199"})
    return json.dumps(order).encode()


def test_503_and_exception_paths_under_concurrency_log_no_email_or_phone(handlers, context, capfd):
    function = handlers["shopify_webhook"]
    logger = function.logger
    written = io.StringIO()
    capture = logging.StreamHandler(written)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    logger.setLevel("DEBUG")

    def deliver(number: int) -> int:
        body = guest_order(number, GUEST_EMAILS[number % len(GUEST_EMAILS)])
        event = signed("orders/create", body)
        event["headers"]["x-shopify-event-id"] = f"contention-{number}"
        return function.lambda_handler(event, context)["statusCode"]

    try:
        with ConflictingTable(function.edges.dynamodb, quote_key_in_error=True), ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(deliver, range(12)))
    finally:
        logger.setLevel("WARNING")
        logger.removeHandler(capture)

    logged = capfd.readouterr()
    text = (written.getvalue() + logged.out + logged.err).lower()
    assert statuses == [503] * 12, "conflicts exhausted and storage errors answer 503"
    assert "conflictsexhausted" in text, "the exhausted-conflicts path was logged"
    assert "validationexception" in text or "clienterror" in text, "the storage-error path was logged"
    for email in GUEST_EMAILS:
        assert email not in text
        assert f"guest#{email}" not in text
    assert "6135550199" not in text
