"""What template.yaml guarantees about exact-instant transitions."""

from __future__ import annotations

import json
import re
from typing import Any

from evergreen_cli.local_stack.template import functions, parameter_defaults, sqs_sources


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def test_the_sweep_hands_transitions_to_a_delayed_queue_up_to_an_hourly_sweeps_interval_ahead(
    template: dict[str, Any],
) -> None:
    lookahead = template["Parameters"]["TransitionLookaheadSeconds"]
    assert lookahead["MaxValue"] == 3900, "rate(1 hour) plus a minute; past 900 s the consumer sends it on"
    assert int(lookahead["Default"]) >= 300, "at least the default sweep interval, rate(5 minutes)"
    sweep = functions(template)["StalenessSweepFunction"]
    assert sweep.environment["TRANSITIONS_QUEUE_URL"] == {"Ref": "TransitionsQueue"}
    assert sweep.environment["TRANSITION_LOOKAHEAD_SECONDS"] == {"Ref": "TransitionLookaheadSeconds"}
    policies = _props(template, "StalenessSweepFunction")["Policies"]
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["TransitionsQueue", "QueueName"]}}} in policies


def test_the_transition_consumer_reads_delayed_messages_one_at_a_time_without_waiting_to_batch(
    template: dict[str, Any],
) -> None:
    (source,) = [source for source in sqs_sources(template) if source.function == "TransitionFunction"]
    assert source.queue == "TransitionsQueue"
    assert source.batching_window_seconds == 0
    assert source.report_batch_item_failures
    queue = _props(template, "TransitionsQueue")
    assert int(queue["VisibilityTimeout"]) >= 6 * functions(template)["TransitionFunction"].timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TransitionsDLQ", "Arn"]}
    assert queue["SqsManagedSseEnabled"] is True and _props(template, "TransitionsDLQ")["SqsManagedSseEnabled"] is True


def test_the_transition_consumer_may_only_read_and_update_profiles_and_send_to_its_queues(
    template: dict[str, Any],
) -> None:
    policies = _props(template, "TransitionFunction")["Policies"]
    statements = [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]
    assert [statement["Action"] for statement in statements] == [["dynamodb:GetItem", "dynamodb:UpdateItem"]]
    assert statements[0]["Resource"] == {"Fn::GetAtt": ["ProfilesTable", "Arn"]}
    sends = [policy["SQSSendMessagePolicy"]["QueueName"] for policy in policies if "SQSSendMessagePolicy" in policy]
    assert sends == [
        {"Fn::GetAtt": ["SegmentChangesQueue", "QueueName"]},
        {"Fn::GetAtt": ["TransitionsQueue", "QueueName"]},
    ]
    assert not any("DynamoDBCrudPolicy" in policy for policy in policies)


def test_transition_lateness_p99_alarms_above_a_threshold_the_operator_sets(template: dict[str, Any]) -> None:
    alarm = _props(template, "TransitionLatenessAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == (
        "Evergreen",
        "TransitionLatenessMs",
        "p99",
    )
    assert alarm["Threshold"] == {"Ref": "TransitionLatenessP99ThresholdMs"}
    assert parameter_defaults(template)["TransitionLatenessP99ThresholdMs"] == "5000"


def test_the_dashboard_shows_transition_lateness_p50_and_p99(template: dict[str, Any]) -> None:
    body = _props(template, "EvergreenDashboard")["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "0", body)
    widgets = json.loads(rendered)["widgets"]
    lateness = [
        metric[-1]["stat"]
        for widget in widgets
        for metric in widget["properties"].get("metrics", [])
        if "TransitionLatenessMs" in metric
    ]
    assert lateness == ["p50", "p99"]


def test_the_webhook_functions_may_hand_a_transition_they_set_to_the_delayed_queue(template: dict[str, Any]) -> None:
    for logical_id in ("ShopifyWebhookFunction", "KlaviyoWebhookFunction"):
        function = functions(template)[logical_id]
        assert function.environment["TRANSITIONS_QUEUE_URL"] == {"Ref": "TransitionsQueue"}
        assert function.environment["TRANSITION_LOOKAHEAD_SECONDS"] == {"Ref": "TransitionLookaheadSeconds"}
        policies = _props(template, logical_id)["Policies"]
        assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["TransitionsQueue", "QueueName"]}}} in policies


def test_event_to_klaviyo_p99_alarms_above_a_threshold_the_operator_sets(template: dict[str, Any]) -> None:
    alarm = _props(template, "EventToKlaviyoAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == (
        "Evergreen",
        "EventToKlaviyoMs",
        "p99",
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "evergreen"}]
    assert alarm["Threshold"] == {"Ref": "EventToKlaviyoP99ThresholdMs"}
    assert parameter_defaults(template)["EventToKlaviyoP99ThresholdMs"] == "2000"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_dashboard_shows_event_to_klaviyo_p50_and_p99(template: dict[str, Any]) -> None:
    body = _props(template, "EvergreenDashboard")["DashboardBody"]["Fn::Sub"]
    assert "${EventToKlaviyoP99ThresholdMs}" in body, "the alarm threshold is drawn on the widget"
    rendered = re.sub(r"\$\{[^}]+\}", "0", body)
    widgets = json.loads(rendered)["widgets"]
    stats = [
        metric[-1]["stat"]
        for widget in widgets
        for metric in widget["properties"].get("metrics", [])
        if "EventToKlaviyoMs" in metric
    ]
    assert stats == ["p50", "p99"]
