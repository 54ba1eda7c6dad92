"""`evergreen doctor`'s verdicts on a deployed stack's outputs and secrets (the local stack: tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from evergreen_cli.commands.doctor import (
    REQUIRED_OUTPUTS,
    Failed,
    Result,
    Target,
    check_alarms,
    check_definitions,
    check_outputs,
    is_placeholder,
    schedule_interval,
    sweep_interval,
)


def deployed(outputs: dict[str, str]) -> Target:
    return Target(True, "evergreen", "eu-west-1", "https://x/webhooks/shopify", Path("segments.yaml"), {}, outputs)


def test_a_stack_with_every_output_passes():
    assert check_outputs(deployed(dict.fromkeys(REQUIRED_OUTPUTS, "x"))) == f"{len(REQUIRED_OUTPUTS)} outputs present"


def test_a_stack_missing_outputs_names_them_and_says_deploy():
    outputs = dict.fromkeys(REQUIRED_OUTPUTS, "x")
    del outputs["SegmentChangesDLQUrl"]

    with pytest.raises(Failed) as failure:
        check_outputs(deployed(outputs))

    assert "SegmentChangesDLQUrl" in str(failure.value) and "make deploy" in failure.value.fix


@pytest.mark.parametrize("value", [{}, "", "shpss_...", "pk_...", "<the app's client secret>", {"api_key": "..."}])
def test_the_templates_and_the_readmes_placeholders_are_not_secrets(value):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["shpss_4f1e0c", {"api_key": "pk_live_1", "webhook_secret": "w"}])
def test_real_looking_values_are_secrets(value):
    assert not is_placeholder(value)


def test_a_failed_check_prints_its_fix_under_it_and_an_unchecked_one_a_question_mark():
    assert Result("dead-letter queue", False, "3 waiting", "run redrive").line() == (
        "✗ dead-letter queue: 3 waiting\n    fix: run redrive"
    )
    assert Result("Shopify token", None, "not checked").line() == "? Shopify token: not checked"
    assert Result("stack", True, "ok", "never shown").line() == "✓ stack: ok"


def alarm(cloudwatch, name: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_a_firing_alarm_of_the_stack_fails_by_name_and_other_stacks_alarms_are_ignored(aws_credentials):
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for name in ("evergreen-SegmentChangesDLQAlarm-AB12", "evergreen-SegmentSyncErrorsAlarm-CD34", "other-X-1"):
            alarm(cloudwatch, name)
        for name in ("evergreen-SegmentChangesDLQAlarm-AB12", "other-X-1"):
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
        target = Target(True, "evergreen", "us-east-1", "https://x", Path("segments.yaml"), {}, {})

        with pytest.raises(Failed) as failure:
            check_alarms(target)

    assert str(failure.value) == "in alarm: SegmentChangesDLQAlarm"


def test_quiet_alarms_pass_with_their_count(aws_credentials):
    with mock_aws():
        alarm(boto3.client("cloudwatch", region_name="us-east-1"), "evergreen-SegmentSyncErrorsAlarm-CD34")
        target = Target(True, "evergreen", "us-east-1", "https://x", Path("segments.yaml"), {}, {})

        assert check_alarms(target) == "1 alarm(s), none firing"


def test_a_segments_file_that_is_not_there_fails_with_the_flag_that_names_another():
    target = Target(False, "evergreen", None, "http://127.0.0.1:3000/webhooks/shopify", Path("nowhere/segments.yaml"))

    with pytest.raises(Failed) as failure:
        check_definitions(target)

    assert "nowhere/segments.yaml" in str(failure.value) and "--segments" in failure.value.fix


def test_the_klaviyo_route_checked_is_beside_the_shopify_one_else_the_stacks_output():
    beside = Target(True, "s", None, "https://api.example.com/prod/webhooks/shopify", Path("s.yaml"))
    elsewhere = Target(
        True, "s", None, "https://proxy.example.com/shopify", Path("s.yaml"), {}, {"KlaviyoWebhookUrl": "https://k/x"}
    )

    assert beside.klaviyo_url == "https://api.example.com/prod/webhooks/klaviyo"
    assert elsewhere.klaviyo_url == "https://k/x"


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        ("cron(0/15 * * * ? *)", timedelta(minutes=15)),
        ("cron(*/10 * * * ? *)", timedelta(minutes=10)),
        ("cron(5 * * * ? *)", timedelta(hours=1)),
        ("cron(0 8 * * ? *)", None),
    ],
)
def test_the_sweep_interval_is_read_from_the_schedule_expression(expression, interval):
    assert schedule_interval(expression) == interval


def test_a_deployed_stack_sweeps_as_its_sweep_schedule_parameter_says_else_as_the_template_default():
    every_ten = Target(True, "evergreen", None, "", Path("s.yaml"), parameters={"SweepSchedule": "rate(10 minutes)"})
    daily = Target(True, "evergreen", None, "", Path("s.yaml"), parameters={"SweepSchedule": "cron(0 8 * * ? *)"})

    assert sweep_interval(every_ten) == (timedelta(minutes=10), "rate(10 minutes)")
    assert sweep_interval(deployed({})) == (timedelta(minutes=5), "rate(5 minutes)")
    assert sweep_interval(daily) == (timedelta(days=1), "cron(0 8 * * ? *), taken as once a day")
