"""SQS's message-move tasks (dead-letter queue redrive) for moto, which implements none of them.

`message_move_tasks()` adds to moto's SQS the three actions of the SQS API reference, with its request and
response shapes (boto3 speaks SQS's JSON protocol: `X-Amz-Target: AmazonSQS.<Action>`):

- StartMessageMoveTask(SourceArn, [DestinationArn], [MaxNumberOfMessagesPerSecond]) -> TaskHandle. The source
  must be a dead-letter queue of another queue (InvalidParameterValue otherwise), with no task running
  (UnsupportedOperation). Without DestinationArn each message goes back to the queue it was sent to when that
  queue's RedrivePolicy names this dead-letter queue, else to the only such queue; a message with several
  candidates and no way to tell fails the task (FAILED, FailureReason). MaxNumberOfMessagesPerSecond is 1 to 500.
- ListMessageMoveTasks(SourceArn, [MaxResults 1-10, default 1]) -> Results, most recent first: TaskHandle,
  Status (RUNNING, COMPLETED, CANCELLING, CANCELLED, FAILED), SourceArn, DestinationArn and
  MaxNumberOfMessagesPerSecond when given, ApproximateNumberOfMessagesMoved, ApproximateNumberOfMessagesToMove,
  FailureReason when FAILED, StartedTimestamp (epoch milliseconds).
- CancelMessageMoveTask(TaskHandle) -> ApproximateNumberOfMessagesMoved; only a RUNNING task can be cancelled.

A task moves, on its own thread, the number of messages the queue held when it started
(ApproximateNumberOfMessagesToMove), as they are visible, at the given rate or as fast as it can. A moved
message is sent anew to its destination with its body, message attributes and system attributes (its receive
count starts again at zero) and deleted from the dead-letter queue.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

MAX_RATE = 500
"""MaxNumberOfMessagesPerSecond's upper bound."""
MAX_RESULTS = 10
WAIT_FOR_VISIBLE_SECONDS = 0.05
"""How often a task looks again for messages that are in flight in the dead-letter queue."""
ORIGIN = "evergreen_origin_queue_arn"
"""Set on each message moto stores: the queue it was sent to (SQS redrives a message back there)."""


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    started_ms: int
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None
    cancelling: threading.Event = field(default_factory=threading.Event)

    def entry(self) -> dict[str, Any]:
        """A ListMessageMoveTasksResultEntry."""
        entry: dict[str, Any] = {
            "TaskHandle": self.handle,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.destination_arn:
            entry["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.status == "FAILED" and self.failure:
            entry["FailureReason"] = self.failure
        return entry


_tasks: dict[str, list[MoveTask]] = {}
"""Per source queue ARN, its tasks, oldest first."""
_tasks_lock = threading.Lock()


@functools.cache
def _errors() -> tuple[type[Exception], type[Exception], type[Exception]]:
    """ResourceNotFoundException, UnsupportedOperation, InvalidParameterValue: moto serialises them as SQS does."""
    from moto.sqs.exceptions import SQSException  # noqa: PLC0415 - moto is a dev dependency

    class ResourceNotFoundError(SQSException):
        code = "ResourceNotFoundException"

    class UnsupportedOperationError(SQSException):
        code = "UnsupportedOperation"

    class InvalidParameterValueError(SQSException):
        code = "InvalidParameterValue"

    return ResourceNotFoundError, UnsupportedOperationError, InvalidParameterValueError


def _queue_of(arn: str) -> Any:
    """The moto queue an ARN names (any account or region), or ResourceNotFoundException."""
    from moto.sqs.models import sqs_backends  # noqa: PLC0415

    not_found = _errors()[0]
    parts = str(arn or "").split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise not_found(f"The resource that you specified for the SourceArn parameter doesn't exist: {arn}")
    _, _, _, region, account, name = parts
    queue = sqs_backends[account][region].queues.get(name)
    if queue is None:
        raise not_found(f"The specified queue does not exist: {arn}")
    return queue


def _sources_of(dlq: Any) -> list[Any]:
    """The queues whose RedrivePolicy names `dlq` as their dead-letter queue."""
    from moto.sqs.models import sqs_backends  # noqa: PLC0415

    backend = sqs_backends[dlq.account_id][dlq.region]
    return [queue for queue in backend.queues.values() if queue.dead_letter_queue is dlq]


def start(source_arn: str, destination_arn: str | None, rate: int | None) -> str:
    """StartMessageMoveTask: returns the new task's handle; the task runs on its own thread."""
    _, unsupported, invalid = _errors()
    dlq = _queue_of(source_arn)
    sources = _sources_of(dlq)
    if not sources:
        raise invalid("Source queue must be configured as a Dead Letter Queue.")
    destination = _queue_of(destination_arn) if destination_arn else None
    if rate is not None and not 1 <= int(rate) <= MAX_RATE:
        raise invalid(f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid: 1 to {MAX_RATE}.")
    with _tasks_lock:
        tasks = _tasks.setdefault(dlq.queue_arn, [])
        if any(task.status in ("RUNNING", "CANCELLING") for task in tasks):
            raise unsupported(
                "There is already a task running. Only one active task is allowed for a source queue arn at a "
                "given time."
            )
        handle = base64.b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": dlq.queue_arn}).encode()
        ).decode()
        task = MoveTask(
            handle=handle,
            source_arn=dlq.queue_arn,
            destination_arn=destination_arn or None,
            rate=int(rate) if rate is not None else None,
            to_move=len(dlq._messages),
            started_ms=int(time.time() * 1000),
        )
        tasks.append(task)
    threading.Thread(target=_run, args=(task, dlq, destination, sources), name="sqs-message-move", daemon=True).start()
    return handle


def listed(source_arn: str, max_results: int | None) -> list[dict[str, Any]]:
    """ListMessageMoveTasks: the most recent tasks of a source queue, newest first."""
    invalid = _errors()[2]
    count = 1 if max_results is None else int(max_results)
    if not 1 <= count <= MAX_RESULTS:
        raise invalid(f"Value {count} for parameter MaxResults is invalid: 1 to {MAX_RESULTS}.")
    dlq = _queue_of(source_arn)
    with _tasks_lock:
        return [task.entry() for task in reversed(_tasks.get(dlq.queue_arn, []))][:count]


def cancel(handle: str) -> int:
    """CancelMessageMoveTask: stops a running task after the message it is moving; returns messages moved."""
    not_found, unsupported, _ = _errors()
    try:
        source_arn = json.loads(base64.b64decode(handle))["sourceArn"]
    except (ValueError, KeyError, TypeError):
        raise not_found("The specified task handle is not valid.") from None
    with _tasks_lock:
        task = next((task for task in _tasks.get(source_arn, []) if task.handle == handle), None)
        if task is None:
            raise not_found("The specified task handle does not exist.")
        if task.status != "RUNNING":
            raise unsupported(f"Only a running task can be cancelled; this one is {task.status}.")
        task.status = "CANCELLING"
        task.cancelling.set()
        return task.moved


def _run(task: MoveTask, dlq: Any, destination: Any | None, sources: list[Any]) -> None:
    interval = 1 / task.rate if task.rate else 0.0
    try:
        while task.moved < task.to_move and not task.cancelling.is_set():
            message = _take_visible(dlq)
            if message is None:
                if not dlq._messages:  # deleted or received elsewhere: nothing left to move
                    break
                task.cancelling.wait(WAIT_FOR_VISIBLE_SECONDS)
                continue
            target = destination or _origin_of(message, sources)
            if target is None:
                with dlq._messages_lock:
                    dlq._messages.append(message)
                raise LookupError(
                    f"message {message.id} has no original source queue among "
                    f"{', '.join(sorted(queue.queue_arn for queue in sources))}: give a DestinationArn"
                )
            _send_anew(message, target)
            task.moved += 1
            if interval:
                task.cancelling.wait(interval)
    except Exception as error:
        with _tasks_lock:
            task.status, task.failure = "FAILED", str(error)
        return
    with _tasks_lock:
        task.status = "CANCELLED" if task.cancelling.is_set() else "COMPLETED"


def _take_visible(dlq: Any) -> Any | None:
    """Remove and return the dead-letter queue's oldest visible message, if any."""
    with dlq._messages_lock:
        for message in dlq._messages:
            if message.visible and not message.delayed:
                dlq._messages = [kept for kept in dlq._messages if kept is not message]
                dlq.pending_messages.discard(message)
                return message
    return None


def _origin_of(message: Any, sources: list[Any]) -> Any | None:
    origin = getattr(message, ORIGIN, None)
    for queue in sources:
        if queue.queue_arn == origin:
            return queue
    return sources[0] if len(sources) == 1 else None


def _send_anew(message: Any, destination: Any) -> None:
    """Send `message` to `destination` as a new message: the same body and attributes, never received."""
    from moto.sqs.models import Message  # noqa: PLC0415

    moved = Message(message.id, message.body, dict(message.system_attributes))
    moved.message_attributes = message.message_attributes
    moved.group_id = message.group_id
    moved.deduplication_id = message.deduplication_id
    moved.sequence_number = message.sequence_number
    setattr(moved, ORIGIN, getattr(message, ORIGIN, None))
    moved.mark_sent()
    destination.add_message(moved)


def message_move_tasks() -> None:
    """Teach moto's SQS StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask (see above)."""
    from moto.core.responses import ActionResult  # noqa: PLC0415
    from moto.sqs.models import SQSBackend  # noqa: PLC0415
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    if getattr(SQSResponse, "start_message_move_task", None) is not None:
        return

    def start_message_move_task(self: Any) -> ActionResult:
        handle = start(
            self._get_param("SourceArn"),
            self._get_param("DestinationArn"),
            self._get_param("MaxNumberOfMessagesPerSecond"),
        )
        return ActionResult({"TaskHandle": handle})

    def list_message_move_tasks(self: Any) -> ActionResult:
        return ActionResult({"Results": listed(self._get_param("SourceArn"), self._get_param("MaxResults"))})

    def cancel_message_move_task(self: Any) -> ActionResult:
        return ActionResult({"ApproximateNumberOfMessagesMoved": cancel(self._get_param("TaskHandle"))})

    SQSResponse.start_message_move_task = start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = list_message_move_tasks  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = cancel_message_move_task  # type: ignore[attr-defined]

    original_send = SQSBackend.send_message

    def send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        message = original_send(self, queue_name, *args, **kwargs)
        setattr(message, ORIGIN, self.get_queue(queue_name).queue_arn)
        return message

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
