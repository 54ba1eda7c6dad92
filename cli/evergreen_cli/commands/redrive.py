"""`evergreen redrive`: move the segment changes in the dead-letter queue back to the segment-changes queue.

The move is SQS's own message-move task (StartMessageMoveTask): SQS moves the messages server-side, at
its own pace, and this command starts the task and reports its progress until it ends. Moving is safe:
sync skips any version Klaviyo already has. The local stack's moto runs the same task
(moto_message_moves.py), so the command is the same locally and on AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import boto3

from evergreen_cli.activity import Activity, drawn, working
from evergreen_cli.aws_stack import DEFAULT_STACK
from evergreen_cli.main import CliError
from evergreen_cli.targets import use_target

POLL_SECONDS = 2.0
LOCAL_POLL_SECONDS = 0.2
"""The local move task takes milliseconds: look at it more often than at SQS's."""
FINAL_STATUSES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True)
class Queues:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str


@dataclass(frozen=True)
class MoveProgress:
    handle: str
    status: str
    moved: int
    to_move: int | None
    failure: str | None = None


def queues_of(sqs: Any, queue_url: str) -> Queues:
    """The segment-changes queue and its dead-letter queue, found from the queue's own redrive policy."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])[
        "Attributes"
    ]
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    dlq_arn = policy.get("deadLetterTargetArn")
    if not dlq_arn:
        raise CliError(f"{queue_url} has no dead-letter queue (RedrivePolicy): is this Evergreen's queue?")
    _, _, _, _, account, name = dlq_arn.split(":", 5)
    dlq_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return Queues(queue_url, attributes["QueueArn"], dlq_url, dlq_arn)


def waiting_in(sqs: Any, queue_url: str) -> int:
    """Messages in the queue (visible and in flight), as SQS approximates them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def latest_task(sqs: Any, source_arn: str) -> MoveProgress | None:
    results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
    if not results:
        return None
    task = results[0]
    to_move = task.get("ApproximateNumberOfMessagesToMove")
    return MoveProgress(
        handle=task.get("TaskHandle", ""),
        status=task["Status"],
        moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=int(to_move) if to_move is not None else None,
        failure=task.get("FailureReason"),
    )


def progress_line(progress: MoveProgress, width: int = 30) -> str:
    """`[##########--------------------]  40/120 moved (RUNNING)`."""
    total = progress.to_move or 0
    done = min(progress.moved, total) if total else 0
    filled = round(width * done / total) if total else 0
    bar = "#" * filled + "-" * (width - filled)
    count = f"{progress.moved}/{total}" if total else f"{progress.moved}"
    return f"[{bar}] {count} moved ({progress.status})"


def redrive(
    sqs: Any,
    queues: Queues,
    report: Callable[[MoveProgress], None],
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = POLL_SECONDS,
) -> MoveProgress:
    """Start the move task (or follow the one already running) and report progress until it ends."""
    current = latest_task(sqs, queues.dlq_arn)
    if current is not None and current.status not in FINAL_STATUSES:
        handle = current.handle
    else:
        handle = sqs.start_message_move_task(SourceArn=queues.dlq_arn, DestinationArn=queues.queue_arn)["TaskHandle"]
    while True:
        progress = latest_task(sqs, queues.dlq_arn)
        if progress is None or progress.handle != handle:  # the new task is not listed yet
            sleep(poll_seconds)
            continue
        report(progress)
        if progress.status in FINAL_STATUSES:
            return progress
        sleep(poll_seconds)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aws", action="store_true", help="the deployed stack's queues (default: the local stack)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def _reporter(stream: TextIO, activity: Activity) -> Callable[[MoveProgress], None]:
    """On a terminal, a bar of messages moved; otherwise one progress line per poll (for logs)."""
    if drawn(stderr=stream):
        return lambda progress: activity.update(
            f"moving messages ({progress.status})", completed=progress.moved, total=progress.to_move
        )

    def report(progress: MoveProgress) -> None:
        stream.write(f"{progress_line(progress)}\n")
        stream.flush()

    return report


def main(args: argparse.Namespace) -> int:
    environment = use_target(args.aws, args.stack, args.region)
    sqs = boto3.client("sqs", region_name=args.region)
    queues = queues_of(sqs, environment["SEGMENT_CHANGES_QUEUE_URL"])
    waiting = waiting_in(sqs, queues.dlq_url)
    if waiting == 0:
        print("the dead-letter queue is empty: nothing to redrive")
        return 0
    print(f"moving {waiting} segment change(s) from the dead-letter queue back to the segment-changes queue")
    poll_seconds = POLL_SECONDS if args.aws else LOCAL_POLL_SECONDS
    with working("starting SQS's message-move task") as activity:
        final = redrive(sqs, queues, _reporter(sys.stderr, activity), poll_seconds=poll_seconds)
    if final.status != "COMPLETED":
        raise CliError(f"the move task ended {final.status}: {final.failure or 'no reason given'}; run redrive again")
    print(f"moved {final.moved} message(s); SegmentSync is processing them")
    return 0
