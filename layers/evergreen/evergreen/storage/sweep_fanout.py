"""The full re-evaluation's fan-out: asynchronous invocations of the sweep function, one per group of scan segments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class LambdaSweepFanout:
    """Invokes `function_name` (the sweep itself) with `{"full": true, "group": n}`, without waiting."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def dispatch(self, groups: Sequence[int]) -> None:
        for group in groups:
            self._client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                Payload=json.dumps({"full": True, "group": group}).encode(),
            )
