"""`evergreen console-events`: the sweep's console test events, as the Lambda console reads them.

moto has no EventBridge Schemas backend, so the AWS side is botocore's Stubber: it checks every
request against the service model and answers as the API documents.
"""

from __future__ import annotations

import json

import boto3
from botocore.stub import ANY, Stubber

from evergreen_local.console_events import REGISTRY, load_examples, publish, schema_document, schema_name


def test_every_sweep_event_becomes_a_named_console_example():
    examples = load_examples()

    document = json.loads(schema_document(examples))

    assert {"dry-run", "full", "lapsed-only", "scheduled"} <= set(document["components"]["examples"])
    assert document["components"]["examples"]["dry-run"] == {"value": {"dry_run": True}}
    assert document["openapi"].startswith("3.")


def test_the_schema_is_named_as_the_lambda_console_expects():
    assert schema_name("evergreen-staleness-sweep") == "_evergreen-staleness-sweep-schema"


def test_publishing_creates_the_registry_when_missing_and_then_the_schema():
    client = boto3.client("schemas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    content = schema_document(load_examples())
    name = schema_name("evergreen-staleness-sweep")
    with Stubber(client) as stub:
        stub.add_client_error("describe_registry", "NotFoundException", http_status_code=404)
        stub.add_response("create_registry", {"RegistryName": REGISTRY}, {"RegistryName": REGISTRY, "Description": ANY})
        stub.add_client_error("describe_schema", "NotFoundException", http_status_code=404)
        stub.add_response(
            "create_schema",
            {"SchemaName": name},
            {"RegistryName": REGISTRY, "SchemaName": name, "Type": "OpenApi3", "Content": content},
        )
        assert publish(client, "evergreen-staleness-sweep", content) == "created"
        stub.assert_no_pending_responses()


def test_publishing_again_updates_the_existing_schema():
    client = boto3.client("schemas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    content = schema_document(load_examples())
    name = schema_name("fn")
    with Stubber(client) as stub:
        stub.add_response("describe_registry", {"RegistryName": REGISTRY}, {"RegistryName": REGISTRY})
        stub.add_response("describe_schema", {"SchemaName": name}, {"RegistryName": REGISTRY, "SchemaName": name})
        stub.add_response(
            "update_schema",
            {"SchemaName": name},
            {"RegistryName": REGISTRY, "SchemaName": name, "Type": "OpenApi3", "Content": content},
        )
        assert publish(client, "fn", content) == "updated"
        stub.assert_no_pending_responses()
