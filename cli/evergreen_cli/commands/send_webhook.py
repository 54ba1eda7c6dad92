"""`evergreen send-webhook`: sign a payload file and POST it as Shopify (or Klaviyo) would."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.settings import SHOPIFY_API_VERSION, Settings
from evergreen.shopify import SUPPORTED_TOPICS, canonical_topic
from evergreen.shopify.hmac import sign_shopify_body
from evergreen.wiring import Edges
from evergreen_cli.arguments import shop_domain
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET, DEFAULT_LOCAL_SHOPIFY_SECRET
from evergreen_cli.main import EXIT_USAGE, CliError, did_you_mean, program
from evergreen_cli.targets import DEFAULT_LOCAL_API_URL, local_api_url, local_environment

DEFAULT_BASE_URL = DEFAULT_LOCAL_API_URL
DEFAULT_SHOP = "evergreen-demo.myshopify.com"


def shopify_headers(body: bytes, topic: str, shop: str, secret: str, event_id: str | None = None) -> dict[str, str]:
    """The headers Shopify sends with a webhook, signed with `secret`."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Hmac-Sha256": sign_shopify_body(body, secret),
        "X-Shopify-API-Version": SHOPIFY_API_VERSION,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }


def klaviyo_headers(body: bytes, secret: str, now: datetime | None = None) -> dict[str, str]:
    """The headers Klaviyo sends with a system webhook: `Klaviyo-Timestamp` as an HTTP date
    (`Thu, 04 Jan 2024 18:05:25 GMT`) and `Klaviyo-Signature` over the body followed by that value."""
    return {"Content-Type": "application/json", **sign_klaviyo_body(body, secret, now or datetime.now(UTC))}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, help="the JSON payload to send (for example events/shopify/orders_create.json)"
    )
    parser.add_argument("--topic", default="orders/create", help="Shopify topic (default: orders/create)")
    parser.add_argument("--shop", type=shop_domain, default=DEFAULT_SHOP, help=f"shop domain (default: {DEFAULT_SHOP})")
    parser.add_argument(
        "--url", help=f"webhook URL (default: the local stack's, {DEFAULT_BASE_URL}/webhooks/shopify or /klaviyo)"
    )
    parser.add_argument("--secret", help="signing secret (default: the local stack's, from EVERGREEN_LOCAL_*_SECRET)")
    parser.add_argument("--event-id", help="X-Shopify-Event-Id to send (repeat one to test de-duplication)")
    parser.add_argument("--klaviyo", action="store_true", help="send as a Klaviyo system webhook instead")
    parser.add_argument("--bad-signature", action="store_true", help="sign with a wrong secret (expect 401)")
    parser.add_argument(
        "--any-topic", action="store_true", help="send a topic Evergreen does not handle (expect 200, ignored)"
    )


def check_topic(topic: str) -> None:
    """A topic Evergreen does not handle would be answered `200 ignored`, which looks like success: refuse it."""
    if canonical_topic(topic) not in SUPPORTED_TOPICS:
        raise CliError(
            f"Evergreen handles no Shopify topic {topic!r}{did_you_mean(topic, sorted(SUPPORTED_TOPICS))} "
            "(--any-topic sends it anyway)",
            EXIT_USAGE,
        )


def main(args: argparse.Namespace) -> int:
    body = args.file.read_bytes()
    if args.klaviyo:
        secret = args.secret or os.environ.get("EVERGREEN_LOCAL_KLAVIYO_SECRET", DEFAULT_LOCAL_KLAVIYO_SECRET)
        url = args.url or f"{local_api_url()}/webhooks/klaviyo?shop={args.shop}"
        headers = klaviyo_headers(body, "wrong-secret" if args.bad_signature else secret)
    else:
        if not args.any_topic:
            check_topic(args.topic)
        secret = args.secret or os.environ.get("EVERGREEN_LOCAL_SHOPIFY_SECRET", DEFAULT_LOCAL_SHOPIFY_SECRET)
        url = args.url or f"{local_api_url()}/webhooks/shopify"
        signing = "wrong-secret" if args.bad_signature else secret
        headers = shopify_headers(body, args.topic, args.shop, signing, args.event_id)
    response = httpx.post(url, content=body, headers=headers, timeout=10)
    print(f"{response.status_code} {response.text}")
    if response.status_code == HTTPStatus.UNAUTHORIZED and not args.bad_signature:
        print(f"{program()} send-webhook: {signature_hint(args, secret)}", file=sys.stderr)
    return 0 if response.is_success else 1


def _stack_secrets(shop: str, klaviyo: bool) -> tuple[str, ...] | None:
    """The signing secrets the running local stack checks `shop`'s webhooks with; None when it cannot be asked."""
    try:
        os.environ.update(local_environment())  # boto3 reaches the stack's moto server as the other commands do
        secrets = Edges(Settings.from_env()).secrets
        if klaviyo:
            account = secrets.klaviyo_account(shop)
            return account.webhook_secrets if account is not None else ()
        return secrets.shopify_webhook_secrets(shop)
    except Exception:
        return None


def signature_hint(args: argparse.Namespace, secret: str) -> str:
    """What to check after a 401: the secret this terminal signed with against the one the stack holds."""
    variable = "EVERGREEN_LOCAL_KLAVIYO_SECRET" if args.klaviyo else "EVERGREEN_LOCAL_SHOPIFY_SECRET"
    if args.url is not None and urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return "the receiver checks signatures with its own secret: pass that secret with --secret"
    held = _stack_secrets(args.shop, args.klaviyo)
    if held is not None and secret not in held:
        origin = "--secret" if args.secret else f"this terminal's {variable} (or its default, when unset)"
        return (
            f"the signature was made with {origin}, and the running stack holds another: it takes {variable} "
            f"from the terminal that ran `make run`; set the same value here, or pass it with --secret"
        )
    return f"the stack refused the signature: check that {variable} (or --secret) matches the one `make run` was given"
