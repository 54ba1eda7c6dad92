"""Where a sender waits for the answer, AWS calls fail fast and lost races give up in time to answer 503."""

from __future__ import annotations

from evergreen.settings import Settings
from evergreen.wiring import Edges


def test_a_function_a_sender_waits_for_uses_short_aws_timeouts_and_a_bounded_write() -> None:
    waited = Edges(Settings.from_env({"ANSWER_WITHIN_SECONDS": "4"})).aws_config
    patient = Edges(Settings.from_env({})).aws_config

    assert waited.read_timeout + waited.connect_timeout <= 1.5 and waited.retries["max_attempts"] <= 2
    assert patient.read_timeout > waited.read_timeout
