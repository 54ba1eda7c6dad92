"""Klaviyo engagement history fills last open, click, bounce and unsubscribe on backfilled profiles, page by
page within the window, newest instant kept; a second run changes and sends nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from evergreen.klaviyo import history as kh
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.segments import evaluate
from evergreen.service.backfill_sync import BulkMembershipSync
from evergreen.service.engagement_history import EngagementHistory
from evergreen_cli.sandboxes.synthetic_shop import iso, synthetic_store
from tests.integration.backfill_harness import NOW, SHOP, Harness, make_harness


@pytest.fixture
def harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch) -> Harness:
    klaviyo_sandbox.clear()
    return make_harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch)


def history(harness: Harness) -> EngagementHistory:
    client = KlaviyoClient(
        harness.klaviyo_sandbox.url,
        "pk_sandbox",
        http=httpx.Client(),
        sleep=lambda _: None,
        rate_limits=kh.HISTORY_RATE_LIMITS,
    )
    edges = harness.edges
    sync = BulkMembershipSync(client, edges.definitions.klaviyo_list_ids, edges.store)
    return EngagementHistory(client, edges.store, edges.definitions, edges.clock, membership=sync, page_size=2)


def load_history(harness: Harness, entries: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{harness.klaviyo_sandbox.url}/_sandbox/engagement", json=entries)
    assert answer.status_code == 200


def test_history_fills_engagement_within_the_window_and_a_second_run_changes_nothing(harness):
    store = synthetic_store(3, seed=61, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.backfill().run(SHOP)
    ada, bob, cy = (customer["email"] for customer in store["customers"])
    day = timedelta(days=1)
    load_history(
        harness,
        [
            {"metric": "Opened Email", "datetime": iso(NOW - 40 * day), "email": ada},
            {"metric": "Opened Email", "datetime": iso(NOW - 10 * day), "email": ada},
            {"metric": "Opened Email", "datetime": iso(NOW - 400 * day), "email": bob},
            {"metric": "Opened Email", "datetime": iso(NOW - 12 * day), "email": cy},
            {"metric": "Clicked Email", "datetime": iso(NOW - 20 * day), "email": ada},
            {"metric": "Unsubscribed from Email Marketing", "datetime": iso(NOW - 1 * day), "email": bob},
            {"metric": "Bounced Email", "datetime": iso(NOW - 3 * day), "email": cy},
            {"metric": "Placed Order", "datetime": iso(NOW - 3 * day), "email": cy},
        ],
    )

    report = history(harness).run(SHOP)

    store_ = harness.edges.store
    profiles = {email: store_.load(SHOP, store_.customer_key_for_email(SHOP, email) or "") for email in (ada, bob, cy)}
    assert profiles[ada].engagement.last_email_open_at == NOW - 10 * day
    assert profiles[ada].engagement.last_email_click_at == NOW - 20 * day
    assert profiles[bob].engagement.last_email_open_at is None, "older than the window"
    assert profiles[bob].email_consent.state == "unsubscribed"
    assert profiles[cy].engagement.email_bounced
    for profile in profiles.values():
        assert set(profile.membership) == set(evaluate(profile.facts(), harness.edges.definitions, NOW).segments)
    assert report.pages > report.metrics, "pages were followed"
    reads = [r for r in harness.klaviyo_sandbox.requests() if r["method"] == "GET"]
    assert reads and all(r["spec_valid"] in (True, None) for r in reads)
    sent_before = len(harness.klaviyo_sandbox.requests())

    again = history(harness).run(SHOP)

    assert again.applied == 0
    writes = [r for r in harness.klaviyo_sandbox.requests()[sent_before:] if r["method"] != "GET"]
    assert writes == []


def test_history_stopped_between_pages_resumes_where_it_stopped(harness):
    store = synthetic_store(2, seed=62, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.backfill().run(SHOP)
    ada = store["customers"][0]["email"]
    opens = [{"metric": "Opened Email", "datetime": iso(NOW - timedelta(days=d)), "email": ada} for d in (3, 5, 9)]
    load_history(harness, [*opens, {"metric": "Clicked Email", "datetime": iso(NOW - timedelta(days=4)), "email": ada}])
    pages: list[int] = []

    def after_one_page() -> bool:
        pages.append(1)
        return len(pages) > 1

    first = history(harness).run(SHOP, should_stop=after_one_page)
    assert first.resume_at is not None
    rest = history(harness).run(SHOP, start=first.resume_at)

    assert rest.resume_at is None
    profile = harness.edges.store.load(SHOP, harness.edges.store.customer_key_for_email(SHOP, ada) or "")
    assert profile.engagement.last_email_open_at == NOW - timedelta(days=3)
    assert profile.engagement.last_email_click_at == NOW - timedelta(days=4)
