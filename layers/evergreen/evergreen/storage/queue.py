"""The segment-changes queue: publishing changes and erasures, and postponing or dead-lettering failures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evergreen.domain.changes import ListMove, ProfileErasure, SegmentChange
from evergreen.service.ports import Received

SQS_BATCH = 10
MAX_VISIBILITY_S = 43_200
"""SQS's ceiling for a message's visibility timeout (12 hours)."""


class PublishFailed(Exception):
    """Some changes did not reach the queue; the outbox index still holds them."""


class SqsChangePublisher:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def publish(self, changes: Sequence[SegmentChange]) -> None:
        failed = 0
        for offset in range(0, len(changes), SQS_BATCH):
            batch = changes[offset : offset + SQS_BATCH]
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": change.model_dump_json()} for index, change in enumerate(batch)
                ],
            )
            failed += len(response.get("Failed", []))
        if failed:
            raise PublishFailed(f"{failed} of {len(changes)} changes were not enqueued")

    def publish_erasure(self, erasure: ProfileErasure) -> None:
        """Enqueue a redacted customer's Klaviyo clean-up; raises when SQS did not take it."""
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=erasure.model_dump_json())

    def publish_list_moves(self, moves: Sequence[ListMove]) -> None:
        """Enqueue a list move's messages, ten per request; raises PublishFailed when some did not reach the queue."""
        SqsDelayedSender(self._client, self._queue_url).send_delayed([(move.model_dump_json(), 0) for move in moves])


class SqsDelayedSender:
    """Sends message bodies that each become visible after their own delay (0-900 s)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send_delayed(self, messages: Sequence[tuple[str, int]]) -> None:
        """(body, delay seconds) pairs, ten per request; raises PublishFailed when some did not reach the queue."""
        failed = 0
        for offset in range(0, len(messages), SQS_BATCH):
            batch = messages[offset : offset + SQS_BATCH]
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": body, "DelaySeconds": delay}
                    for index, (body, delay) in enumerate(batch)
                ],
            )
            failed += len(response.get("Failed", []))
        if failed:
            raise PublishFailed(f"{failed} of {len(messages)} messages were not enqueued")


def _in_tens(
    messages: Sequence[Received], send: Callable[[list[dict[str, Any]], Sequence[Received]], dict[str, Any]]
) -> set[str]:
    """Call `send(entries, batch)` for each ten messages (entry ids "0".."9"); the ids of those SQS failed."""
    failed: set[str] = set()
    for offset in range(0, len(messages), SQS_BATCH):
        batch = messages[offset : offset + SQS_BATCH]
        response = send([{"Id": str(index)} for index in range(len(batch))], batch)
        failed |= {batch[int(entry["Id"])].message_id for entry in response.get("Failed", [])}
    return failed


class SqsRedelivery:
    """What the sync does with the messages it could not deliver to Klaviyo (`service.ports.Redelivery`).

    - `postpone`: ChangeMessageVisibility per message, so a throttled or failing message comes back after
      its own back-off instead of the queue's VisibilityTimeout.
    - `dead_letter`: poison (retrying cannot help) goes to the DLQ at once, with the reason as a message
      attribute, instead of burning receives until maxReceiveCount.
    Both return the message ids they could not handle (those stay failed and follow the queue's defaults).
    """

    def __init__(self, client: Any, queue_url: str, dead_letter_url: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url

    def postpone(self, messages: Sequence[Received], delay_s: Mapping[str, int]) -> set[str]:
        def send(entries: list[dict[str, Any]], batch: Sequence[Received]) -> dict[str, Any]:
            return dict(
                self._client.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            **entry,
                            "ReceiptHandle": message.receipt_handle,
                            "VisibilityTimeout": max(0, min(MAX_VISIBILITY_S, delay_s[message.message_id])),
                        }
                        for entry, message in zip(entries, batch, strict=True)
                    ],
                )
            )

        return _in_tens(messages, send)

    def dead_letter(self, messages: Sequence[Received], reasons: Mapping[str, str]) -> set[str]:
        if not self._dead_letter_url:
            return {message.message_id for message in messages}

        def send(entries: list[dict[str, Any]], batch: Sequence[Received]) -> dict[str, Any]:
            return dict(
                self._client.send_message_batch(
                    QueueUrl=self._dead_letter_url,
                    Entries=[
                        {
                            **entry,
                            "MessageBody": message.body,
                            "MessageAttributes": {
                                "reason": {
                                    "DataType": "String",
                                    "StringValue": reasons.get(message.message_id, "poison"),
                                },
                                "source_message_id": {"DataType": "String", "StringValue": message.message_id},
                            },
                        }
                        for entry, message in zip(entries, batch, strict=True)
                    ],
                )
            )

        return _in_tens(messages, send)


class SqsBacklog:
    """The segment-changes queue read directly by the sync's drain (`service.ports.ChangeBacklog`).

    Short polls only (WaitTimeSeconds 0): the drain takes what is already waiting and never delays a batch.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def receive(self, max_messages: int, visibility_s: int) -> list[Received]:
        response = self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(1, min(SQS_BATCH, max_messages)),
            WaitTimeSeconds=0,
            VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, visibility_s)),
            AttributeNames=["ApproximateReceiveCount"],
        )
        return [
            Received(
                message["MessageId"],
                message["ReceiptHandle"],
                message["Body"],
                int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[Received]) -> set[str]:
        def send(entries: list[dict[str, Any]], batch: Sequence[Received]) -> dict[str, Any]:
            return dict(
                self._client.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {**entry, "ReceiptHandle": message.receipt_handle}
                        for entry, message in zip(entries, batch, strict=True)
                    ],
                )
            )

        return _in_tens(messages, send)
