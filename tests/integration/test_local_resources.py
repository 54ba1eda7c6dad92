"""The local stack's AWS resources are the template's own, created through moto server over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

from evergreen_cli.local_stack.resources import (
    DEFAULT_LOCAL_KLAVIYO_SECRET,
    DEFAULT_LOCAL_SHOPIFY_SECRET,
    LocalResources,
    provision,
)
from evergreen_cli.local_stack.stack import LocalStack, options_on_free_ports


def _index_keys(indexes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    return {i["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]] for i in indexes}


def test_the_local_table_has_the_templates_keys_indexes_and_ttl(
    local_resources: LocalResources, template: dict[str, Any]
) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = dynamodb.describe_table(TableName=local_resources.table_name)["Table"]
    props = template["Resources"]["ProfilesTable"]["Properties"]
    assert table["KeySchema"] == props["KeySchema"]
    assert _index_keys(table["GlobalSecondaryIndexes"]) == _index_keys(props["GlobalSecondaryIndexes"])
    projections = {i["IndexName"]: i["Projection"]["ProjectionType"] for i in table["GlobalSecondaryIndexes"]}
    assert projections == {
        "due": "KEYS_ONLY",
        "unsynced": "KEYS_ONLY",
        "by_email": "KEYS_ONLY",
        "by_klaviyo": "KEYS_ONLY",
        "by_shop": "KEYS_ONLY",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=local_resources.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_a_profile_written_locally_is_found_through_the_due_index(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    dynamodb.put_item(
        TableName=local_resources.table_name,
        Item={
            "pk": {"S": "shop#a.myshopify.com"},
            "sk": {"S": "customer#1"},
            "due_pk": {"S": "due#3"},
            "next_transition_at": {"S": "2026-01-01T00:00:00+00:00"},
        },
    )
    found = dynamodb.query(
        TableName=local_resources.table_name,
        IndexName="due",
        KeyConditionExpression="due_pk = :shard AND next_transition_at <= :now",
        ExpressionAttributeValues={":shard": {"S": "due#3"}, ":now": {"S": "2026-06-01T00:00:00+00:00"}},
    )["Items"]
    assert [item["sk"]["S"] for item in found] == ["customer#1"]


def test_the_segment_changes_queue_redrives_to_the_dlq_after_500_receives(
    local_resources: LocalResources,
) -> None:
    sqs = local_resources.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=local_resources.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=local_resources.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 500}
    assert attributes["VisibilityTimeout"] == "1800"
    dlq = sqs.get_queue_attributes(QueueUrl=local_resources.dlq_url, AttributeNames=["MessageRetentionPeriod"])
    assert dlq["Attributes"]["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_the_local_secrets_hold_the_documented_local_values(local_resources: LocalResources) -> None:
    secretsmanager = local_resources.client("secretsmanager")
    shopify = json.loads(secretsmanager.get_secret_value(SecretId=local_resources.shopify_secrets_id)["SecretString"])
    klaviyo = json.loads(secretsmanager.get_secret_value(SecretId=local_resources.klaviyo_secrets_id)["SecretString"])
    assert shopify == {"*": DEFAULT_LOCAL_SHOPIFY_SECRET}
    assert klaviyo == {"*": {"api_key": "sandbox-key", "webhook_secret": DEFAULT_LOCAL_KLAVIYO_SECRET}}


def test_the_exports_bucket_accepts_an_export(local_resources: LocalResources) -> None:
    s3 = local_resources.client("s3")
    s3.put_object(Bucket=local_resources.exports_bucket, Key="exports/x.json", Body=b"{}")
    assert s3.get_object(Bucket=local_resources.exports_bucket, Key="exports/x.json")["Body"].read() == b"{}"


def test_provisioning_again_keeps_the_data(
    local_resources: LocalResources, template: dict[str, Any], moto_server: str
) -> None:
    sqs = local_resources.client("sqs")
    sqs.send_message(QueueUrl=local_resources.queue_url, MessageBody="kept")
    again = provision(template, moto_server, prefix=local_resources.prefix, local_secrets=local_resources.local_secrets)
    assert again.table_name == local_resources.table_name
    assert again.queue_url == local_resources.queue_url
    assert again.shopify_secrets_id == local_resources.shopify_secrets_id
    messages = sqs.receive_message(QueueUrl=again.queue_url, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in messages] == ["kept"]


def test_functions_see_the_template_environment_resolved_to_the_local_resources(
    local_resources: LocalResources, moto_server: str
) -> None:
    env = local_resources.function_environment("SegmentSyncFunction")
    assert env["PROFILES_TABLE"] == local_resources.table_name
    assert env["SEGMENT_CHANGES_QUEUE_URL"] == local_resources.queue_url
    assert env["SHOPIFY_SECRETS_ID"] == local_resources.shopify_secrets_id
    assert env["KLAVIYO_SECRETS_ID"] == local_resources.klaviyo_secrets_id
    assert env["EXPORTS_BUCKET"] == local_resources.exports_bucket
    assert env["DUE_SHARDS"] == "32" and env["SYNC_GRACE_SECONDS"] == "900"
    assert env["AWS_ENDPOINT_URL"] == moto_server
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_SERVICE_NAME"] == "evergreen"
    assert all(isinstance(value, str) for value in env.values())


def test_the_poller_deletes_what_sync_handled_and_redelivers_what_it_reported_failed(moto_server: str) -> None:
    options = options_on_free_ports(
        moto_endpoint=moto_server,
        sweep_every=None,
        engagement_poll_every=None,
        poll=False,
        use_sandbox=False,
        environ={},
        prefix=f"poll{uuid.uuid4().hex[:8]}",
        retry_after=0,
    )
    batches: list[list[dict[str, Any]]] = []

    def sync(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batches.append(event["Records"])
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "fails once" and len(batches) == 1]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    with LocalStack(options) as stack:
        assert stack.runtime is not None and stack.resources is not None
        stack.runtime.register("SegmentSyncFunction", sync)
        sqs = stack.resources.client("sqs")
        for body in ("ok", "fails once"):
            sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)
        assert stack.drain() == 3
        (first, *_), second = batches[0], batches[1]
        assert first["eventSource"] == "aws:sqs"
        assert first["eventSourceARN"] == stack.resources.get_att("SegmentChangesQueue", "Arn")
        assert first["attributes"]["ApproximateReceiveCount"] == "1"
        assert {"messageId", "receiptHandle", "md5OfBody", "awsRegion", "messageAttributes"} <= set(first)
        assert sorted(r["body"] for r in batches[0]) == ["fails once", "ok"]
        assert [(r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in second] == [("fails once", "2")]
        assert stack.drain() == 0
