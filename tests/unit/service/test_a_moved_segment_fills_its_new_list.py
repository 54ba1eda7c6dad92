"""Moving a segment to another Klaviyo list: the new list gets its current members, the old one loses them.

Through the real adapters on in-process moto and the Klaviyo sandbox: the sweep finds the members and enqueues
list-move messages, SegmentSync applies them. Nobody is re-evaluated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from evergreen.clock import FixedClock
from evergreen.domain.changes import ListMove, QueueMessage, SegmentChange, external_id, parse_queue_message
from evergreen.domain.events import OrderObserved
from evergreen.domain.list_moves import SegmentMove, member_lists, plan_moves
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.sweep import SweepRequest
from evergreen.service.sync import SegmentSync, SyncReport
from evergreen.storage import keys
from evergreen.wiring import Edges
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox

SHOP = "evergreen-test.myshopify.com"
RULES = """\
version: 1
segments:
  big:
    description: Spent 100.00 or more.
{big_list}    when:
      net_spent: {{gte: "100.00"}}
  buyer:
    description: Ordered at least once.
    klaviyo_list_id: BUYERS
    when:
      orders_count: {{gte: 1}}
"""
BIG_SPENDERS = {1: "150.00", 2: "250.00"}
SMALL_SPENDER = {3: "20.00"}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox("127.0.0.1", 0, None)
    yield server
    server.stop()


class Stack:
    """The table, the queue and Klaviyo (the sandbox), with the segments file deployed by `deploy`."""

    def __init__(self, edges: Edges, clock: FixedClock, sandbox: SandboxServer, folder: Path) -> None:
        self.base = edges
        self.clock = clock
        self.sandbox = sandbox
        self.folder = folder
        self.edges = edges
        self._client = KlaviyoClient(sandbox.url, "pk_test", http=httpx.Client(), sleep=lambda _: None, max_attempts=2)

    def deploy(self, big_list: str | None) -> Edges:
        """Deploy the segments file with `big` mapped to `big_list` (None: no list)."""
        path = self.folder / f"segments-{big_list}.yaml"
        path.write_text(RULES.format(big_list=f"    klaviyo_list_id: {big_list}\n" if big_list else ""))
        self.edges = Edges(self.base.settings.model_copy(update={"segments_file": str(path)}), self.clock)
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

    def sync(self, bulk_threshold: int = 50) -> SegmentSync:
        """SegmentSync as deployed: the pusher maps segments to the deployed lists."""
        lists = self.edges.definitions.klaviyo_list_ids
        return SegmentSync(
            self.edges.store, lambda shop: KlaviyoPusher(self._client, lists, bulk_threshold), self.clock
        )

    def queued(self) -> list[QueueMessage]:
        client, url = self.edges.sqs, self.edges.settings.segment_changes_queue_url
        found: list[QueueMessage] = []
        while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(parse_queue_message(message["Body"]))
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def drain(self, bulk_threshold: int = 50) -> SyncReport:
        """Everything on the queue through SegmentSync, as one batch."""
        report = self.sync(bulk_threshold).handle(self.queued())
        assert report.failed == set(), report.errors
        return report

    def members(self, list_id: str) -> set[str]:
        """The external ids in a Klaviyo list."""
        state = self.sandbox.state
        return {state.profiles[profile_id]["external_id"] for profile_id in state.lists.get(list_id, [])}

    def requests_since(self, count: int) -> list[dict[str, Any]]:
        return self.sandbox.requests()[count:]

    def profile_items(self) -> dict[tuple[str, str], tuple[str, Any]]:
        items = self.edges.dynamodb.scan(TableName=self.edges.settings.profiles_table)["Items"]
        return {keys.ref_of(item): (item["version"]["N"], item["profile"]) for item in items if "profile" in item}


def ids(*numbers: int) -> set[str]:
    return {external_id(SHOP, f"customer#{number}") for number in numbers}


@pytest.fixture
def stack(edges: Edges, clock: FixedClock, sandbox: SandboxServer, tmp_path: Path) -> Stack:
    return Stack(edges, clock, sandbox, tmp_path)


def live_with(stack: Stack, big_list: str | None, *, bulk_threshold: int = 50) -> None:
    """Deployed with `big_list`: customers ordered, Klaviyo has them, a sweep recorded the lists."""
    stack.deploy(big_list)
    for number, total in {**BIG_SPENDERS, **SMALL_SPENDER}.items():
        stack.customer(number, total)
    stack.drain(bulk_threshold)
    assert stack.edges.sweep.run(SweepRequest()).list_move is None
    stack.clock.advance(timedelta(minutes=5))


def test_changing_only_a_segments_list_id_fills_the_new_list_with_its_members_and_empties_the_old_one(stack):
    live_with(stack, "OLDBIG", bulk_threshold=1)  # synced in bulk jobs: Evergreen does not know their Klaviyo ids
    assert stack.members("OLDBIG") == ids(1, 2)

    stack.deploy("NEWBIG")
    report = stack.edges.sweep.run(SweepRequest())

    assert report.mode == "due"
    assert report.list_move is not None and report.list_move.complete
    assert report.as_dict()["list_move"]["segments"] == {"big": {"from": ["OLDBIG"], "to": "NEWBIG", "members": 2}}
    synced = stack.drain()
    assert synced.list_members_moved == 2
    assert stack.members("NEWBIG") == ids(1, 2)
    assert stack.members("OLDBIG") == set()
    assert stack.members("BUYERS") == ids(1, 2, 3)
    assert stack.edges.list_moves.filled_list_ids() == {"big": "NEWBIG", "buyer": "BUYERS"}
    assert stack.edges.sweep.run(SweepRequest()).list_move is None


def test_a_list_move_reevaluates_no_profile_and_changes_no_version(stack):
    live_with(stack, "OLDBIG")
    before = stack.profile_items()

    stack.deploy("NEWBIG")
    report = stack.edges.sweep.run(SweepRequest())
    stack.drain()

    assert report.evaluated == 0 and report.written == 0
    assert stack.profile_items() == before


def test_a_list_move_message_names_members_by_key_and_klaviyo_id_only(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")
    stack.edges.sweep.run(SweepRequest())

    moves = stack.queued()  # one message per scan segment that holds members

    assert all(isinstance(move, ListMove) for move in moves)
    members = [member for move in moves if isinstance(move, ListMove) for member in move.members]
    assert {member.profile_key for member in members} == {"customer#1", "customer#2"}
    assert all(member.klaviyo_profile_id for member in members)  # learned by the trickle sync
    assert all("@" not in move.model_dump_json() for move in moves)


class Budget:
    """time_left() for a run that has time for `visits` profiles (the lanes run on threads)."""

    def __init__(self, visits: int) -> None:
        self.left = visits
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            self.left -= 1
            return self.left >= 0


def test_an_interrupted_list_move_resumes_where_it_stopped_and_completes(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")
    mover = stack.edges.list_mover

    first = mover.run(dry_run=False, time_left=Budget(1))

    assert first is not None and not first.complete and sum(first.members.values()) == 1
    assert stack.edges.list_moves.filled_list_ids() == {"big": "OLDBIG", "buyer": "BUYERS"}
    second = mover.run(dry_run=False)
    assert second is not None and second.complete and sum(second.members.values()) == 1
    moved = [m.profile_key for message in stack.queued() if isinstance(message, ListMove) for m in message.members]
    assert sorted(moved) == ["customer#1", "customer#2"]  # each member once: resumed, not restarted
    assert stack.edges.list_moves.filled_list_ids() == {"big": "NEWBIG", "buyer": "BUYERS"}
    assert stack.edges.list_moves.progress() is None


def test_a_list_move_that_stopped_is_finished_by_the_scheduled_sweeps_and_the_lists_end_right(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")
    stack.edges.list_mover.run(dry_run=False, time_left=Budget(1))

    report = stack.edges.sweep.run(SweepRequest())
    stack.drain()

    assert report.list_move is not None and report.list_move.complete
    assert stack.members("NEWBIG") == ids(1, 2) and stack.members("OLDBIG") == set()


def test_a_dry_run_plans_the_move_and_changes_nothing(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")

    report = stack.edges.sweep.run(SweepRequest(dry_run=True))

    assert report.list_move is not None
    assert report.list_move.as_dict() == {
        "dry_run": True,
        "segments": {"big": {"from": ["OLDBIG"], "to": "NEWBIG", "members": 2}},
        "members": 2,
        "enqueued": 0,
        "complete": True,
    }
    assert stack.queued() == []
    assert stack.edges.list_moves.filled_list_ids() == {"big": "OLDBIG", "buyer": "BUYERS"}
    assert stack.edges.list_moves.progress() is None


def test_a_first_deploy_records_the_lists_and_moves_nothing(stack):
    stack.deploy("NEWBIG")
    for number, total in BIG_SPENDERS.items():
        stack.customer(number, total)

    report = stack.edges.sweep.run(SweepRequest())

    assert report.list_move is None
    assert not any(isinstance(message, ListMove) for message in stack.queued())
    assert stack.edges.list_moves.filled_list_ids() == {"big": "NEWBIG", "buyer": "BUYERS"}


def test_a_segment_whose_list_id_is_removed_only_empties_its_old_list(stack):
    live_with(stack, "OLDBIG")
    seen = len(stack.sandbox.requests())

    stack.deploy(None)
    stack.edges.sweep.run(SweepRequest())
    stack.drain()

    assert stack.members("OLDBIG") == set() and stack.members("BUYERS") == ids(1, 2, 3)
    assert [r["method"] for r in stack.requests_since(seen)] == ["DELETE"]
    assert stack.edges.list_moves.filled_list_ids() == {"buyer": "BUYERS"}


def test_a_new_list_id_on_a_segment_that_had_none_only_fills_it(stack):
    live_with(stack, None)
    seen = len(stack.sandbox.requests())

    stack.deploy("NEWBIG")
    stack.edges.sweep.run(SweepRequest())
    stack.drain()

    assert stack.members("NEWBIG") == ids(1, 2)
    sent = [(r["method"], r["path"].rsplit("/", 1)[0]) for r in stack.requests_since(seen)]
    assert sent == [
        ("POST", "/api"),
        ("GET", "/api/profile-bulk-import-jobs"),
    ], "one fill job, read back until Klaviyo completed it"


def test_until_the_move_runs_per_change_sync_already_uses_the_new_list(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")

    stack.customer(4, "400.00")
    stack.drain()

    assert ids(4) <= stack.members("NEWBIG") and not ids(4) & stack.members("OLDBIG")


def test_a_throttled_list_move_waits_for_klaviyos_retry_after_then_completes(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("NEWBIG")
    stack.edges.sweep.run(SweepRequest())
    messages = stack.queued()
    stack.sandbox.fail_next(429, retry_after=120)

    throttled = stack.sync().handle(messages)

    every = set(range(len(messages)))  # one move message per scan segment holding members
    assert throttled.failed == every and throttled.poison == set()
    assert throttled.retry_after_s == dict.fromkeys(every, 120.0)
    retried = stack.sync().handle(messages)
    assert retried.failed == set()
    assert stack.members("NEWBIG") == ids(1, 2) and stack.members("OLDBIG") == set()


def test_a_change_redeployed_before_the_move_finished_leaves_nothing_in_the_list_it_began_to_fill(stack):
    live_with(stack, "OLDBIG")
    stack.deploy("TYPO")
    stack.edges.list_mover.run(dry_run=False, time_left=Budget(1))
    stack.drain()  # one member reached TYPO before the move stopped

    stack.deploy("NEWBIG")
    stack.edges.sweep.run(SweepRequest())
    stack.drain()

    assert stack.members("NEWBIG") == ids(1, 2)
    assert stack.members("OLDBIG") == set() and stack.members("TYPO") == set()


# --- the rules, pure ---------------------------------------------------------------------------------------


def move(segment: str = "big", from_lists: tuple[str, ...] = ("OLD",), to_list: str | None = "NEW") -> ListMove:
    return ListMove.model_validate(
        {
            "shop": SHOP,
            "segment": segment,
            "from_lists": list(from_lists),
            "to_list": to_list,
            "members": [],
            "requested_at": "2026-11-01T12:00:00Z",
        }
    )


def test_only_segments_whose_list_differs_from_the_one_last_filled_move():
    filled = {"big": "OLD", "buyer": "BUYERS", "gone": "GONE"}
    deployed = {"big": "NEW", "buyer": "BUYERS", "vip": "VIPS"}

    moves = plan_moves(filled, deployed, ["big", "buyer", "vip", "lapsed"])

    assert moves == {"big": SegmentMove(("OLD",), "NEW"), "vip": SegmentMove((), "VIPS")}


def test_a_move_superseded_before_it_finished_also_empties_the_lists_it_began_with():
    unfinished = {"big": SegmentMove(("OLD",), "TYPO")}

    assert plan_moves({"big": "OLD"}, {"big": "NEW"}, ["big"], unfinished) == {
        "big": SegmentMove(("OLD", "TYPO"), "NEW")
    }
    assert plan_moves({"big": "OLD"}, {"big": "OLD"}, ["big"], unfinished) == {"big": SegmentMove(("TYPO",), "OLD")}


def test_a_member_who_left_the_segment_since_the_sweep_read_it_joins_nothing_but_still_leaves_the_old_list():
    assert member_lists(move(), {"buyer"}, {"big": "NEW", "buyer": "BUYERS"}) == (None, ("OLD",))


def test_a_member_stays_in_an_old_list_that_another_of_its_segments_is_deployed_to():
    shared = {"big": "NEW", "buyer": "OLD"}

    assert member_lists(move(), {"big", "buyer"}, shared) == ("NEW", ())
    assert member_lists(move(), {"big"}, shared) == ("NEW", ("OLD",))


def test_a_list_move_is_a_queue_message_of_its_own_kind():
    message = move()

    assert parse_queue_message(message.model_dump_json()) == message
    assert not isinstance(parse_queue_message(message.model_dump_json()), SegmentChange)
    assert json.loads(message.model_dump_json())["kind"] == "list-move"
