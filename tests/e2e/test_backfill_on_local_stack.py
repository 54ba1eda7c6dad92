"""`make run`, `seed-shop`, `backfill`: the local stack serves the Shopify Admin sandbox beside the Klaviyo one,
and a backfill from it reaches the Klaviyo sandbox through bulk jobs only, with every segment's members."""

from __future__ import annotations

import os

import httpx
import pytest

from evergreen.backfill_wiring import build_backfill, klaviyo_sender
from evergreen.settings import Settings
from evergreen.shopify.admin import ShopifyAdmin
from evergreen.wiring import Edges
from evergreen_cli.sandboxes.synthetic_shop import synthetic_store

pytestmark = pytest.mark.e2e

SHOP = "e2e-backfill.myshopify.com"


def test_the_banner_prints_the_shopify_sandbox(local_stack):
    assert f"Shopify Admin sandbox {local_stack.shopify_sandbox.url}" in local_stack.banner()


def test_a_seeded_store_backfills_into_the_local_stack_through_bulk_jobs_only(local_stack):
    sandbox = local_stack.shopify_sandbox
    assert httpx.post(f"{sandbox.url}/_sandbox/shop", json=synthetic_store(6, seed=3, shop=SHOP)).status_code == 200
    edges = Edges(Settings.from_env(dict(os.environ)))
    before = len(httpx.get(f"{local_stack.klaviyo_url}/_sandbox/requests").json())

    with ShopifyAdmin(SHOP, "shpat_e2e", base_url=sandbox.url) as admin:
        report = build_backfill(edges, admin, klaviyo_sender(edges, SHOP), poll_every_s=0.05, workers=4).run(SHOP)

    assert report.finished and report.counts.applied > 0
    assert local_stack.drain() == 0, "nothing went through the per-change queue"
    sent = httpx.get(f"{local_stack.klaviyo_url}/_sandbox/requests").json()[before:]
    assert {request["path"].split("/")[2] for request in sent} == {"profile-bulk-import-jobs"}, "jobs, read back"
    assert all(request["spec_valid"] in (True, None) for request in sent)
