"""`evergreen seed-shop`: fill the local Shopify Admin sandbox with a synthetic store, and the local Klaviyo
sandbox with those customers' email engagement history (opens, clicks, bounces, unsubscribes)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from evergreen_cli.activity import working
from evergreen_cli.arguments import shop_domain
from evergreen_cli.sandboxes.synthetic_shop import DEFAULT_SHOP, synthetic_engagement, synthetic_store
from evergreen_cli.targets import TargetUnavailable, local_environment

DEFAULT_SANDBOX_URL = "http://127.0.0.1:3200"
DEFAULT_KLAVIYO_SANDBOX_URL = "http://127.0.0.1:3100"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100, help="how many customers (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same store (default 1)")
    parser.add_argument(
        "--shop", type=shop_domain, default=DEFAULT_SHOP, help=f"the shop's domain (default {DEFAULT_SHOP})"
    )
    parser.add_argument("--url", help="the Shopify sandbox (default: the running local stack's)")
    parser.add_argument(
        "--klaviyo-url", help="the Klaviyo sandbox for the engagement history (default: the running local stack's)"
    )


def _local_setting(name: str, default: str) -> str:
    """The running stack's setting: without a running stack there is nothing to seed (whatever else listens on
    the default port is not its sandbox), so that is said and nothing is written."""
    try:
        environment = local_environment()
    except TargetUnavailable:
        raise TargetUnavailable(
            "the local stack is not running: start it with `make run` in another terminal, then seed it "
            "(or pass --url and --klaviyo-url for sandboxes started on their own)"
        ) from None
    return environment.get(name) or default


def sandbox_url(explicit: str | None) -> str:
    return (explicit or _local_setting("SHOPIFY_ADMIN_BASE_URL", DEFAULT_SANDBOX_URL)).rstrip("/")


def klaviyo_sandbox_url(explicit: str | None) -> str | None:
    """The local Klaviyo sandbox, or None when the stack talks to the real Klaviyo (which keeps its own history)."""
    url = (explicit or _local_setting("KLAVIYO_BASE_URL", DEFAULT_KLAVIYO_SANDBOX_URL)).rstrip("/")
    return url if urlsplit(url).hostname in LOCAL_HOSTS else None


def main(args: argparse.Namespace) -> int:
    if args.customers < 0:
        print("evergreen seed-shop: --customers must be 0 or more", file=sys.stderr)
        return 2
    url = sandbox_url(args.url)
    klaviyo = klaviyo_sandbox_url(args.klaviyo_url)
    now = datetime.now(UTC)
    try:
        with working(f"loading a store of {args.customers} customers into the Shopify sandbox"):
            store = synthetic_store(args.customers, seed=args.seed, now=now, shop=args.shop)
            answer = httpx.post(f"{url}/_sandbox/shop", json=store, timeout=120.0)
    except httpx.TransportError:
        print(
            f"evergreen seed-shop: no Shopify sandbox at {url}; start the local stack with `make run`", file=sys.stderr
        )
        return 2
    if answer.status_code != 200:
        print(f"evergreen seed-shop: the sandbox refused the store ({answer.status_code})", file=sys.stderr)
        return 1
    guests = sum(1 for order in store["orders"] if order["customer"] is None)
    print(
        f"loaded {args.shop} into {url}: {len(store['customers'])} customers, "
        f"{len(store['orders'])} orders ({guests} guest checkouts), "
        f"{len(store['abandonedCheckouts'])} abandoned checkouts"
    )
    if klaviyo is None:
        print("the stack uses the real Klaviyo: its own engagement history is what the backfill reads")
    else:
        engagement = synthetic_engagement(store, seed=args.seed, now=now)
        try:
            loaded = httpx.post(f"{klaviyo}/_sandbox/engagement", json=engagement, timeout=120.0)
        except httpx.TransportError:
            loaded = None
        if loaded is None or loaded.status_code != 200:
            print(f"evergreen seed-shop: no Klaviyo sandbox took the engagement history at {klaviyo}", file=sys.stderr)
            return 1
        print(f"loaded {len(engagement)} email engagement events into the Klaviyo sandbox at {klaviyo}")
    print(f"next: ./evergreen backfill --shop {args.shop}")
    return 0
