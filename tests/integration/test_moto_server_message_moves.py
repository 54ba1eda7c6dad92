"""The local moto server runs SQS's message-move tasks as the SQS API reference describes them."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def sqs(moto_server: str):
    return boto3.client(
        "sqs", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def arn_of(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queues(sqs, sources: int = 1, max_receive_count: int = 1) -> tuple[str, list[str]]:
    """A dead-letter queue and `sources` queues that dead-letter into it; returns their URLs."""
    name = f"q{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": max_receive_count})
    urls = [
        sqs.create_queue(QueueName=f"{name}-{number}", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        for number in range(sources)
    ]
    return dlq, urls


def dead_letter(sqs, url: str, body: str) -> None:
    """Send to `url` and receive it until SQS moves it to the dead-letter queue (maxReceiveCount 1)."""
    sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # the second receive dead-letters it


def finished(sqs, dlq_arn: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
        if task["Status"] not in ("RUNNING", "CANCELLING"):
            return task
        time.sleep(0.05)
    raise AssertionError("the move task did not finish")


def bodies(sqs, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def test_without_a_destination_each_message_goes_back_to_the_queue_it_came_from(sqs):
    dlq, (first, second) = queues(sqs, sources=2)
    dead_letter(sqs, first, "from first")
    dead_letter(sqs, second, "from second")

    handle = sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq))["TaskHandle"]

    task = finished(sqs, arn_of(sqs, dlq))
    assert task["TaskHandle"] == handle and task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == task["ApproximateNumberOfMessagesToMove"] == 2
    assert "DestinationArn" not in task and "MaxNumberOfMessagesPerSecond" not in task
    assert isinstance(task["StartedTimestamp"], int)
    assert bodies(sqs, first) == ["from first"] and bodies(sqs, second) == ["from second"]
    assert bodies(sqs, dlq) == []


def test_a_moved_message_starts_its_receive_count_again(sqs):
    dlq, (source,) = queues(sqs, max_receive_count=2)
    sqs.send_message(QueueUrl=source, MessageBody="b")
    for _ in range(2):
        sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=source).get("Messages") is None

    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, source))
    finished(sqs, arn_of(sqs, dlq))

    message = sqs.receive_message(QueueUrl=source, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert message["Body"] == "b" and message["Attributes"]["ApproximateReceiveCount"] == "1"


def test_a_queue_that_is_no_dead_letter_queue_is_refused(sqs):
    _, (source,) = queues(sqs)

    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, source))

    assert refused.value.response["Error"]["QueryErrorCode"] == "InvalidParameterValue"


def test_a_rate_limited_task_can_be_cancelled_and_a_second_task_waits_for_the_first(sqs):
    dlq, (source,) = queues(sqs)
    for number in range(5):
        sqs.send_message(QueueUrl=dlq, MessageBody=str(number))
    dlq_arn = arn_of(sqs, dlq)

    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    with pytest.raises(ClientError) as second:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert second.value.response["Error"]["QueryErrorCode"] == "UnsupportedOperation"
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]

    task = finished(sqs, dlq_arn)
    assert task["Status"] == "CANCELLED" and task["MaxNumberOfMessagesPerSecond"] == 1
    assert task["ApproximateNumberOfMessagesToMove"] == 5 and task["ApproximateNumberOfMessagesMoved"] <= moved + 1
    assert len(bodies(sqs, source)) == task["ApproximateNumberOfMessagesMoved"] < 5


def test_tasks_are_listed_most_recent_first_and_an_unknown_queue_is_not_found(sqs):
    dlq, _ = queues(sqs)
    dlq_arn = arn_of(sqs, dlq)
    handles = []
    for _ in range(2):
        handles.append(sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"])
        finished(sqs, dlq_arn)

    listed = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]

    assert [task["TaskHandle"] for task in listed] == handles[::-1]
    with pytest.raises(ClientError) as missing:
        sqs.list_message_move_tasks(SourceArn=f"{dlq_arn}-gone")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
