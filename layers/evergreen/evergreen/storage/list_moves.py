"""The Klaviyo lists the sweep last filled, and an unfinished list move's progress (items, not profiles).

The mapping (segment -> Klaviyo list id) is an attribute of the definitions marker (`meta#evergreen` /
`definitions`); a move in progress is its own item (`meta#evergreen` / `list-move`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from evergreen.domain.list_moves import SegmentMove
from evergreen.service.ports import ListMoveProgress
from evergreen.storage.profiles import META_KEY

PROGRESS_KEY = {"pk": {"S": "meta#evergreen"}, "sk": {"S": "list-move"}}


class DynamoListMoves:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def filled_list_ids(self) -> dict[str, str] | None:
        """The mapping the lists were last filled for; None before any sweep recorded one."""
        response = self._client.get_item(TableName=self._table, Key=META_KEY, ConsistentRead=True)
        found = response.get("Item", {}).get("klaviyo_list_ids", {}).get("S")
        return dict(json.loads(found)) if found is not None else None

    def record_filled_list_ids(self, list_ids: Mapping[str, str]) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=META_KEY,
            UpdateExpression="SET klaviyo_list_ids = :l",
            ExpressionAttributeValues={":l": {"S": json.dumps(dict(sorted(list_ids.items())))}},
        )

    def progress(self) -> ListMoveProgress | None:
        response = self._client.get_item(TableName=self._table, Key=PROGRESS_KEY, ConsistentRead=True)
        found = response.get("Item", {}).get("progress", {}).get("S")
        if found is None:
            return None
        saved = json.loads(found)
        return ListMoveProgress(
            target=saved["target"],
            moves={segment: SegmentMove(tuple(move["from"]), move["to"]) for segment, move in saved["moves"].items()},
            cursors={int(segment): cursor for segment, cursor in saved["cursors"].items()},
        )

    def save_progress(self, progress: ListMoveProgress) -> None:
        saved = {
            "target": progress.target,
            "moves": {segment: move.as_dict() for segment, move in progress.moves.items()},
            "cursors": {str(segment): cursor for segment, cursor in progress.cursors.items()},
        }
        self._client.put_item(TableName=self._table, Item={**PROGRESS_KEY, "progress": {"S": json.dumps(saved)}})

    def finish(self, list_ids: Mapping[str, str]) -> None:
        """The lists are filled for `list_ids`: record it, forget the progress."""
        self.record_filled_list_ids(list_ids)
        self._client.delete_item(TableName=self._table, Key=PROGRESS_KEY)
