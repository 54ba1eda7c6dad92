"""Shopify's own libraries' webhook HMAC test vectors: Evergreen verifies exactly what they verify.

Each vector is copied from a test in one of Shopify's official libraries (repository, path, commit as indexed):
the raw body, the secret the test configures and the header value the test expects to pass or fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evergreen.shopify.headers import ConflictingHeaders, read_shopify_headers
from evergreen.shopify.hmac import sign_shopify_body, verify_shopify_hmac


@dataclass(frozen=True)
class Vector:
    source: str
    body: bytes
    secret: str
    header: str
    valid: bool


VECTORS = [
    Vector(
        source="Shopify/shopify-api-js packages/shopify-api/lib/webhooks/__tests__/validate.test.ts "
        "@7b21511ef0c3b369d88e7c5ec3befadd1de8ac41 ('returns true for valid request'; apiSecretKey of the test "
        "config is 'test_secret_key')",
        body=b'{"foo": "bar"}',
        secret="test_secret_key",
        header="B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        valid=True,
    ),
    Vector(
        source="Shopify/shopify_app test/shopify_app/controller_concerns/webhook_verification_test.rb "
        "@47dcfd9c8510ea6d26e5fe198315a3237761427c ('authorized requests should be successful'; config.secret "
        "'secret', body the form-encoded params foo=anything)",
        body=b"foo=anything",
        secret="secret",
        header="yCGX/RrK4fcuNtr3ztk5tQGsOBjcAzHpGLdMUrbV8yI=",
        valid=True,
    ),
    Vector(
        source="Shopify/shopify_app test/shopify_app/controller_concerns/webhook_verification_test.rb "
        "@47dcfd9c8510ea6d26e5fe198315a3237761427c ('authorized request validated with old secret should be "
        "successful'; config.old_secret 'old_secret')",
        body=b"foo=anything",
        secret="old_secret",
        header="XqRcjrSv57VACn6apEO9znyu/wkN1VC7QxdSPwK3Hzs=",
        valid=True,
    ),
    Vector(
        source="Shopify/shopify_app test/shopify_app/controller_concerns/webhook_verification_test.rb "
        "@47dcfd9c8510ea6d26e5fe198315a3237761427c ('un-verified request returns unauthorized')",
        body=b"foo=anything",
        secret="secret",
        header="invalid_hmac",
        valid=False,
    ),
    Vector(
        source="Shopify/shopify_app webhook_verification_test.rb: the current secret's signature does not verify "
        "under the old secret alone",
        body=b"foo=anything",
        secret="old_secret",
        header="yCGX/RrK4fcuNtr3ztk5tQGsOBjcAzHpGLdMUrbV8yI=",
        valid=False,
    ),
]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.source[:60])
def test_shopifys_published_vectors_verify_as_shopifys_libraries_say(vector: Vector) -> None:
    assert verify_shopify_hmac(vector.body, vector.header, vector.secret) is vector.valid
    if vector.valid:
        assert sign_shopify_body(vector.body, vector.secret) == vector.header


def test_either_secret_of_a_rotation_verifies_as_in_shopify_app() -> None:
    """shopify_app verifies with `secret`, then `old_secret`; Evergreen tries the shop's (current, previous)."""
    secrets = ("secret", "old_secret")
    for header in ("yCGX/RrK4fcuNtr3ztk5tQGsOBjcAzHpGLdMUrbV8yI=", "XqRcjrSv57VACn6apEO9znyu/wkN1VC7QxdSPwK3Hzs="):
        assert any(verify_shopify_hmac(b"foo=anything", header, secret) for secret in secrets)
    assert not any(verify_shopify_hmac(b"foo=anything", "invalid_hmac", secret) for secret in secrets)


def test_a_header_with_the_trailing_newline_rubys_base64_encode64_adds_verifies() -> None:
    """Shopify/shopify-api-ruby test/webhooks/registry_test.rb signs its "{}" body with `Base64.encode64`, which
    ends the value with a newline; the library accepts it. The secret there is the test context's own."""
    header = sign_shopify_body(b"{}", "API_SECRET_KEY") + "\n"

    assert verify_shopify_hmac(b"{}", header, "API_SECRET_KEY")


def test_the_newer_header_family_is_read_as_shopifys_libraries_read_it() -> None:
    """Shopify/shopify-app-js packages/apps/shopify-api/lib/webhooks/header-names.ts names the unprefixed family
    (`shopify-hmac-sha256`, `shopify-topic`, `shopify-shop-domain`, `shopify-api-version`, `shopify-event-id`,
    `shopify-triggered-at`); validate.ts reads it when no `X-Shopify-Hmac-Sha256` is present."""
    headers = read_shopify_headers(
        {
            "shopify-hmac-sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
            "shopify-topic": "orders/create",
            "shopify-shop-domain": "shop1.myshopify.io",
            "shopify-api-version": "2023-01",
            "shopify-event-id": "123456789",
            "shopify-triggered-at": "2023-01-01T00:00:00Z",
        }
    )

    assert headers.shop == "shop1.myshopify.io"
    assert headers.event_id == "123456789"
    assert verify_shopify_hmac(b'{"foo": "bar"}', headers.hmac, "test_secret_key")


def test_an_events_delivery_with_an_invalid_hmac_in_both_families_is_refused() -> None:
    """Shopify/shopify-app-js shopify-app-remix authenticate.webhook test 'throws a 401 on invalid events HMAC'
    sends `shopify-hmac-sha256` and `X-Shopify-Hmac-Sha256` both 'invalid_hmac'."""
    headers = read_shopify_headers({"shopify-hmac-sha256": "invalid_hmac", "X-Shopify-Hmac-Sha256": "invalid_hmac"})

    assert not verify_shopify_hmac(b"{}", headers.hmac, "test_secret_key")


def test_families_that_disagree_are_refused_rather_than_one_chosen() -> None:
    with pytest.raises(ConflictingHeaders) as refused:
        read_shopify_headers({"X-Shopify-Shop-Domain": "a.myshopify.com", "shopify-shop-domain": "b.myshopify.com"})

    assert "shop-domain" in str(refused.value)
    assert "a.myshopify.com" not in str(refused.value)
