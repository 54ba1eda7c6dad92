"""The Klaviyo sandbox's latency model: answers held for a log-normal delay with the median and 99th percentile
asked for (`POST /_sandbox/latency`), so benchmarks meet a Klaviyo as slow as the real one."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator

import httpx
import pytest

from evergreen_cli.sandboxes.klaviyo_api import Latency, SandboxServer, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(port=0, validate=False)
    yield server
    server.stop()


def test_delays_have_the_median_and_the_99th_percentile_asked_for() -> None:
    model = Latency.from_request({"p50_ms": 200, "p99_ms": 1000})
    rng = random.Random(7)

    draws = sorted(model.draw_ms(rng) for _ in range(40_000))

    assert statistics.median(draws) == pytest.approx(200, rel=0.03)
    assert draws[int(len(draws) * 0.99)] == pytest.approx(1000, rel=0.08)
    assert min(draws) > 0


def test_no_model_means_no_delay() -> None:
    assert Latency().draw_ms(random.Random(1)) == 0
    assert Latency.from_request({"p50_ms": 0}).draw_ms(random.Random(1)) == 0


def test_the_control_endpoint_sets_the_model_refuses_nonsense_and_clearing_turns_it_off(sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        assert http.post("/_sandbox/latency", json={"p50_ms": 1, "p99_ms": 2, "seed": 3}).json() == {
            "p50_ms": 1,
            "p99_ms": 2,
        }
        assert sandbox.state.latency == Latency(1, 2)
        for nonsense in ({"p50_ms": 5, "p99_ms": 1}, {"p50_ms": -1}, {"p50_ms": "slow"}):
            assert http.post("/_sandbox/latency", json=nonsense).status_code == 400
        assert sandbox.state.latency == Latency(1, 2)
        http.delete("/_sandbox/requests")
        assert sandbox.state.latency == Latency()
