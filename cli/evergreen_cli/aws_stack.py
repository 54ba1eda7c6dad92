"""Where the CLI finds a deployed stack's resources and settings: its CloudFormation outputs and parameters."""

from __future__ import annotations

from typing import Any

import boto3

DEFAULT_STACK = "evergreen"


def stack_outputs(stack_name: str, region: str | None = None) -> dict[str, str]:
    client: Any = boto3.client("cloudformation", region_name=region)
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def stack_parameters(stack_name: str, region: str | None = None) -> dict[str, str]:
    """The deployed stack's template parameters, defaults included, as CloudFormation reports them."""
    client: Any = boto3.client("cloudformation", region_name=region)
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    return {
        parameter["ParameterKey"]: parameter.get("ParameterValue", "") for parameter in stacks[0].get("Parameters", [])
    }
