"""`evergreen check-aws`: the AWS region and credentials a deploy needs, checked before anything is built.

`make deploy` (and deploy-guided, delete) run it first, so a missing region or credentials is one line naming
make's REGION= or `aws configure`, not SAM's error after the build's output.
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from evergreen_cli.main import CliError, pass_flag


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or your AWS profile's)")


def main(args: argparse.Namespace) -> int:
    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    region = session.region_name
    if not region:
        raise CliError(f"no AWS region: {pass_flag('--region', 'us-east-1')} (or set AWS_REGION, or `aws configure`)")
    if session.get_credentials() is None:
        raise CliError("no AWS credentials: run `aws configure` (or `aws sso login`, or set AWS_PROFILE)")
    sts: Any = session.client("sts")
    account = sts.get_caller_identity()["Account"]  # expired or rejected credentials end here, in one line
    print(f"AWS account {account}, region {region}")
    return 0
