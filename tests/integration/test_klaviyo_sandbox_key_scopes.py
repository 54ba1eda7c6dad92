"""The Klaviyo sandbox can play a private key without some scopes: Klaviyo's 403, naming the missing scopes."""

from __future__ import annotations

import httpx


def get(sandbox, path: str, key: str) -> httpx.Response:
    return httpx.get(
        f"{sandbox.url}{path}", headers={"Authorization": f"Klaviyo-API-Key {key}", "revision": "2025-10-15"}
    )


def test_a_key_denied_a_scope_gets_403_naming_it_and_other_keys_do_not(klaviyo_sandbox):
    control = httpx.post(
        f"{klaviyo_sandbox.url}/_sandbox/key-scopes", json={"key": "pk_narrow", "denied": ["lists:read"]}
    )
    assert control.status_code == 200
    try:
        refused = get(klaviyo_sandbox, "/api/lists/", "pk_narrow")
        allowed = get(klaviyo_sandbox, "/api/lists/", "pk_wide")
        other_scope = get(klaviyo_sandbox, "/api/metrics/", "pk_narrow")
    finally:
        klaviyo_sandbox.deny_scopes("pk_narrow", [])

    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "permission_denied"
    assert error["detail"] == "Your API key is missing required scopes: lists:read."
    assert allowed.status_code == 200 and allowed.json()["data"] == []
    assert other_scope.status_code == 200


def test_a_key_without_read_access_cannot_write_either(klaviyo_sandbox):
    klaviyo_sandbox.deny_scopes("pk_narrow", ["lists:read"])
    try:
        response = httpx.post(
            f"{klaviyo_sandbox.url}/api/lists/L1/relationships/profiles/",
            headers={"Authorization": "Klaviyo-API-Key pk_narrow", "revision": "2025-10-15"},
            json={"data": [{"type": "profile", "id": "P1"}]},
        )
    finally:
        klaviyo_sandbox.deny_scopes("pk_narrow", [])

    assert response.status_code == 403 and "lists:write" in response.json()["errors"][0]["detail"]
