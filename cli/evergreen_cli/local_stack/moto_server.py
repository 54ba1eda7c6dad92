"""moto server for the local stack and integration tests, with DynamoDB writes made atomic.

moto's threaded server runs requests concurrently, and its DynamoDB backend does not lock an item
between a condition check and the write, so two racing conditional writes could both succeed.
DynamoDB guarantees they don't. Serialising DynamoDB requests restores that guarantee; other
services (SQS long polls among them) keep running concurrently.

moto's SQS also computes every attribute of a queue, three of which count the whole queue, each time it
needs one: once per message sent (for ContentBasedDeduplication) and once per message received (for its
retention check). A backlog of N messages cost O(N) per message either way (50 ms a message received at
2,000; about 25 minutes to publish 10,000). `MotoServer` makes a queue's attributes a mapping that computes
each attribute when it is read (`attributes_when_read`): the same values, at the cost of the ones asked for.

moto's DynamoDB deep-copies every table a TransactWriteItems names before applying it, to roll back on a
cancelled transaction: O(table) per transaction, which made a backfill of a few thousand customers crawl.
`transactions_back_up_touched_items` keeps a copy of only the items the transaction names, and puts those
back when it is cancelled: the same outcome, at the cost of the items written.

moto's Query also reads and sorts every item of the table, on the table and on an index alike, then keeps
those with the asked-for partition key: O(table log table) per query. `queries_read_only_their_partition`
hands it only the partition's items (on the table, by its key; on an index, by comparing the key values
as stored), so a query costs what its partition holds, as on DynamoDB.

moto's SQS has no message-move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask),
which `evergreen redrive` uses: `message_move_tasks` (moto_message_moves.py) adds them.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from moto.core.utils import camelcase_to_underscores
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from evergreen_cli.local_stack.moto_message_moves import message_move_tasks

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialisedDynamoDb:
    """WSGI middleware: one DynamoDB request at a time, everything else as it comes."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self._lock:
                return list(self._app(environ, start_response))
        return self._app(environ, start_response)


class QueueAttributes(Mapping[str, Any]):
    """A moto queue's attributes (`Queue.attributes`), each computed when it is read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = [*queue.BASE_ATTRIBUTES]
        names += queue.FIFO_ATTRIBUTES if queue.fifo_queue else []
        names += queue.KMS_ATTRIBUTES if queue.kms_master_key_id else []
        self._names = list(dict.fromkeys(names))

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        value = getattr(self._queue, camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def attributes_when_read() -> None:
    """Give moto's SQS queues `QueueAttributes` instead of a dict built whole on every read."""
    from moto.sqs.models import Queue  # noqa: PLC0415 - moto is a dev dependency

    Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]


def transactions_back_up_touched_items() -> None:
    """Make moto's TransactWriteItems back up (and on cancellation restore) only the items it names."""
    from moto.dynamodb import models  # noqa: PLC0415 - moto is a dev dependency
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "backs_up_touched_items", False):
        return
    # The whole-table copy the original makes becomes the table itself; rolling back to it is then a no-op,
    # and the wrapper below restores the touched items instead.
    models.copy = types.SimpleNamespace(  # type: ignore[assignment,attr-defined]
        deepcopy=lambda value, memo=None: value if isinstance(value, Table) else copy.deepcopy(value, memo)
    )
    original = backend.transact_write_items

    def touched(self: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, DynamoType, Any, Any]]:
        saved = []
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = self.tables.get(operation.get("TableName"))
            if table is None:
                continue
            key = operation.get("Key") or {
                name: operation["Item"][name]
                for name in (table.hash_key_attr, table.range_key_attr)
                if name and name in operation.get("Item", {})
            }
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        return saved

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = touched(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None and range_key is not None:
                    table.items.get(hash_key, {}).pop(range_key, None)
                elif item is None:
                    table.items.pop(hash_key, None)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise

    transact_write_items.backs_up_touched_items = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def queries_read_only_their_partition() -> None:
    """Make moto's Query read only the items of the partition it asks for, not the whole table."""
    from moto.dynamodb.models.table import Table  # noqa: PLC0415 - moto is a dev dependency

    if getattr(Table.query, "reads_only_its_partition", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items
    signature = inspect.signature(original_query)
    asked = threading.local()

    def stored(value: Any) -> tuple[str, Any] | None:
        return None if value is None else (value.type, value.value)

    def items_of(table: Any) -> Iterator[Any]:
        for partition in table.items.values():
            yield from partition.values() if table.range_key_attr else [partition]

    def all_items(self: Any) -> list[Any]:
        wanted = getattr(asked, "wanted", None)
        if wanted is None or wanted[0] is not self:
            return original_all_items(self)
        _, hash_key, conditions = wanted
        if hash_key is not None:
            partition = self.items.get(hash_key)
            items = [] if partition is None else list(partition.values()) if self.range_key_attr else [partition]
        else:
            expected = [(name, stored(value)) for name, value in conditions]
            items = [item for item in items_of(self) if all(stored(item.attrs.get(n)) == v for n, v in expected)]
        return sorted(items, key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key)

    @functools.wraps(original_query)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        if call.get("index_name"):
            wanted = (self, None, call.get("hash_key_conditions") or [])
        else:
            wanted = (self, call.get("hash_key"), [])
        if wanted[1] is None and not wanted[2]:
            return original_query(self, *args, **kwargs)
        asked.wanted = wanted
        try:
            return original_query(self, *args, **kwargs)
        finally:
            asked.wanted = None

    query.reads_only_its_partition = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def apply_patches() -> None:
    """Every patch: moto as the local stack runs it (the backfill bench uses it in-process too)."""
    attributes_when_read()
    transactions_back_up_touched_items()
    queries_read_only_their_partition()
    message_move_tasks()


class QuietRequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are not logged: the stack prints what matters."""


class MotoServer:
    """moto server on a background thread; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        apply_patches()
        app = SerialisedDynamoDb(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
