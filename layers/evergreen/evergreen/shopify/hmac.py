"""Shopify webhook signatures: base64 HMAC-SHA256 of the raw request body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def sign_shopify_body(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` header value Shopify would send for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_shopify_hmac(body: bytes, header_value: str | None, secret: str) -> bool:
    """True only when the header is a well-formed signature of `body` under `secret`.

    A missing or garbled header, or an empty secret, is simply False. Compared in constant time.
    """
    if not header_value or not secret:
        return False
    try:
        provided = base64.b64decode(header_value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(provided, expected)
