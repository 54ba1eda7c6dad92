"""`--aws`: the commands find a deployed stack through its CloudFormation outputs (in-process moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from evergreen_local.cli import main
from evergreen_local.inprocess import create_resources

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
                    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {name: {"Value": value} for name, value in outputs.items()},
                }
            ),
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
    assert checks["staleness sweep"].startswith("✓") and checks["sync lag"].startswith("✓")
    assert checks["alarms"] == "✓ alarms: 0 alarm(s), none firing"
    assert checks["webhook route"].startswith("✗ webhook route: cannot reach")
    assert checks["Klaviyo API key"].startswith("✗ Klaviyo API key: cannot reach")
    assert "Traceback" not in out
