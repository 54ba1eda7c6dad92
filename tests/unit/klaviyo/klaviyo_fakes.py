"""An imitation of Klaviyo's HTTP API (their server, not our code) and a clock that only moves on sleep.

Fixtures here are re-exported by conftest.py; tests import the helpers with `from klaviyo_fakes import ...`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient

BASE_URL = "https://a.klaviyo.com"
API_KEY = "pk_test_0123456789abcdef"


class FakeTime:
    """`sleep` records and advances `clock`; nothing ever waits."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    json: Any


@dataclass
class _Rule:
    when: Callable[[Sent], bool]
    status: int
    times: int | None
    retry_after: str | None
    errors: list[dict[str, Any]] = field(default_factory=list)


class FakeKlaviyo:
    """Answers like Klaviyo: profile-import 201 with an id, bulk jobs and events 202, lists 204."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.rules: list[_Rule] = []
        self.known_ids: dict[str, str] = {}
        self.job_statuses: list[str] = []
        """What reading a bulk job back answers, one status per read (then `complete`)."""
        self.import_errors: list[dict[str, Any]] = []
        """The import errors of a complete job (their count is its failed_count)."""

    def fail(
        self,
        status: int,
        when: Callable[[Sent], bool] = lambda _: True,
        *,
        times: int | None = None,
        retry_after: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer `status` to matching requests (`times` of them, or all)."""
        self.rules.append(_Rule(when, status, times, retry_after, errors or []))

    def calls(self, method: str, path_start: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method and s.path.startswith(path_start)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        sent = Sent(request.method, request.url.path, dict(request.url.params), request.headers, body)
        self.sent.append(sent)
        for rule in self.rules:
            if rule.times != 0 and rule.when(sent):
                if rule.times is not None:
                    rule.times -= 1
                headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
                errors = rule.errors or [{"status": rule.status, "code": "error", "title": "Failed"}]
                return httpx.Response(rule.status, headers=headers, json={"errors": errors})
        return self._answer(sent)

    def _answer(self, sent: Sent) -> httpx.Response:
        if sent.method == "POST" and sent.path == "/api/profile-import":
            external_id = sent.json["data"]["attributes"]["external_id"]
            created = external_id not in self.known_ids
            profile_id = self.known_ids.setdefault(external_id, f"K{len(self.known_ids) + 1:06d}")
            body = {"data": {"type": "profile", "id": profile_id, "attributes": {"external_id": external_id}}}
            return httpx.Response(201 if created else 200, json=body)
        if sent.method == "POST" and sent.path == "/api/profile-bulk-import-jobs":
            count = len(sent.json["data"]["attributes"]["profiles"]["data"])
            body = {"data": {"type": "profile-bulk-import-job", "id": "JOB1", "attributes": {"total_count": count}}}
            return httpx.Response(202, json=body)
        if sent.method == "GET" and sent.path.startswith("/api/profile-bulk-import-jobs/"):
            if sent.path.endswith("/import-errors"):
                return httpx.Response(200, json={"data": self.import_errors, "links": {"self": sent.path}})
            status = self.job_statuses.pop(0) if self.job_statuses else "complete"
            attributes = {"status": status, "failed_count": len(self.import_errors) if status == "complete" else 0}
            return httpx.Response(
                200, json={"data": {"type": "profile-bulk-import-job", "id": "JOB1", "attributes": attributes}}
            )
        if sent.method == "POST" and sent.path in ("/api/events", "/api/event-bulk-create-jobs"):
            return httpx.Response(202)
        if sent.path.startswith("/api/lists/") and sent.method in ("POST", "DELETE"):
            return httpx.Response(204)
        if sent.method == "GET" and sent.path == "/api/profiles":
            wanted = sent.query["filter"]
            data = [
                {"type": "profile", "id": profile_id, "attributes": {"external_id": external_id}}
                for external_id, profile_id in self.known_ids.items()
                if f'"{external_id}"' in wanted
            ]
            return httpx.Response(200, json={"data": data})
        return httpx.Response(404, json={"errors": [{"status": 404, "code": "not_found"}]})


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def klaviyo() -> FakeKlaviyo:
    return FakeKlaviyo()


@pytest.fixture
def client(klaviyo: FakeKlaviyo, fake_time: FakeTime) -> Iterator[KlaviyoClient]:
    http = httpx.Client(transport=httpx.MockTransport(klaviyo))
    yield KlaviyoClient(
        BASE_URL,
        API_KEY,
        http=http,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda base: 0.0,
    )
    http.close()


def make_change(number: int = 1, **overrides: Any) -> SegmentChange:
    """A realistic change: a repeat customer who just became a VIP and stopped being lapsed."""
    fields: dict[str, Any] = {
        "shop": "evergreen-demo.myshopify.com",
        "profile_key": f"customer#{7_000_000_000 + number}",
        "version": 4,
        "changed_at": datetime(2026, 7, 1, 9, 30, tzinfo=UTC),
        "segments": ["vip", "repeat", "engaged"],
        "entered": ["vip"],
        "exited": ["lapsed"],
        "customer_id": str(7_000_000_000 + number),
        "email": f"customer{number}@example.com",
        "phone": "+14155550123",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    fields.update(overrides)
    return SegmentChange(**fields)


@pytest.fixture
def change_factory() -> Callable[..., SegmentChange]:
    return make_change
