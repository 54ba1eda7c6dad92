"""Check a Klaviyo API request against Klaviyo's published OpenAPI spec (development and tests only).

Used by the Klaviyo sandbox (every recorded request carries `spec_valid`/`spec_errors`) and by
tests/contract/test_klaviyo_contract.py. Needs openapi-core (a dev dependency); the spec is
../shared/klaviyo/openapi/stable.json. It fails strict spec validation, so it is loaded with
`Config(spec_validator_cls=None)`, once per process (about a second for its 3 MB).

Beyond openapi-core's checks (path, method, parameters, security, body schema), this also flags:
- body fields the schema does not declare (openapi-core allows unknown fields; Klaviyo ignores or
  rejects them, and either way they are our bug);
- headers the spec requires but openapi-core lets through: `revision` equal to the spec's version,
  `Authorization: Klaviyo-API-Key ...`, and the JSON:API content type and accept header.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

JSON_API = "application/vnd.api+json"
SPEC_ENV = "EVERGREEN_KLAVIYO_SPEC"
_METHODS = ("get", "post", "put", "patch", "delete")


def default_spec_path() -> Path | None:
    """$EVERGREEN_KLAVIYO_SPEC, else <repo>/../shared/klaviyo/openapi/stable.json; None when absent."""
    override = os.environ.get(SPEC_ENV)
    candidates = [Path(override)] if override else []
    repo_root = Path(__file__).resolve().parents[3]
    candidates.append(repo_root.parent / "shared" / "klaviyo" / "openapi" / "stable.json")
    return next((path for path in candidates if path.is_file()), None)


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    item: Mapping[str, Any]


@dataclass
class KlaviyoSpec:
    """A loaded spec: the openapi-core app, the raw document and its routes."""

    path: Path
    raw: Mapping[str, Any]
    app: Any
    load_seconds: float
    routes: list[_Route] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return str(self.raw["info"]["version"])

    def operation(self, method: str, path: str) -> Mapping[str, Any] | None:
        """The spec's operation object for a concrete method and path, or None."""
        for route in self.routes:
            if route.pattern.match(path):
                operation = route.item.get(method.lower())
                if isinstance(operation, Mapping):
                    return operation
        return None

    def rate_limit(self, operation_id: str) -> tuple[int, int] | None:
        """(burst per second, steady per minute) from the operation's `x-klaviyo-ratelimit`."""
        for route in self.routes:
            for method in _METHODS:
                operation = route.item.get(method)
                if isinstance(operation, Mapping) and operation.get("operationId") == operation_id:
                    limit = operation.get("x-klaviyo-ratelimit") or {}
                    burst, steady = str(limit.get("burst", "")), str(limit.get("steady", ""))
                    if burst.endswith("/s") and steady.endswith("/m"):
                        return int(burst[:-2]), int(steady[:-2])
                    return None
        return None

    def validate(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> list[str]:
        """Everything wrong with this request by the spec; empty when it conforms."""
        lowered = {key.lower(): value for key, value in (headers or {}).items()}
        request = self._mock_request(method, path, query, headers, body)
        errors = [message for error in self.app.iter_request_errors(request) for message in _describe(error)]
        errors.extend(self._header_errors(method, lowered, body))
        operation = self.operation(method, path)
        if operation is not None and body:
            errors.extend(self._unknown_body_fields(operation, body))
        return errors

    def validate_response(
        self,
        method: str,
        path: str,
        status: int,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        response_body: bytes = b"",
        response_content_type: str = JSON_API,
    ) -> list[str]:
        """Everything wrong with an answer to this request by the spec (to keep the sandbox honest)."""
        request = self._mock_request(method, path, query, headers, body)
        response = MockResponse(response_body, status_code=status, content_type=response_content_type)
        return [message for error in self.app.iter_response_errors(request, response) for message in _describe(error)]

    def _mock_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        body: bytes | None,
    ) -> MockRequest:
        lowered = {key.lower(): value for key, value in (headers or {}).items()}
        content_type = lowered.get("content-type", "").split(";")[0].strip() or JSON_API
        return MockRequest(
            "https://a.klaviyo.com",
            method.lower(),
            path,
            args=dict(query or {}),
            headers=dict(headers or {}),
            data=body,
            content_type=content_type,
        )

    def _header_errors(self, method: str, headers: Mapping[str, str], body: bytes | None) -> list[str]:
        errors: list[str] = []
        if headers.get("revision") != self.revision:
            errors.append(f"header revision must be {self.revision}, got {headers.get('revision')!r}")
        if not headers.get("authorization", "").startswith("Klaviyo-API-Key "):
            errors.append("header Authorization must be 'Klaviyo-API-Key <private key>'")
        if JSON_API not in headers.get("accept", ""):
            errors.append(f"header accept must include {JSON_API}")
        if body and headers.get("content-type", "").split(";")[0].strip() != JSON_API:
            errors.append(f"header content-type must be {JSON_API} for a {method.upper()} with a body")
        return errors

    def _unknown_body_fields(self, operation: Mapping[str, Any], body: bytes) -> list[str]:
        try:
            document = json.loads(body)
        except ValueError:
            return []  # openapi-core already reported it
        content = (operation.get("requestBody") or {}).get("content") or {}
        schema = (content.get(JSON_API) or {}).get("schema")
        if schema is None:
            return []
        return [f"body{pointer or '/'}: field not in the spec" for pointer in self._unknown(schema, document, "")]

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            node: Any = self.raw
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                node = node[part]
            schema = node
            seen += 1
        return schema

    def _unknown(self, schema: Mapping[str, Any], value: Any, pointer: str) -> Iterable[str]:
        schema = self._resolve(schema)
        if any(key in schema for key in ("oneOf", "anyOf", "allOf")):
            return  # polymorphic: openapi-core's checks are the ones that apply
        if isinstance(value, dict):
            properties = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, child in value.items():
                if isinstance(properties, Mapping) and key in properties:
                    yield from self._unknown(properties[key], child, f"{pointer}/{key}")
                elif isinstance(extra, Mapping):
                    yield from self._unknown(extra, child, f"{pointer}/{key}")
                elif properties and extra is not True:
                    yield f"{pointer}/{key}"
        elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            for position, child in enumerate(value):
                yield from self._unknown(schema["items"], child, f"{pointer}/{position}")


def _describe(error: BaseException) -> list[str]:
    """openapi-core's error and its causes, with JSON-schema errors as `pointer: message` lines."""
    messages = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None) or ()
        if schema_errors:
            name = type(error).__name__
            messages = [
                f"{name}: /{'/'.join(str(part) for part in item.absolute_path)}: {item.message}"
                for item in schema_errors
            ]
            break
        messages.append(f"  caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return messages


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}/?$")


@lru_cache(maxsize=4)
def _load(resolved: str) -> KlaviyoSpec:
    started = time.perf_counter()
    raw = json.loads(Path(resolved).read_text(encoding="utf-8"))
    app = OpenAPI.from_file_path(resolved, config=Config(spec_validator_cls=None))
    spec = KlaviyoSpec(path=Path(resolved), raw=raw, app=app, load_seconds=time.perf_counter() - started)
    # Literal paths before templated ones, so /api/lists/{id} never shadows a fixed sibling.
    templates = sorted(raw.get("paths", {}), key=lambda t: (t.count("{"), -len(t)))
    spec.routes = [_Route(t, _route_pattern(t), raw["paths"][t]) for t in templates]
    return spec


def load_spec(path: Path | str) -> KlaviyoSpec:
    """The spec at `path`, loaded once per process."""
    return _load(str(Path(path).resolve()))
