"""bulk_operations/finish wakes a waiting backfill: the signed notice is noted beside the shop's backfill
progress (never on a profile), a forged one is refused, and the backfill polls Shopify at once instead of
sleeping out its poll interval. Shopify's answer, not the notice, still decides."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evergreen.backfill_wiring import build_backfill
from evergreen.shopify.admin import ShopifyAdmin
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen_cli.sandboxes.shopify_admin import ShopifySandbox, start_shopify_sandbox
from evergreen_cli.sandboxes.synthetic_shop import synthetic_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shopify"))
from shopify_samples_2025_10 import BULK_OPERATION_ID, bulk_operation_finish, customer_create

SHOP = "evergreen-test.myshopify.com"
"""The shop tests/unit/service/conftest.py signs for."""
TOPIC = "bulk_operations/finish"
POLL_EVERY_S = 30.0


def log(world: Any) -> DynamoBackfillProgress:
    return DynamoBackfillProgress(world.edges.dynamodb, world.edges.settings.profiles_table)


def test_a_signed_notice_is_accepted_and_writes_no_profile(world: Any) -> None:
    answer = world.shopify(TOPIC, bulk_operation_finish())

    assert (answer.status, answer.outcome) == (200, "noted")
    assert [item["pk"]["S"] for item in world.items()] == [f"backfill#{SHOP}"]
    assert log(world).operation_finished(SHOP, BULK_OPERATION_ID)
    assert world.queued() == []


def test_a_forged_notice_is_refused_and_notes_nothing(world: Any) -> None:
    answer = world.shopify(TOPIC, bulk_operation_finish(), secret="not-the-shops-secret")

    assert answer.status == 401
    assert world.items() == []
    assert not log(world).operation_finished(SHOP, BULK_OPERATION_ID)


def test_a_redelivered_notice_changes_nothing(world: Any) -> None:
    world.shopify(TOPIC, bulk_operation_finish(), event_id="same")
    first = world.items()
    assert world.shopify(TOPIC, bulk_operation_finish(), event_id="same").status == 200
    assert world.items() == first


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        (TOPIC, customer_create()),
        (TOPIC, {**bulk_operation_finish(), "email": "ada@example.com"}),
        (TOPIC, {**bulk_operation_finish(), "admin_graphql_api_id": "gid://shopify/Customer/5"}),
        (TOPIC, {key: value for key, value in bulk_operation_finish().items() if key != "admin_graphql_api_id"}),
        ("customers/update", bulk_operation_finish()),
    ],
    ids=[
        "customer-as-notice",
        "notice-naming-a-person",
        "notice-naming-a-customer",
        "notice-without-id",
        "notice-as-customer",
    ],
)
def test_a_body_of_another_shape_is_malformed_and_writes_nothing(world: Any, topic: str, body: dict[str, Any]) -> None:
    assert world.shopify(topic, body).status == 400
    assert world.items() == []


# --- the waiting backfill ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ShopifySandbox]:
    server = start_shopify_sandbox(port=0)
    yield server
    server.stop()


class Sleeps:
    """The admin client's sleep: records what it was asked to sleep, and can deliver the notice meanwhile
    (the webhook arriving while the backfill waits)."""

    def __init__(self, world: Any | None = None) -> None:
        self.world = world
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.world is not None:
            progress = log(self.world).load(SHOP)
            assert progress is not None and progress.operation_id is not None
            notice = {**bulk_operation_finish(), "admin_graphql_api_id": progress.operation_id}
            assert self.world.shopify(TOPIC, notice).status == 200


def backfill_sleeps(world: Any, sandbox: ShopifySandbox, sleeps: Sleeps) -> float:
    sandbox.load(synthetic_store(20, seed=3, shop=SHOP))
    with ShopifyAdmin(SHOP, "shpat_test", base_url=sandbox.url, sleep=sleeps) as admin:
        report = build_backfill(world.edges, admin, None, poll_every_s=POLL_EVERY_S).run(SHOP)
    assert report.finished
    return sum(sleeps.slept)


def test_without_a_notice_the_backfill_sleeps_out_its_poll_interval(world: Any, sandbox: ShopifySandbox) -> None:
    assert backfill_sleeps(world, sandbox, Sleeps()) == 3 * POLL_EVERY_S  # customers, orders, abandoned checkouts


def test_a_notice_wakes_the_waiting_backfill_within_a_second(world: Any, sandbox: ShopifySandbox) -> None:
    assert backfill_sleeps(world, sandbox, Sleeps(world)) == 3 * 1.0


def test_a_stray_notice_brings_one_poll_forward_and_nothing_more() -> None:
    """A notice for an operation Shopify still reports running (replayed, or early) costs one poll."""
    polls: list[str] = []

    def shopify(request: httpx.Request) -> httpx.Response:
        status = "RUNNING" if len(polls) < 3 else "COMPLETED"
        polls.append(status)
        return httpx.Response(200, json={"data": {"node": {"id": BULK_OPERATION_ID, "status": status}}})

    sleeps = Sleeps()
    http = httpx.Client(transport=httpx.MockTransport(shopify))
    with ShopifyAdmin(SHOP, "shpat_test", base_url="https://shopify.invalid", http=http, sleep=sleeps) as admin:
        done = admin.wait(BULK_OPERATION_ID, poll_every_s=POLL_EVERY_S, max_poll_s=POLL_EVERY_S, finished=lambda: True)

    assert done.status == "COMPLETED"
    assert polls == ["RUNNING", "RUNNING", "RUNNING", "COMPLETED"]
    assert sleeps.slept == [POLL_EVERY_S, POLL_EVERY_S]  # the first wait skipped, the rest as usual
