"""A trickle's per-change Klaviyo calls are in flight at once: a batch costs about one call's latency per step
(imports, then events, then lists) instead of one per change, with the same calls and the same outcome."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from evergreen.klaviyo.client import ConcurrentCalls, KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from tests.unit.klaviyo.klaviyo_fakes import API_KEY, BASE_URL, FakeKlaviyo, FakeTime, make_change

CHANGES = 5
LISTS = {"vip": "LIST_VIP", "lapsed": "LIST_LAPSED"}


class AllAtOnce:
    """Klaviyo that answers a step's calls only once all of them have arrived (a barrier per operation)."""

    def __init__(self, klaviyo: FakeKlaviyo, expected: dict[str, int]) -> None:
        self._klaviyo = klaviyo
        self._barriers = {path: threading.Barrier(parties, timeout=10) for path, parties in expected.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        barrier = self._barriers.get(request.url.path)
        if barrier is not None:
            barrier.wait()  # BrokenBarrierError when the calls come one after another
        return self._klaviyo(request)


@pytest.fixture
def calls() -> Iterator[ConcurrentCalls]:
    yield ConcurrentCalls(workers=16)


def _client(transport: httpx.MockTransport) -> KlaviyoClient:
    fake_time = FakeTime()
    return KlaviyoClient(
        BASE_URL, API_KEY, http=httpx.Client(transport=transport), sleep=fake_time.sleep, clock=fake_time.clock
    )


def test_profile_imports_and_events_of_a_trickle_are_sent_at_once(calls: ConcurrentCalls) -> None:
    klaviyo = FakeKlaviyo()
    gate = AllAtOnce(klaviyo, {"/api/profile-import": CHANGES, "/api/events": 2 * CHANGES})
    pusher = KlaviyoPusher(_client(httpx.MockTransport(gate)), LISTS, fanout=calls)

    result = pusher.push([make_change(number) for number in range(CHANGES)])

    assert result.failed == set()
    assert (result.profiles_upserted, result.events_sent) == (CHANGES, 2 * CHANGES)
    assert (result.list_additions, result.list_removals) == (CHANGES, CHANGES)


def test_at_once_or_one_at_a_time_the_calls_and_the_outcome_are_the_same(calls: ConcurrentCalls) -> None:
    changes = [make_change(number) for number in range(CHANGES)]
    outcomes = []
    for fanout in (calls, None):
        klaviyo = FakeKlaviyo()
        klaviyo.fail(429, lambda sent: sent.path == "/api/events", retry_after="60")
        client = _client(httpx.MockTransport(klaviyo))
        pusher = KlaviyoPusher(client, LISTS, fanout=fanout) if fanout else KlaviyoPusher(client, LISTS)
        result = pusher.push(changes)
        sent = sorted((item.method, item.path) for item in klaviyo.sent)
        outcomes.append((result.failed, result.profiles_upserted, result.retry_after_s, sent))

    assert outcomes[0][:3] == outcomes[1][:3]
    assert outcomes[0][0] == set(range(CHANGES)), "a throttled event fails its change, at once or not"
    assert {path for _, path in outcomes[0][3]} == {path for _, path in outcomes[1][3]}
