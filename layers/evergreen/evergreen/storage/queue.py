"""The segment-changes queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evergreen.domain.changes import SegmentChange

SQS_BATCH = 10


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
