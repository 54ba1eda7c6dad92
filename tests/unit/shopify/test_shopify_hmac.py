"""Webhook signatures: only a correct HMAC of the exact raw body is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from evergreen.shopify.hmac import sign_shopify_body, verify_shopify_hmac

SECRET = "shpss_test_secret"
BODY = b'{"id":706405506930370084,"email":"bob@biller.com"}'


def test_a_signature_made_as_shopify_documents_it_verifies() -> None:
    header = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()

    assert sign_shopify_body(BODY, SECRET) == header
    assert verify_shopify_hmac(BODY, header, SECRET)


def test_a_body_changed_by_one_byte_is_rejected() -> None:
    header = sign_shopify_body(BODY, SECRET)

    assert not verify_shopify_hmac(BODY.replace(b"bob", b"rob"), header, SECRET)


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    assert not verify_shopify_hmac(BODY, sign_shopify_body(BODY, "another"), SECRET)


def test_a_missing_header_is_rejected() -> None:
    assert not verify_shopify_hmac(BODY, None, SECRET)
    assert not verify_shopify_hmac(BODY, "", SECRET)


def test_garbled_headers_are_rejected_without_raising() -> None:
    for header in ("not base64!!", "é", "abc", "=" * 8, sign_shopify_body(BODY, SECRET)[:-4]):
        assert not verify_shopify_hmac(BODY, header, SECRET)


def test_an_empty_secret_never_verifies() -> None:
    assert not verify_shopify_hmac(BODY, sign_shopify_body(BODY, ""), "")


def test_surrounding_whitespace_in_the_header_is_tolerated() -> None:
    assert verify_shopify_hmac(BODY, f"  {sign_shopify_body(BODY, SECRET)}\n", SECRET)


@given(body=st.binary(), secret=st.text(min_size=1), header=st.one_of(st.none(), st.text()))
def test_verification_never_raises_and_accepts_only_the_true_signature(
    body: bytes, secret: str, header: str | None
) -> None:
    assert verify_shopify_hmac(body, sign_shopify_body(body, secret), secret)
    expected = header is not None and header.strip() == sign_shopify_body(body, secret)
    assert verify_shopify_hmac(body, header, secret) == expected
