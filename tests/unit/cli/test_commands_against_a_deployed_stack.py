"""`--aws`: the commands find a deployed stack through its CloudFormation outputs (in-process moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from evergreen.segments import default_definitions
from evergreen.service.membership import reevaluate
from evergreen.storage.profiles import DynamoProfileStore
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.main import main
from tests.customers import customer_with_order

STACK = "evergreen-test"


@pytest.fixture
def deployed(aws_credentials, monkeypatch: pytest.MonkeyPatch, free_port) -> Iterator[dict[str, str]]:
    """The stack's data resources and a CloudFormation stack whose outputs name them."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("KLAVIYO_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: never the network
    with mock_aws():
        environment = create_resources(
            {"my-store.myshopify.com": "shpss_4f1e0c9a"},
            {"my-store.myshopify.com": {"api_key": "pk_live_1", "webhook_secret": "whsec-1234567890abcdef"}},
        )
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="segment-changes-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(
            QueueUrl=environment["SEGMENT_CHANGES_QUEUE_URL"],
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
        )
        outputs = {
            "ShopifyWebhookUrl": f"http://127.0.0.1:{free_port()}/webhooks/shopify",
            "KlaviyoWebhookUrl": "https://example.invalid/webhooks/klaviyo",
            "ProfilesTableName": environment["PROFILES_TABLE"],
            "SegmentChangesQueueUrl": environment["SEGMENT_CHANGES_QUEUE_URL"],
            "SegmentChangesDLQUrl": dlq,
            "ShopifyWebhookSecretsArn": environment["SHOPIFY_SECRETS_ID"],
            "KlaviyoSecretsArn": environment["KLAVIYO_SECRETS_ID"],
            "StalenessSweepFunctionName": f"{STACK}-staleness-sweep",
        }
        boto3.client("cloudformation").create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(
                {
                    "Parameters": {"SweepSchedule": {"Type": "String", "Default": "rate(5 minutes)"}},
                    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {name: {"Value": value} for name, value in outputs.items()},
                }
            ),
            Parameters=[{"ParameterKey": "SweepSchedule", "ParameterValue": "rate(10 minutes)"}],
        )
        yield outputs


def test_plan_aws_reads_the_deployed_table(deployed, capsys):
    default = Path("layers/evergreen/evergreen/segments/segments.yaml")

    assert main(["plan", "--aws", "--stack", STACK, "--region", "us-east-1", str(default), "--json"]) == 0

    plan = json.loads(capsys.readouterr().out)
    assert plan["profiles"] == 0 and plan["full_reevaluation"] is False


def test_doctor_aws_checks_the_deployed_stack_and_says_what_is_unreachable(deployed, capsys):
    assert main(["doctor", "--aws", "--stack", STACK, "--region", "us-east-1"]) == 1

    out = capsys.readouterr().out
    checks = {line[2:].split(":")[0]: line for line in out.splitlines() if line[:1] in "✓✗?"}
    assert checks["stack"] == "✓ stack: 8 outputs present"
    assert checks["Shopify webhook secret"] == "✓ Shopify webhook secret: set for my-store.myshopify.com"
    assert checks["Klaviyo secret"].startswith("✓")
    assert checks["dead-letter queue"] == "✓ dead-letter queue: empty"
    assert checks["staleness sweep"] == "✗ staleness sweep: no sweep has run on this stack's table"
    assert "fix: the schedule (rate(10 minutes)) runs it: wait one interval, or run `evergreen sweep --aws` now" in out
    assert checks["sync lag"].startswith("✓")
    assert checks["alarms"] == "✓ alarms: 0 alarm(s), none firing"
    assert checks["webhook route"].startswith("✗ webhook route: cannot reach")
    assert checks["Klaviyo API key"].startswith("✗ Klaviyo API key: cannot reach")
    assert "Traceback" not in out


@pytest.mark.parametrize(("minutes_ago", "mark"), [(15, "✓"), (25, "✗")])
def test_doctor_aws_wants_a_complete_sweep_within_two_intervals_of_the_stacks_sweep_schedule(
    deployed, capsys, minutes_ago, mark
):
    store = DynamoProfileStore(boto3.client("dynamodb"), deployed["ProfilesTableName"], 1)
    store.record_sweep_run(datetime.now(UTC) - timedelta(minutes=minutes_ago), complete=True)

    main(["doctor", "--aws", "--stack", STACK, "--region", "us-east-1"])

    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(f"{mark} staleness sweep"))
    assert "rate(10 minutes)" in line


def test_explain_aws_reads_a_profile_from_the_deployed_table(deployed, capsys):
    now = datetime.now(UTC)
    profile = customer_with_order("my-store.myshopify.com", 41, now - timedelta(days=200), "30.00")
    stored = reevaluate(profile, default_definitions(), now, version=1).profile
    DynamoProfileStore(boto3.client("dynamodb"), deployed["ProfilesTableName"], 1).backfill([stored], now)

    command = ["explain", "--aws", "--stack", STACK, "--region", "us-east-1", "--shop", "my-store.myshopify.com"]
    assert main([*command, "--customer-id", "41", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "customer#41" and "lapsed" in report["segments"]


def test_doctor_aws_says_why_changes_were_dead_lettered_without_moving_them(deployed, capsys):
    sqs = boto3.client("sqs")
    for reason in ("bulk_import_profiles: invalid (email)", "bulk_import_profiles: invalid (email)", "unreadable"):
        sqs.send_message(
            QueueUrl=deployed["SegmentChangesDLQUrl"],
            MessageBody="{}",
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
        )

    main(["doctor", "--aws", "--stack", STACK, "--region", "us-east-1"])

    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.startswith("✗ dead-letter queue")]
    assert line == (
        "✗ dead-letter queue: 3 segment change(s) failed to reach Klaviyo "
        "(sampled: 2 x bulk_import_profiles: invalid (email); 1 x unreadable)"
    )
    assert "needs its data fixed in Shopify" in out
    visible = sqs.get_queue_attributes(QueueUrl=deployed["SegmentChangesDLQUrl"], AttributeNames=["All"])
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "3", "doctor only peeks"
