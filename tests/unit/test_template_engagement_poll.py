"""What template.yaml guarantees about the engagement poll."""

from __future__ import annotations

import json
import re
from typing import Any

from evergreen_cli.local_stack.template import functions, schedules


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def test_the_poll_runs_every_five_minutes_by_default_and_can_be_turned_off(template: dict[str, Any]) -> None:
    (schedule,) = [source for source in schedules(template) if source.function == "EngagementPollFunction"]
    assert schedule.schedule == {"Ref": "EngagementPollSchedule"}
    parameters = template["Parameters"]
    assert parameters["EngagementPollSchedule"]["Default"] == "rate(5 minutes)"
    assert parameters["EngagementPollState"]["Default"] == "ENABLED"
    assert parameters["EngagementPollState"]["AllowedValues"] == ["ENABLED", "DISABLED"]
    event = _props(template, "EngagementPollFunction")["Events"]["Poll"]["Properties"]
    assert event["State"] == {"Ref": "EngagementPollState"}


def test_the_poll_reads_klaviyo_keys_and_writes_profiles_and_changes(template: dict[str, Any]) -> None:
    policies = _props(template, "EngagementPollFunction")["Policies"]
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ProfilesTable"}}} in policies
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["SegmentChangesQueue", "QueueName"]}}} in policies
    assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "KlaviyoSecrets"}}} in policies
    poll = functions(template)["EngagementPollFunction"]
    assert poll.timeout < 300, "a run ends well within the default 5-minute interval"


def test_poll_lag_alarms_past_its_threshold_and_is_on_the_dashboard(template: dict[str, Any]) -> None:
    alarm = _props(template, "EngagementPollLagAlarm")
    assert alarm["MetricName"] == "EngagementPollLagSeconds" and alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == {"Ref": "EngagementPollLagThresholdSeconds"}
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    errors = _props(template, "EngagementPollErrorsAlarm")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "EngagementPollFunction"}}]
    body = _props(template, "EvergreenDashboard")["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[A-Za-z0-9.:]+\}", "0", body))["widgets"]
    metrics = [metric for widget in widgets for metric in widget["properties"]["metrics"]]
    shown = {metric[1] for metric in metrics if isinstance(metric[0], str)}
    assert {"EngagementPollLagSeconds", "EngagementPollEventsApplied"} <= shown
