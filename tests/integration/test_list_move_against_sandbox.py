"""A segment moved to another Klaviyo list, on the template's table and queue (moto server) and the Klaviyo sandbox,
which checks every request against Klaviyo's OpenAPI spec: the sweep enqueues the members, SegmentSync (as the
composition root builds it, with the stack's Klaviyo account) fills the new list and empties the old one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evergreen.clock import FixedClock
from evergreen.domain.changes import ListMove, QueueMessage, external_id, parse_queue_message
from evergreen.domain.events import OrderObserved
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.service.sweep import SweepRequest
from evergreen.settings import Settings
from evergreen.wiring import Edges

SHOP = "list-move.myshopify.com"
BIG_SPENDERS = 105  # more than one list-move message (100 members each)
RULES = """\
version: 1
segments:
  big:
    description: Spent 100.00 or more.
    klaviyo_list_id: {big_list}
    when:
      net_spent: {{gte: "100.00"}}
"""


class Deployment:
    def __init__(self, environment: dict[str, str], folder: Path) -> None:
        self.environment = environment
        self.folder = folder
        self.clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
        self.edges = self.deploy("OLDBIG")

    def deploy(self, big_list: str) -> Edges:
        path = self.folder / f"segments-{big_list}.yaml"
        path.write_text(RULES.format(big_list=big_list))
        self.edges = Edges(Settings.from_env({**self.environment, "SEGMENTS_FILE": str(path)}), self.clock)
        return self.edges

    def customer(self, number: int, total: str) -> None:
        event = OrderObserved(
            order_id=f"o{number}", customer_id=str(number), created_at=self.clock.now() - timedelta(days=2),
            total=Decimal(total),
        )  # fmt: skip
        self.edges.writer.write_order(
            Profile(shop=SHOP, customer_id=str(number), email=f"c{number}@example.com"),
            event.order_id,
            lambda profile, state: apply_order(profile, state, event),
        )

    def drain(self) -> list[QueueMessage]:
        """Every queued message through SegmentSync, ten at a time as SQS hands them out; returns them."""
        sqs, url = self.edges.sqs, self.edges.settings.segment_changes_queue_url
        handled: list[QueueMessage] = []
        while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            messages = [parse_queue_message(message["Body"]) for message in received]
            report = self.edges.segment_sync.handle(messages)
            assert report.failed == set(), report.errors
            for message in received:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += messages
        return handled


@pytest.fixture
def deployment(local_resources, klaviyo_sandbox, monkeypatch, tmp_path) -> Deployment:
    klaviyo_sandbox.clear()
    environment = local_resources.with_klaviyo_base_url(klaviyo_sandbox.url).function_environment("SegmentSyncFunction")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Deployment(environment, tmp_path)


def members(sandbox: Any, list_id: str) -> set[str]:
    state = sandbox.state
    return {state.profiles[profile_id]["external_id"] for profile_id in state.lists.get(list_id, [])}


def test_changing_only_big_s_list_id_moves_its_members_with_requests_klaviyo_accepts(deployment, klaviyo_sandbox):
    for number in range(1, BIG_SPENDERS + 1):
        deployment.customer(number, "150.00")
    deployment.customer(BIG_SPENDERS + 1, "20.00")
    deployment.drain()  # 106 changes in bulk jobs: Evergreen learns no Klaviyo ids
    assert deployment.edges.sweep.run(SweepRequest()).list_move is None  # the first sweep records the lists
    big = {external_id(SHOP, f"customer#{number}") for number in range(1, BIG_SPENDERS + 1)}
    assert members(klaviyo_sandbox, "OLDBIG") == big

    deployment.clock.advance(timedelta(minutes=5))
    moved = deployment.deploy("NEWBIG")
    report = moved.sweep.run(SweepRequest())
    handled = deployment.drain()

    assert report.list_move is not None and report.list_move.complete
    assert report.list_move.as_dict()["members"] == BIG_SPENDERS
    sizes = [len(message.members) for message in handled if isinstance(message, ListMove)]
    assert sum(sizes) == BIG_SPENDERS and len(sizes) >= 2 and max(sizes) <= 100
    assert members(klaviyo_sandbox, "NEWBIG") == big and members(klaviyo_sandbox, "OLDBIG") == set()
    assert moved.list_moves.filled_list_ids() == {"big": "NEWBIG"}
    requests = klaviyo_sandbox.requests()
    assert all(r["spec_checked"] for r in requests)
    assert [(r["method"], r["path"], r["spec_errors"]) for r in requests if not r["spec_valid"]] == []
