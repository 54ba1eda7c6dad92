"""`evergreen seed-shop`: fill the local Shopify Admin sandbox with a synthetic store."""

from __future__ import annotations

import argparse
import os
import sys

import httpx

from evergreen_local.activity import working
from evergreen_local.synthetic_shop import DEFAULT_SHOP, synthetic_store
from evergreen_local.targets import TargetUnavailable, local_environment

DEFAULT_SANDBOX_URL = "http://127.0.0.1:3200"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100, help="how many customers (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same store (default 1)")
    parser.add_argument("--shop", default=DEFAULT_SHOP, help=f"the shop's domain (default {DEFAULT_SHOP})")
    parser.add_argument("--url", help="the Shopify sandbox (default: the running local stack's)")


def sandbox_url(explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    try:
        return local_environment().get("SHOPIFY_ADMIN_BASE_URL") or DEFAULT_SANDBOX_URL
    except TargetUnavailable:
        return os.environ.get("SHOPIFY_ADMIN_BASE_URL") or DEFAULT_SANDBOX_URL


def main(args: argparse.Namespace) -> int:
    if args.customers < 0:
        print("evergreen seed-shop: --customers must be 0 or more", file=sys.stderr)
        return 2
    url = sandbox_url(args.url)
    try:
        with working(f"loading a store of {args.customers} customers into the Shopify sandbox"):
            store = synthetic_store(args.customers, seed=args.seed, shop=args.shop)
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
        f"{len(store['orders'])} orders ({guests} guest checkouts)"
    )
    print(f"next: ./evergreen backfill --shop {args.shop}")
    return 0
