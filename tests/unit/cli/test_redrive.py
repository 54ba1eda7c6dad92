"""`evergreen redrive`: SQS's own message-move task moves the dead-letter queue back, with progress.

The polling loop meets SQS's answers in a set order through botocore's Stubber, which checks every request
against the SQS service model; finding the queues runs on moto. The whole command, locally and with --aws,
runs on moto server's message-move tasks in tests/integration/test_operating_commands_on_moto_server.py.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from evergreen_cli.commands.redrive import MoveProgress, Queues, progress_line, queues_of, redrive, waiting_in

QUEUES = Queues(
    queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/changes",
    queue_arn="arn:aws:sqs:us-east-1:123456789012:changes",
    dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/changes-dlq",
    dlq_arn="arn:aws:sqs:us-east-1:123456789012:changes-dlq",
)


def task(handle: str, status: str, moved: int, to_move: int = 3) -> dict:
    return {
        "Results": [
            {
                "TaskHandle": handle,
                "Status": status,
                "SourceArn": QUEUES.dlq_arn,
                "DestinationArn": QUEUES.queue_arn,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": to_move,
                "StartedTimestamp": 1,
            }
        ]
    }


def sqs_client():
    return boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


LIST = {"SourceArn": QUEUES.dlq_arn, "MaxResults": 1}


def test_redrive_starts_one_move_task_and_reports_progress_until_it_completes():
    sqs = sqs_client()
    seen: list[MoveProgress] = []
    naps: list[float] = []
    with Stubber(sqs) as stub:
        stub.add_response("list_message_move_tasks", {"Results": []}, LIST)
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "new"},
            {"SourceArn": QUEUES.dlq_arn, "DestinationArn": QUEUES.queue_arn},
        )
        stub.add_response("list_message_move_tasks", task("new", "RUNNING", 0), LIST)
        stub.add_response("list_message_move_tasks", task("new", "RUNNING", 2), LIST)
        stub.add_response("list_message_move_tasks", task("new", "COMPLETED", 3), LIST)

        final = redrive(sqs, QUEUES, seen.append, sleep=naps.append, poll_seconds=2)

        stub.assert_no_pending_responses()
    assert final.status == "COMPLETED" and final.moved == 3
    assert [(p.status, p.moved) for p in seen] == [("RUNNING", 0), ("RUNNING", 2), ("COMPLETED", 3)]
    assert naps == [2, 2]


def test_an_older_finished_task_is_not_mistaken_for_the_new_one():
    sqs = sqs_client()
    seen: list[MoveProgress] = []
    with Stubber(sqs) as stub:
        stub.add_response("list_message_move_tasks", task("old", "COMPLETED", 5), LIST)
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "new"},
            {"SourceArn": QUEUES.dlq_arn, "DestinationArn": QUEUES.queue_arn},
        )
        stub.add_response("list_message_move_tasks", task("old", "COMPLETED", 5), LIST)
        stub.add_response("list_message_move_tasks", task("new", "COMPLETED", 3), LIST)

        final = redrive(sqs, QUEUES, seen.append, sleep=lambda _: None)

        stub.assert_no_pending_responses()
    assert final.handle == "new" and [p.handle for p in seen] == ["new"]


def test_a_move_already_running_is_followed_not_started_again():
    sqs = sqs_client()
    with Stubber(sqs) as stub:
        stub.add_response("list_message_move_tasks", task("running", "RUNNING", 1), LIST)
        stub.add_response("list_message_move_tasks", task("running", "FAILED", 1), LIST)

        final = redrive(sqs, QUEUES, lambda _: None, sleep=lambda _: None)

        stub.assert_no_pending_responses()
    assert final.status == "FAILED"


def test_progress_reads_as_a_bar_with_a_count():
    line = progress_line(MoveProgress("h", "RUNNING", 40, 120), width=12)
    assert line == "[####--------] 40/120 moved (RUNNING)"


@pytest.fixture
def queues(aws_credentials):
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="changes-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        queue = sqs.create_queue(QueueName="changes", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        yield sqs, queue, dlq


def test_the_dead_letter_queue_is_found_from_the_queues_own_redrive_policy(queues):
    sqs, queue, dlq = queues

    found = queues_of(sqs, queue)

    assert found.dlq_url == dlq and found.dlq_arn.endswith(":changes-dlq") and found.queue_arn.endswith(":changes")


def test_the_count_includes_messages_in_flight(queues):
    sqs, _, dlq = queues
    for number in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=str(number))
    sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1)

    assert waiting_in(sqs, dlq) == 3
