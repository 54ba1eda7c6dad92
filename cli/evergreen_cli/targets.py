"""The environment the CLI talks to: the running local stack, or a deployed stack with --aws."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evergreen_cli.aws_stack import stack_outputs

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE = REPO_ROOT / ".local-stack" / "env.json"
"""Written by `evergreen run` while it runs: the functions' environment against moto server."""


class TargetUnavailable(Exception):
    pass


DEFAULT_LOCAL_API_URL = "http://127.0.0.1:3000"


def local_state_path() -> Path:
    """The state file of the local stack (EVERGREEN_LOCAL_STATE names another one)."""
    return Path(os.environ.get("EVERGREEN_LOCAL_STATE", LOCAL_STATE))


def local_api_url() -> str:
    """The running local stack's HTTP API (whatever --port it was given), else the default :3000."""
    try:
        url = json.loads(local_state_path().read_text()).get("EVERGREEN_API_URL")
    except (OSError, ValueError):
        url = None
    return str(url or DEFAULT_LOCAL_API_URL)


def local_environment(state: Path | None = None) -> dict[str, str]:
    """The running local stack's environment (EVERGREEN_LOCAL_STATE names another state file)."""
    state = state or local_state_path()
    if not state.exists():
        raise TargetUnavailable("the local stack is not running: start it with `make run` (or pass --aws)")
    environment: dict[str, str] = json.loads(state.read_text())
    return environment


def aws_environment(stack: str, region: str | None) -> dict[str, str]:
    outputs = stack_outputs(stack, region)
    missing = [name for name in ("ProfilesTableName", "SegmentChangesQueueUrl") if name not in outputs]
    if missing:
        raise TargetUnavailable(
            f"stack {stack!r} has no output {', '.join(missing)}: is it Evergreen's? (--stack), or `make deploy`"
        )
    return {
        "PROFILES_TABLE": outputs["ProfilesTableName"],
        "SEGMENT_CHANGES_QUEUE_URL": outputs["SegmentChangesQueueUrl"],
    }


def use_target(aws: bool, stack: str, region: str | None) -> dict[str, str]:
    """Point this process's boto3 and settings at the target; returns the environment applied."""
    environment = aws_environment(stack, region) if aws else local_environment()
    os.environ.update(environment)
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    return environment
