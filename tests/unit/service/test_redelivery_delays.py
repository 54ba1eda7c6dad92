"""When a message Klaviyo could not take comes back: the back-off the sync handler gives it."""

from __future__ import annotations

from evergreen.service.sync import (
    RETRY_AFTER_CAP_S,
    RETRY_CAP_S,
    RETRY_JITTER,
    SyncReport,
    plan_redelivery,
    redelivery_delay_s,
)


def test_the_back_off_doubles_from_15_seconds_to_a_minute() -> None:
    assert [redelivery_delay_s(n) for n in range(1, 7)] == [15, 30, 60, 60, 60, 60]


def test_jitter_only_shortens_the_wait_so_recovery_stays_within_a_minute() -> None:
    assert redelivery_delay_s(10, jitter=RETRY_JITTER) == 54
    assert redelivery_delay_s(10, jitter=1.0) == 54  # clamped to RETRY_JITTER
    assert redelivery_delay_s(10, jitter=0.0) == RETRY_CAP_S


def test_klaviyos_retry_after_is_never_cut_short_up_to_the_cap() -> None:
    assert redelivery_delay_s(1, retry_after_s=60) == 60
    assert redelivery_delay_s(5, retry_after_s=1) == 60
    assert redelivery_delay_s(1, retry_after_s=3_600) == RETRY_AFTER_CAP_S


def test_a_very_old_message_does_not_overflow() -> None:
    assert redelivery_delay_s(10_000) == RETRY_CAP_S


def test_poison_is_planned_for_the_dlq_and_the_rest_for_a_delay() -> None:
    report = SyncReport(failed={0, 2}, poison={2}, retry_after_s={0: 90.0}, errors={2: "create_event: 400"})

    plan = plan_redelivery(report, [3, 1, 1], lambda: 0.0)

    assert plan.delays_s == {0: 90}
    assert plan.poison == {2: "create_event: 400"}
