"""The template's resources inside in-process moto (`mock_aws`), for unit tests and benchmarks."""

from __future__ import annotations

import json
from typing import Any

import boto3

from evergreen_cli.local_stack.template import load_template, resources


def create_profiles_table(name: str) -> None:
    """The profiles table exactly as template.yaml defines it."""
    props = resources(load_template(), "AWS::DynamoDB::Table")["ProfilesTable"]["Properties"]
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode="PAY_PER_REQUEST",
    )


def create_resources(shopify_secrets: dict[str, str], klaviyo_accounts: dict[str, Any]) -> dict[str, str]:
    """Create table, queue, bucket and secrets; returns the environment the functions read."""
    create_profiles_table("profiles")
    queue_url = boto3.client("sqs").create_queue(QueueName="segment-changes")["QueueUrl"]
    boto3.client("s3").create_bucket(Bucket="exports")
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="shopify", SecretString=json.dumps(shopify_secrets))
    secrets.create_secret(Name="klaviyo", SecretString=json.dumps(klaviyo_accounts))
    return {
        "PROFILES_TABLE": "profiles",
        "SEGMENT_CHANGES_QUEUE_URL": queue_url,
        "SHOPIFY_SECRETS_ID": "shopify",
        "KLAVIYO_SECRETS_ID": "klaviyo",
        "EXPORTS_BUCKET": "exports",
        "DUE_SHARDS": "4",
    }
