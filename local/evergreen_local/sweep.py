"""`evergreen sweep`: run the staleness sweep against the local stack, or invoke the deployed one."""

from __future__ import annotations

import argparse
import json
from typing import Any

import boto3

from evergreen.service.sweep import SweepRequest
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_local.aws_stack import DEFAULT_STACK, stack_outputs
from evergreen_local.targets import TargetUnavailable, use_target


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="compute and report; write and send nothing")
    parser.add_argument("--segment", action="append", dest="segments", help="limit to this segment (repeatable)")
    parser.add_argument("--full", action="store_true", help="re-evaluate every profile (parallel scan)")
    parser.add_argument("--aws", action="store_true", help="invoke the deployed StalenessSweepFunction")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def request_of(args: argparse.Namespace) -> SweepRequest:
    return SweepRequest(dry_run=args.dry_run, segments=args.segments, full=args.full)


def invoke_deployed(args: argparse.Namespace, request: SweepRequest) -> dict[str, Any]:
    function_name = stack_outputs(args.stack, args.region)["StalenessSweepFunctionName"]
    client: Any = boto3.client("lambda", region_name=args.region)
    response = client.invoke(FunctionName=function_name, Payload=request.model_dump_json(exclude_defaults=True))
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def run_locally(request: SweepRequest) -> dict[str, Any]:
    return Edges(Settings.from_env()).sweep.run(request).as_dict()


def main(args: argparse.Namespace) -> int:
    request = request_of(args)
    if args.aws:
        report = invoke_deployed(args, request)
    else:
        try:
            use_target(False, args.stack, args.region)
        except TargetUnavailable as error:
            print(f"error: {error}")
            return 2
        report = run_locally(request)
    print(json.dumps(report, indent=2))
    return 0
