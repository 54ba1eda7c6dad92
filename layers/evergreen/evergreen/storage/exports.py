"""Customer data exports for customers/data_request."""

from __future__ import annotations

import json
from typing import Any


class S3DataExporter:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def export(self, key: str, document: dict[str, Any]) -> str:
        """Write the document as JSON under `key`; returns the object key."""
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document, indent=2, sort_keys=True, default=str).encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        return key
