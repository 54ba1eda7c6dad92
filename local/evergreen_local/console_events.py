"""`evergreen console-events --aws`: publish events/sweep as shareable Lambda console test events.

The Lambda console reads shareable test events from the EventBridge schema registry
`lambda-testevent-schemas`, schema `_<function name>-schema`, as OpenAPI 3 `components.examples`.
CloudFormation has no resource for them, so this command creates the registry when missing and
upserts the schema after each deploy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from evergreen_local.aws_stack import DEFAULT_STACK, stack_outputs

REGISTRY = "lambda-testevent-schemas"
SWEEP_EVENTS_DIR = Path(__file__).resolve().parents[2] / "events" / "sweep"


def schema_name(function_name: str) -> str:
    return f"_{function_name}-schema"


def load_examples(directory: Path = SWEEP_EVENTS_DIR) -> dict[str, Any]:
    """Every events/sweep/*.json file, named by its stem ("dry-run", "full", ...)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def schema_document(examples: dict[str, Any]) -> str:
    """The OpenAPI 3 document the Lambda console reads its shareable test events from."""
    document = {
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": "Event"},
        "paths": {},
        "components": {
            "schemas": {
                "Event": {
                    "type": "object",
                    "properties": {
                        "dry_run": {"type": "boolean"},
                        "full": {"type": "boolean"},
                        "segments": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
            "examples": {name: {"value": value} for name, value in examples.items()},
        },
    }
    return json.dumps(document, indent=2, sort_keys=True)


def publish(schemas: Any, function_name: str, content: str) -> str:
    """Create the registry if missing, then create or update the function's schema. Returns the action."""
    try:
        schemas.describe_registry(RegistryName=REGISTRY)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NotFoundException":
            raise
        schemas.create_registry(RegistryName=REGISTRY, Description="Lambda console shareable test events")
    name = schema_name(function_name)
    try:
        schemas.describe_schema(RegistryName=REGISTRY, SchemaName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NotFoundException":
            raise
        schemas.create_schema(RegistryName=REGISTRY, SchemaName=name, Type="OpenApi3", Content=content)
        return "created"
    schemas.update_schema(RegistryName=REGISTRY, SchemaName=name, Type="OpenApi3", Content=content)
    return "updated"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aws", action="store_true", help="publish to the deployed stack (otherwise print)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--function-name", help="the sweep function's name (default: from the stack outputs)")


def main(args: argparse.Namespace) -> int:
    content = schema_document(load_examples())
    if not args.aws:
        print(content)
        print("\n(printed only; add --aws to publish to the deployed stack)")
        return 0
    function_name = args.function_name or stack_outputs(args.stack, args.region)["StalenessSweepFunctionName"]
    action = publish(boto3.client("schemas", region_name=args.region), function_name, content)
    print(f"{action} {REGISTRY}/{schema_name(function_name)} with events: {', '.join(load_examples())}")
    return 0
