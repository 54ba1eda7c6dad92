"""HTTP API (payload v2) requests and responses for the webhook handlers."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2


class BadRequestBody(ValueError):
    """The event's body cannot be read as sent (e.g. marked base64 but not base64): answer 400."""


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body exactly as sent: signatures are computed over these bytes. Raises `BadRequestBody`."""
    body = event.body or ""
    try:
        return base64.b64decode(body, validate=True) if event.is_base64_encoded else body.encode()
    except ValueError as error:  # binascii.Error, UnicodeEncodeError
        raise BadRequestBody(
            "the body is not valid base64" if event.is_base64_encoded else "the body is not text"
        ) from error


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
