"""What template.yaml guarantees about the deployed stack."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from evergreen_cli.local_stack.template import functions, http_routes, resources, schedules, sqs_sources

FUNCTIONS = {
    "ShopifyWebhookFunction": "functions/shopify_webhook",
    "ShopifyEventBridgeFunction": "functions/shopify_eventbridge",
    "KlaviyoWebhookFunction": "functions/klaviyo_webhook",
    "StalenessSweepFunction": "functions/staleness_sweep",
    "SegmentSyncFunction": "functions/segment_sync",
    "BackfillFunction": "functions/backfill",
    "TransitionFunction": "functions/transition",
    "EngagementPollFunction": "functions/engagement_poll",
}


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def _policy_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every inline IAM statement: bucket/queue/role policy documents and function inline policies."""
    documents: list[Any] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents.append(props.get("PolicyDocument"))
        for policy in props.get("Policies", []):
            if isinstance(policy, dict):
                documents.extend([policy, policy.get("PolicyDocument")])
    return [s for d in documents if isinstance(d, dict) for s in d.get("Statement", [])]


def test_every_function_runs_python_3_13_on_arm64_with_tracing_as_a_parameter(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    assert defaults["Runtime"] == "python3.13"
    assert defaults["Architectures"] == ["arm64"]
    assert defaults["Tracing"] == {"Ref": "Tracing"}
    assert template["Parameters"]["Tracing"]["AllowedValues"] == ["Active", "PassThrough"]
    assert defaults["Layers"][0] == {"Ref": "EvergreenLayer"}
    for logical_id in FUNCTIONS:
        props = _props(template, logical_id)
        assert "Runtime" not in props or props["Runtime"] == "python3.13"
        assert "Architectures" not in props or props["Architectures"] == ["arm64"]
        assert "Tracing" not in props


def test_tracing_off_disables_powertools_tracer_and_drops_the_tracing_layer(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    disabled = defaults["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]
    name, _, key = disabled["Fn::FindInMap"]
    modes = template["Mappings"][name]
    assert modes["Active"][key] == "false"
    assert modes["PassThrough"][key] == "true"
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert template["Resources"]["TracingLayer"]["Condition"] == "TracingActive"
    assert {"Fn::If": ["TracingActive", {"Ref": "TracingLayer"}, {"Ref": "AWS::NoValue"}]} in defaults["Layers"]


def test_the_functions_live_where_the_handlers_are(template: dict[str, Any], repo_root: Any) -> None:
    specs = functions(template, repo_root)
    assert set(specs) == set(FUNCTIONS)
    for logical_id, directory in FUNCTIONS.items():
        assert specs[logical_id].code_uri == repo_root / directory
        assert specs[logical_id].handler == "app.lambda_handler"
        assert (repo_root / directory / "app.py").is_file()


def test_the_layer_is_built_for_arm64_python_3_13_from_the_package_and_its_pinned_requirements(
    template: dict[str, Any], repo_root: Any
) -> None:
    layer = template["Resources"]["EvergreenLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/evergreen"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert "build-EvergreenLayer:" in (repo_root / "layers/evergreen/Makefile").read_text()
    assert (repo_root / "layers/evergreen/evergreen/__init__.py").is_file()
    assert (repo_root / "layers/evergreen/requirements.txt").is_file()


def test_every_function_gets_powertools_and_resource_names_from_the_environment(template: dict[str, Any]) -> None:
    for spec in functions(template).values():
        env = spec.environment
        assert env["POWERTOOLS_SERVICE_NAME"] == "evergreen"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Evergreen"
        assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
        assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
        assert env["PROFILES_TABLE"] == {"Ref": "ProfilesTable"}
        assert env["SEGMENT_CHANGES_QUEUE_URL"] == {"Ref": "SegmentChangesQueue"}
        assert env["SHOPIFY_SECRETS_ID"] == {"Ref": "ShopifyWebhookSecrets"}
        assert env["KLAVIYO_SECRETS_ID"] == {"Ref": "KlaviyoSecrets"}
        assert env["EXPORTS_BUCKET"] == {"Ref": "ComplianceExportsBucket"}
        assert env["KLAVIYO_BASE_URL"] == "https://a.klaviyo.com"


def test_no_secret_travels_in_an_environment_variable(template: dict[str, Any]) -> None:
    suspicious = re.compile(r"SECRET|API_KEY|TOKEN|PASSWORD", re.IGNORECASE)
    for spec in functions(template).values():
        for name, value in spec.environment.items():
            if suspicious.search(name):
                assert name.endswith("_SECRETS_ID"), f"{name} looks like a secret in the environment"
                assert isinstance(value, dict) and "Ref" in value, f"{name} must reference a Secrets Manager secret"
            if isinstance(value, str):
                assert not re.match(r"^(pk_|sk_|shpss_|shpat_)", value), f"{name} holds a credential"


def test_webhooks_arrive_through_the_http_api_as_payload_v2(template: dict[str, Any]) -> None:
    routes = {(route.method, route.path): route for route in http_routes(template)}
    assert routes[("POST", "/webhooks/shopify")].function == "ShopifyWebhookFunction"
    assert routes[("POST", "/webhooks/klaviyo")].function == "KlaviyoWebhookFunction"
    assert {route.payload_format_version for route in routes.values()} == {"2.0"}
    api = _props(template, "EvergreenHttpApi")
    assert "DestinationArn" in api["AccessLogSettings"]
    assert set(api["DefaultRouteSettings"]) == {"ThrottlingBurstLimit", "ThrottlingRateLimit"}


def test_segment_sync_reports_partial_batch_failures_within_klaviyos_rate_limits(template: dict[str, Any]) -> None:
    (source,) = [source for source in sqs_sources(template) if source.function == "SegmentSyncFunction"]
    assert source.queue == "SegmentChangesQueue"
    assert source.report_batch_item_failures
    event = _props(template, "SegmentSyncFunction")["Events"]["SegmentChanges"]["Properties"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == 2


def test_a_change_is_handed_to_sync_without_a_batching_window_and_bursts_are_drained(template: dict[str, Any]) -> None:
    (source,) = [source for source in sqs_sources(template) if source.function == "SegmentSyncFunction"]
    assert source.batching_window_seconds == 0
    assert source.batch_size <= 10, "above 10, Lambda requires a batching window of at least 1 s"
    environment = functions(template)["SegmentSyncFunction"].environment
    assert int(environment["SYNC_BATCH_SIZE"]) == source.batch_size, "a full batch is what starts the drain"


def test_a_message_is_not_redelivered_while_sync_may_still_be_working_on_it(template: dict[str, Any]) -> None:
    sync_timeout = functions(template)["SegmentSyncFunction"].timeout
    queue = _props(template, "SegmentChangesQueue")
    assert int(queue["VisibilityTimeout"]) >= 6 * sync_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SegmentChangesDLQ", "Arn"]},
        "maxReceiveCount": 500,
    }
    assert int(queue["MessageRetentionPeriod"]) == 14 * 24 * 3600
    assert int(_props(template, "SegmentChangesDLQ")["MessageRetentionPeriod"]) == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True
    assert _props(template, "SegmentChangesDLQ")["SqsManagedSseEnabled"] is True


def test_the_sweep_runs_on_a_schedule_and_has_a_stable_name_for_the_console(template: dict[str, Any]) -> None:
    (schedule,) = [source for source in schedules(template) if source.function == "StalenessSweepFunction"]
    assert schedule.schedule == {"Ref": "SweepSchedule"}
    assert template["Parameters"]["SweepSchedule"]["Default"] == "rate(5 minutes)"
    assert _props(template, "StalenessSweepFunction")["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-staleness-sweep"
    }
    assert functions(template)["StalenessSweepFunction"].timeout == 300


def test_profiles_are_kept_safe_and_indexed_for_the_sweep_sync_repair_and_email_lookup(
    template: dict[str, Any],
) -> None:
    table = template["Resources"]["ProfilesTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {
        index["IndexName"]: ([(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]], index["Projection"])
        for index in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "due": ([("due_pk", "HASH"), ("next_transition_at", "RANGE")], {"ProjectionType": "KEYS_ONLY"}),
        "unsynced": ([("unsynced_pk", "HASH"), ("unsynced_since", "RANGE")], {"ProjectionType": "KEYS_ONLY"}),
        "by_email": ([("email_pk", "HASH")], {"ProjectionType": "KEYS_ONLY"}),
        "by_klaviyo": ([("klaviyo_pk", "HASH")], {"ProjectionType": "KEYS_ONLY"}),
        "by_shop": ([("shop_pk", "HASH"), ("owner", "RANGE")], {"ProjectionType": "KEYS_ONLY"}),
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    keys = {k["AttributeName"] for k in props["KeySchema"]} | {
        k["AttributeName"] for index in props["GlobalSecondaryIndexes"] for k in index["KeySchema"]
    }
    assert set(types) == keys and set(types.values()) == {"S"}


def test_compliance_exports_are_private_encrypted_tls_only_and_expire(template: dict[str, Any]) -> None:
    bucket = _props(template, "ComplianceExportsBucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "ExportsExpirationDays"}
    assert "VersioningConfiguration" not in bucket
    (statement,) = _props(template, "ComplianceExportsBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_functions_get_only_the_access_they_need(template: dict[str, Any]) -> None:
    def policies(logical_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for policy in _props(template, logical_id)["Policies"]:
            assert isinstance(policy, dict) and len(policy) == 1, "use scoped SAM policy templates"
            ((name, scope),) = policy.items()
            found[name] = scope
        return found

    table = {"TableName": {"Ref": "ProfilesTable"}}
    shopify = policies("ShopifyWebhookFunction")
    assert shopify["DynamoDBCrudPolicy"] == table
    assert shopify["AWSSecretsManagerGetSecretValuePolicy"] == {"SecretArn": {"Ref": "ShopifyWebhookSecrets"}}
    assert shopify["S3WritePolicy"] == {"BucketName": {"Ref": "ComplianceExportsBucket"}}
    assert "SQSSendMessagePolicy" in shopify
    klaviyo = policies("KlaviyoWebhookFunction")
    assert klaviyo["AWSSecretsManagerGetSecretValuePolicy"] == {"SecretArn": {"Ref": "KlaviyoSecrets"}}
    assert "S3WritePolicy" not in klaviyo
    sweep = policies("StalenessSweepFunction")
    assert sweep["DynamoDBCrudPolicy"] == table and "AWSSecretsManagerGetSecretValuePolicy" not in sweep
    sync = policies("SegmentSyncFunction")
    assert sync["AWSSecretsManagerGetSecretValuePolicy"] == {"SecretArn": {"Ref": "KlaviyoSecrets"}}
    assert "S3WritePolicy" not in sync
    assert sync["SQSPollerPolicy"] == {"QueueName": {"Fn::GetAtt": ["SegmentChangesQueue", "QueueName"]}}
    assert sync["SQSSendMessagePolicy"] == {"QueueName": {"Fn::GetAtt": ["SegmentChangesDLQ", "QueueName"]}}


def test_no_policy_allows_wildcard_actions(template: dict[str, Any]) -> None:
    for statement in _policy_statements(template):
        if statement.get("Effect") == "Deny":
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            assert action != "*" and not action.endswith(":*"), f"wildcard action {action}"


def test_secrets_hold_placeholders_and_document_their_format(template: dict[str, Any]) -> None:
    for logical_id in ("ShopifyWebhookSecrets", "KlaviyoSecrets"):
        props = _props(template, logical_id)
        assert json.loads(props["SecretString"]) == {}
        assert "myshopify.com" in props["Description"]
    assert "api_key" in _props(template, "KlaviyoSecrets")["Description"]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_logs_to_a_group_with_retention_and_alarms_on_errors(
    template: dict[str, Any], function: str
) -> None:
    group_id = _props(template, function)["LoggingConfig"]["LogGroup"]["Ref"]
    assert _props(template, group_id)["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    assert any(
        alarm["Properties"].get("MetricName") == "Errors"
        and alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
        for alarm in alarms
    )


def test_a_message_in_the_dead_letter_queue_raises_an_alarm(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    dlq = [
        a
        for a in alarms
        if a.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SegmentChangesDLQ", "QueueName"]}}]
    ]
    assert dlq and dlq[0]["Threshold"] == 0 and dlq[0]["ComparisonOperator"] == "GreaterThanThreshold"
    assert "EvergreenDashboard" in resources(template, "AWS::CloudWatch::Dashboard")


def test_outputs_give_the_webhook_urls_and_the_names_the_cli_needs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ShopifyWebhookUrl"]["Value"] == {
        "Fn::Sub": "https://${EvergreenHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/webhooks/shopify"
    }
    assert outputs["KlaviyoWebhookUrl"]["Value"]["Fn::Sub"].endswith("/webhooks/klaviyo")
    for name in (
        "ProfilesTableName",
        "SegmentChangesQueueUrl",
        "SegmentChangesDLQUrl",
        "ShopifyWebhookSecretsArn",
        "KlaviyoSecretsArn",
        "StalenessSweepFunctionName",
        "ComplianceExportsBucketName",
    ):
        assert name in outputs


def test_every_alarm_notifies_the_stacks_own_topic_and_an_optional_email_subscribes_to_it(
    template: dict[str, Any],
) -> None:
    assert "AlarmTopic" in resources(template, "AWS::SNS::Topic")
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}]
    [subscription] = resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_the_api_throttle_is_a_parameter_sized_for_a_flash_sale_not_100_a_second(template: dict[str, Any]) -> None:
    routes = _props(template, "EvergreenHttpApi")["DefaultRouteSettings"]
    assert routes == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
    }
    webhooks_per_second_at_10k_orders_a_minute = 10_000 * 6 / 60
    assert template["Parameters"]["ApiThrottleRateLimit"]["Default"] >= webhooks_per_second_at_10k_orders_a_minute
    assert template["Parameters"]["ApiThrottleBurstLimit"]["Default"] <= 5000, "the account's bucket holds 5,000"


def test_alarms_watch_the_http_apis_4xx_and_5xx(template: dict[str, Any]) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    api = [{"Name": "ApiId", "Value": {"Ref": "EvergreenHttpApi"}}]
    server = alarms["HttpApi5xxAlarm"]["Properties"]
    assert (server["Namespace"], server["MetricName"], server["Dimensions"]) == ("AWS/ApiGateway", "5xx", api)
    assert server["Threshold"] == 0
    client = alarms["HttpApi4xxAlarm"]["Properties"]
    watched = {m["Id"]: m["MetricStat"]["Metric"] for m in client["Metrics"] if "MetricStat" in m}
    assert {m["MetricName"] for m in watched.values()} == {"4xx", "Count"}
    assert all(m["Dimensions"] == api for m in watched.values())
    assert client["Threshold"] == {"Ref": "ApiClientErrorPercent"}


def test_the_shopify_webhook_answers_within_shopifys_5_seconds(template: dict[str, Any]) -> None:
    function = _props(template, "ShopifyWebhookFunction")
    answer_within = float(function["Environment"]["Variables"]["ANSWER_WITHIN_SECONDS"])
    assert answer_within < 5 and function["Timeout"] <= 5


def test_shopify_events_from_eventbridge_are_queued_for_the_same_ingest_and_what_is_dropped_alarms(
    template: dict[str, Any],
) -> None:
    (source,) = [source for source in sqs_sources(template) if source.function == "ShopifyEventBridgeFunction"]
    assert source.queue == "ShopifyEventsQueue" and source.report_batch_item_failures
    rule = _props(template, "ShopifyEventsRule")
    assert rule["EventPattern"] == {
        "source": [{"prefix": "aws.partner/shopify.com/"}],
        "detail-type": ["shopifyWebhook"],
    }
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ShopifyEventsQueue", "Arn"]}
    bus = template["Resources"]["ShopifyPartnerEventBus"]
    assert bus["Condition"] == "HasShopifyEventSource"
    assert bus["Properties"]["EventSourceName"] == bus["Properties"]["Name"] == {"Ref": "ShopifyEventSourceName"}
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms["ShopifyEventsRefusedAlarm"]["Properties"]["MetricName"] == "EventBridgeEventsRefused"
    dlq = alarms["ShopifyEventsDLQAlarm"]["Properties"]["Dimensions"]
    assert dlq == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["ShopifyEventsDLQ", "QueueName"]}}]
