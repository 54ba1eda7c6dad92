"""HTTP API (payload v2) requests and responses for the webhook handlers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2


class BadRequestBody(ValueError):
    """The request body cannot be read as sent (for example, `isBase64Encoded` with a body that is not base64)."""


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body exactly as sent: signatures are computed over these bytes. Raises BadRequestBody."""
    body = event.body or ""
    if not event.is_base64_encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestBody("the body is marked base64 but is not base64") from None


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
