"""A local stand-in for the Klaviyo API (127.0.0.1:3100 in the local stack).

It answers as Klaviyo does for the calls sync makes (201/200 profile-import, 202 bulk jobs and events,
204 list relationships, 200 profile lookups, bulk import jobs read back with their import errors) and `doctor`'s
key check (the lists that have members), keeps a
little state (profiles, list members, events de-duplicated by unique_id), and records every request, checked
against Klaviyo's OpenAPI spec.

Control endpoints (not Klaviyo's):
- GET /_sandbox/requests: the recorded requests (Authorization redacted), oldest first;
- DELETE /_sandbox/requests: forget recorded requests and state;
- POST /_sandbox/fail {"status": 429, "count": N, "retry_after": 1}: the next N API requests answer
  that status (429 with Retry-After), to exercise back-off and retries;
  {"delay_ms": 800, "count": N}: the next N API requests are answered (as usual, or with "status") that late;
  {"hang": true, "count": N, "hang_ms": 60000}: the next N API requests get no answer: the connection is held
  until the client gives up, or closed unanswered after hang_ms (default 60 s), to exercise timeouts;
- POST /_sandbox/latency {"p50_ms": 200, "p99_ms": 1000, "seed": 1}: every API request is answered after a delay
  drawn from a log-normal distribution with that median and 99th percentile (as a real Klaviyo call over the
  internet takes; the record's `latency_ms`), each request on its own thread, so concurrent calls overlap;
  {"p50_ms": 0} turns it off;
- POST /_sandbox/jobs {"seconds": 2.0, "cancel": N}: bulk profile import jobs take that long from acceptance to
  their end (queued, processing, then complete; 0, the default, ends them at once), and the next N accepted jobs
  end `cancelled` with nothing imported (see klaviyo_jobs.py);
- GET /_sandbox/state: profiles, list members, accepted events and requested data-privacy deletions,
  and the system webhooks (secrets shown as their length only);
- POST /_sandbox/webhooks-api {"status": 403}: the Webhooks API answers that status (403: the key lacks
  webhooks scopes or the account has no access; null restores it);
- POST /_sandbox/key-scopes {"key": "sandbox-key", "denied": ["lists:read", "metrics:read"]}: that private key
  lacks those scopes, and a request that needs one (`required_scopes`) gets Klaviyo's 403 naming them. Denying
  `x:read` denies `x:write` too (Klaviyo grants read, or read and write); `"denied": []` grants every scope again.
- POST /_sandbox/engagement [...]: replace the engagement history GET /api/events serves; POST /_sandbox/events
  [...]: add to it (each answer lists the events' ids). See klaviyo_events.py for an entry's fields.

The Webhooks API (GET /api/webhook-topics, GET/POST /api/webhooks, GET/PATCH /api/webhooks/{id}) keeps
system webhooks; GET truncates `endpoint_url` to its origin, as Klaviyo does.

Run standalone: `python -m evergreen_cli.sandboxes.klaviyo_api --port 3100`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import math
import random
import re
import select
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from evergreen_cli.sandboxes import klaviyo_events as history
from evergreen_cli.sandboxes.background_server import (
    BackgroundServer,
    SandboxHandler,
    StatefulServer,
    serve_in_background,
)
from evergreen_cli.sandboxes.klaviyo_jobs import BulkJob, invalid_fields, now_utc, refusal
from evergreen_cli.sandboxes.klaviyo_spec import KlaviyoSpec, default_spec_path, load_spec

JSON_API = "application/vnd.api+json"
_ONE_PROFILE = re.compile(r"^/api/profiles/(?P<profile_id>[A-Za-z0-9]+)/?$")
_LIST_MEMBERS = re.compile(r"^/api/lists/(?P<list_id>[^/]+)/relationships/profiles/?$")
_ONE_JOB = re.compile(r"^/api/profile-bulk-import-jobs/(?P<job_id>[A-Za-z0-9_-]+)(?P<errors>/import-errors)?/?$")
_ONE_WEBHOOK = re.compile(r"^/api/webhooks/(?P<webhook_id>[A-Za-z0-9]+)/?$")
WEBHOOK_TOPICS = (
    "event:klaviyo.opened_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.clicked_sms",
    "event:klaviyo.unsubscribed_from_sms_marketing",
    "event:klaviyo.received_email",
    "event:klaviyo.sent_sms",
)
"""The topics the sandbox account offers (a real account's depend on its metrics)."""
_FILTER_VALUES = re.compile(r'"([^"]*)"')
_SCOPES = (
    # (method or "*", path pattern, scope), first match wins; as Klaviyo's API reference lists them
    ("GET", re.compile(r"^/api/profiles(/.*)?$"), "profiles:read"),
    ("POST", re.compile(r"^/api/(profile-import|profile-bulk-import-jobs)/?$"), "profiles:write"),
    ("GET", re.compile(r"^/api/lists(/.*)?$"), "lists:read"),
    ("*", re.compile(r"^/api/lists/.*$"), "lists:write"),
    ("GET", re.compile(r"^/api/metrics(/.*)?$"), "metrics:read"),
    ("GET", re.compile(r"^/api/events(/.*)?$"), "events:read"),
    ("POST", re.compile(r"^/api/(events|event-bulk-create-jobs)/?$"), "events:write"),
    ("POST", re.compile(r"^/api/data-privacy-deletion-jobs/?$"), "data-privacy:write"),
    ("GET", re.compile(r"^/api/(webhooks|webhook-topics)(/.*)?$"), "webhooks:read"),
    ("*", re.compile(r"^/api/webhooks(/.*)?$"), "webhooks:write"),
)
_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "ABCDEFGHJKMNPQRSTVWXYZ0123456789")


def fake_profile_id(identity: str) -> str:
    """A stable, Klaviyo-looking (26-character ULID-like) profile id for an identity."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    encoded = base64.b32encode(digest).decode("ascii").translate(_CROCKFORD)
    return "01" + encoded[:24]


def required_scopes(method: str, path: str) -> tuple[str, ...]:
    """The private-key scope a request needs (empty for paths the sandbox does not scope)."""
    for wanted, pattern, scope in _SCOPES:
        if wanted in (method, "*") and pattern.match(path):
            return (scope,)
    return ()


def missing_scopes(denied: frozenset[str], method: str, path: str) -> list[str]:
    """The scopes a request needs that a key is denied (no read access means no write access either)."""
    return [
        scope
        for scope in required_scopes(method, path)
        if scope in denied or scope.replace(":write", ":read") in denied
    ]


def _api_key(authorization: str) -> str:
    return authorization.removeprefix("Klaviyo-API-Key").strip()


def _errors(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "id": fake_profile_id(f"{code}:{detail}"),
                "status": status,
                "code": code,
                "title": title,
                "detail": detail,
                "source": {"pointer": "/data/"},
            }
        ]
    }


DEFAULT_HANG_MS = 60_000
"""How long a hung request holds its connection when the client never gives up."""


@dataclass(frozen=True)
class Fault:
    """What the sandbox does to one API request instead of (or before) answering it as Klaviyo would."""

    status: int | None = None
    retry_after: float | None = None
    delay_ms: float = 0
    hang: bool = False
    hang_ms: float = DEFAULT_HANG_MS

    @classmethod
    def from_request(cls, body: Mapping[str, Any]) -> Fault:
        """A fault from a `POST /_sandbox/fail` body; the status is 429 unless a delay or a hang is all it asks for."""
        delay_ms, hang = float(body.get("delay_ms") or 0), bool(body.get("hang", False))
        default_status = None if (delay_ms or hang) else 429
        status = body.get("status", default_status)
        if status is not None and not 400 <= int(status) <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if delay_ms < 0 or float(body.get("hang_ms", DEFAULT_HANG_MS)) < 0:
            raise ValueError("delay_ms and hang_ms must not be negative")
        return cls(
            status=None if status is None else int(status),
            retry_after=body.get("retry_after"),
            delay_ms=delay_ms,
            hang=hang,
            hang_ms=float(body.get("hang_ms", DEFAULT_HANG_MS)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "hang": self.hang,
            "hang_ms": self.hang_ms,
        }

    def answer(self) -> tuple[int, Any, dict[str, str]]:
        """The injected error answer (only for a fault with a status)."""
        status = int(self.status or 500)
        retry_after = self.retry_after
        extra = {"Retry-After": str(retry_after)} if status == 429 and retry_after is not None else {}
        code = "throttled" if status == 429 else "error"
        detail = (
            f"Request was throttled. Expected available in {retry_after} second(s)."
            if status == 429
            else "A sandbox-injected failure."
        )
        return status, _errors(status, code, HTTPStatus(status).phrase, detail), extra


Z_99 = 2.3263478740408408
"""The standard normal's 99th percentile: a log-normal's p99 is its median times exp(sigma * Z_99)."""


@dataclass(frozen=True)
class Latency:
    """How long Klaviyo takes to answer: log-normal, with median `p50_ms` and 99th percentile `p99_ms`."""

    p50_ms: float = 0
    p99_ms: float = 0

    @classmethod
    def from_request(cls, body: Mapping[str, Any]) -> Latency:
        p50, p99 = float(body.get("p50_ms") or 0), float(body.get("p99_ms") or body.get("p50_ms") or 0)
        if p50 < 0 or p99 < p50:
            raise ValueError("expected 0 <= p50_ms <= p99_ms")
        return cls(p50, p99)

    def draw_ms(self, rng: random.Random) -> float:
        """One answer's delay (0 when the model is off)."""
        if self.p50_ms <= 0:
            return 0.0
        sigma = math.log(self.p99_ms / self.p50_ms) / Z_99
        return self.p50_ms * math.exp(sigma * rng.gauss(0.0, 1.0))


class SandboxState:
    """What the sandbox remembers. All access goes through `lock`."""

    def __init__(self, spec: KlaviyoSpec | None, strict: bool, job_seconds: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, BulkJob] = {}
        self.job_seconds = job_seconds
        """How long a bulk profile import job takes from acceptance to its end."""
        self.jobs_to_cancel = 0
        """The next this many accepted bulk jobs end cancelled."""
        self.spec = spec
        self.strict = strict
        self.requests: list[dict[str, Any]] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, list[str]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.failures: list[Fault] = []
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.webhooks_api_status: int | None = None
        self.denied_scopes: dict[str, frozenset[str]] = {}
        """Per private key, the scopes it lacks (POST /_sandbox/key-scopes)."""
        self.latency = Latency()
        """How long each API answer is held (POST /_sandbox/latency)."""
        self.rng = random.Random()
        self.history: list[dict[str, Any]] = []
        """Engagement events GET /api/events serves (POST /_sandbox/engagement and /_sandbox/events)."""
        self.released = threading.Event()
        """Set to end every hung request at once (clearing the sandbox, stopping it)."""
        self._ids = itertools.count(1)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.profiles.clear()
            self.lists.clear()
            self.events.clear()
            self.deleted.clear()
            self.failures.clear()
            self.webhooks.clear()
            self.webhooks_api_status = None
            self.denied_scopes.clear()
            self.latency = Latency()
            self.history.clear()
            self.jobs.clear()
            self.jobs_to_cancel = 0
        self.released.set()
        self.released = threading.Event()

    def next_id(self) -> int:
        return next(self._ids)

    # --- Klaviyo behaviour (called with the lock held) -----------------------------------------

    def unset_properties(self, profile_id: str, meta: Any) -> None:
        """Apply `meta.patch_properties.unset` (a key or a list of keys) to a stored profile."""
        patch = meta.get("patch_properties") if isinstance(meta, Mapping) else None
        unset = patch.get("unset") if isinstance(patch, Mapping) else None
        keys = [unset] if isinstance(unset, str) else unset if isinstance(unset, list) else []
        properties = self.profiles.get(profile_id, {}).get("properties", {})
        for key in keys:
            properties.pop(str(key), None)

    def accept_job(self, profiles: list[Any], list_ids: list[str]) -> BulkJob:
        """A bulk import job, accepted now: each profile is checked now and imported when the job completes."""
        valid: list[tuple[Mapping[str, Any], str | None]] = []
        errors: list[dict[str, Any]] = []
        for position, profile in enumerate(profiles):
            resource = profile if isinstance(profile, dict) else {}
            attributes = resource.get("attributes") if isinstance(resource.get("attributes"), dict) else {}
            refused = invalid_fields(attributes or {})
            for field_name in refused:
                pointer = f"/data/attributes/profiles/data/{position}/attributes/{field_name}"
                errors.append(refusal(pointer, field_name, resource))
            if not refused:
                known = resource.get("id")
                valid.append((attributes or {}, known if isinstance(known, str) else None))
        job = BulkJob(
            job_id=fake_profile_id(f"job:{self.next_id()}"),
            accepted=time.monotonic(),
            created_at=now_utc(),
            seconds=self.job_seconds,
            profiles=valid,
            list_ids=list_ids,
            total=len(profiles),
            errors=errors,
            cancel=self.jobs_to_cancel > 0,
        )
        self.jobs_to_cancel = max(0, self.jobs_to_cancel - 1)
        self.jobs[job.job_id] = job
        self.advance_jobs()
        return job

    def advance_jobs(self) -> None:
        """Import what jobs that have completed by now carry (each once); a cancelled job imports nothing."""
        now = time.monotonic()
        for job in self.jobs.values():
            if job.ended or job.status(now) in ("queued", "processing"):
                continue
            job.ended = True
            if job.cancel:
                continue
            for attributes, known_id in job.profiles:
                profile_id, _ = self.upsert_profile(attributes, known_id)
                for list_id in job.list_ids:
                    _add_member(self, list_id, profile_id)

    def delete_profile(self, profile_id: str) -> None:
        """Klaviyo's data-privacy deletion, done at once: the profile, its list memberships and events go."""
        self.deleted.append(profile_id)
        self.profiles.pop(profile_id, None)
        for members in self.lists.values():
            if profile_id in members:
                members.remove(profile_id)
        for key in [key for key, event in self.events.items() if event.get("profile_id") == profile_id]:
            del self.events[key]

    def upsert_profile(self, attributes: Mapping[str, Any], profile_id: str | None = None) -> tuple[str, bool]:
        """Create or update; an id Klaviyo already knows names the profile, whatever the identifiers say."""
        if profile_id and profile_id in self.profiles:
            return self._update(profile_id, attributes), False
        identity = next(
            (
                str(attributes[key]).lower() if key == "email" else str(attributes[key])
                for key in ("external_id", "email", "phone_number")
                if attributes.get(key)
            ),
            None,
        )
        if identity is None:
            identity = f"anonymous:{self.next_id()}"
        profile_id = fake_profile_id(identity)
        created = profile_id not in self.profiles
        return self._update(profile_id, attributes), created

    def _update(self, profile_id: str, attributes: Mapping[str, Any]) -> str:
        stored = self.profiles.setdefault(profile_id, {"properties": {}})
        for key, value in attributes.items():
            if key == "properties" and isinstance(value, Mapping):
                stored["properties"].update(value)
            elif value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        return profile_id

    def record_event(self, attributes: Mapping[str, Any], profile: Mapping[str, Any]) -> None:
        profile_attributes = profile.get("attributes") if isinstance(profile.get("attributes"), Mapping) else {}
        profile_id = profile.get("id") or self.upsert_profile(dict(profile_attributes or {}))[0]
        metric = (((attributes.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
        key = str(attributes.get("unique_id") or f"auto:{self.next_id()}")
        self.events.setdefault(
            key,
            {
                "unique_id": key,
                "metric": metric,
                "profile_id": profile_id,
                "properties": attributes.get("properties"),
                "time": attributes.get("time"),
            },
        )


class _Handler(SandboxHandler):
    server: _Server

    # --- plumbing -------------------------------------------------------------------------------

    def _reply(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        content_type = JSON_API if self.path.startswith("/api/") else "application/json"
        self._send(status, payload, None if status == HTTPStatus.NO_CONTENT else content_type, headers)

    def _handle(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if path.startswith("/_sandbox/"):
            self._control(state, path, body)
            return
        headers = {name: value for name, value in self.headers.items()}
        errors: list[str] | None = None
        if state.spec is not None and path.startswith("/api/"):
            errors = state.spec.validate(self.command, path, query=query, headers=headers, body=raw or None)
        with state.lock:
            state.advance_jobs()
            fault = state.failures.pop(0) if state.failures and path.startswith("/api/") else None
            record: dict[str, Any] = {
                "id": state.next_id(),
                "received_at": datetime.now(UTC).isoformat(),
                "method": self.command,
                "path": path,
                "query": query,
                "headers": _redacted(headers),
                "json": body,
                "spec_checked": errors is not None,
                "spec_valid": None if errors is None else not errors,
                "spec_errors": errors or [],
            }
            state.requests.append(record)
            if fault is not None:
                record["fault"] = fault.as_dict()
            status: int
            answer: Any
            extra: dict[str, str]
            if fault is not None and fault.hang:
                status, answer, extra = 0, None, {}
            elif fault is not None and fault.status is not None:
                status, answer, extra = fault.answer()
            else:
                status, answer, extra = self._refused(state, path) or self._answer(state, path, query, body, errors)
            record["status"] = None if fault is not None and fault.hang else status
            released = state.released
            modelled_ms = state.latency.draw_ms(state.rng) if path.startswith("/api/") else 0.0
            if modelled_ms:
                record["latency_ms"] = round(modelled_ms, 1)
        delay_ms = (fault.delay_ms if fault is not None else 0.0) + modelled_ms
        if delay_ms and released.wait(delay_ms / 1000):
            self.close_connection = True
            return
        if fault is not None and fault.hang:
            self._hold(fault.hang_ms / 1000, released)
            return
        self._reply(status, answer, extra)

    def _hold(self, seconds: float, released: threading.Event) -> None:
        """Answer nothing: wait until the client closes the connection, `seconds` pass or the sandbox lets go."""
        self.close_connection = True
        deadline = time.monotonic() + seconds
        connection: socket.socket = self.connection
        while not released.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([connection], [], [], min(remaining, 0.05))
            if readable:
                try:
                    if not connection.recv(1, socket.MSG_PEEK):
                        return  # the client gave up
                except OSError:
                    return
                time.sleep(min(remaining, 0.05))  # the client sent more; keep holding

    def _control(self, state: SandboxState, path: str, body: Any) -> None:
        if path == "/_sandbox/requests" and self.command == "GET":
            with state.lock:
                snapshot = list(state.requests)
            self._reply(HTTPStatus.OK, snapshot)
        elif path == "/_sandbox/requests" and self.command == "DELETE":
            state.clear()
            self._reply(HTTPStatus.NO_CONTENT)
        elif path == "/_sandbox/fail" and self.command == "POST" and isinstance(body, dict):
            try:
                fault = Fault.from_request(body)
                count = int(body.get("count", 1))
            except (TypeError, ValueError) as error:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            with state.lock:
                state.failures.extend([fault] * max(0, count))
            self._reply(HTTPStatus.OK, {**fault.as_dict(), "count": count})
        elif path == "/_sandbox/latency" and self.command == "POST" and isinstance(body, dict):
            self._set_latency(state, body)
        elif path == "/_sandbox/jobs" and self.command == "POST" and isinstance(body, dict):
            self._reply(*_jobs_control(state, body))
        elif path == "/_sandbox/state" and self.command == "GET":
            with state.lock:
                state.advance_jobs()
                current = {
                    "profiles": state.profiles,
                    "lists": state.lists,
                    "events": list(state.events.values()),
                    "deleted": list(state.deleted),
                    "webhooks": [
                        {**hook, "secret_key": len(str(hook.get("secret_key", "")))} for hook in state.webhooks.values()
                    ],
                }
                encoded = json.loads(json.dumps(current))
            self._reply(HTTPStatus.OK, encoded)
        elif path in ("/_sandbox/engagement", "/_sandbox/events") and self.command == "POST" and isinstance(body, list):
            with state.lock:
                if path == "/_sandbox/engagement":
                    state.history.clear()
                added = history.add(state.history, [entry for entry in body if isinstance(entry, dict)])
            self._reply(HTTPStatus.OK, {"events": len(added), "ids": added})
        elif path == "/_sandbox/webhooks-api" and self.command == "POST" and isinstance(body, dict):
            status = body.get("status")
            with state.lock:
                state.webhooks_api_status = int(status) if status else None
            self._reply(HTTPStatus.OK, {"status": state.webhooks_api_status})
        elif path == "/_sandbox/key-scopes" and self.command == "POST" and isinstance(body, dict):
            key, denied = body.get("key"), body.get("denied")
            if not isinstance(key, str) or not isinstance(denied, list):
                self._reply(HTTPStatus.BAD_REQUEST, {"error": 'expected {"key": "...", "denied": ["lists:read"]}'})
                return
            with state.lock:
                state.denied_scopes[key] = frozenset(str(scope) for scope in denied)
            self._reply(HTTPStatus.OK, {"key": key, "denied": sorted(state.denied_scopes[key])})
        elif path == "/_sandbox/health":
            self._reply(HTTPStatus.OK, {"ok": True, "spec": str(state.spec.path) if state.spec else None})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no sandbox control {self.command} {path}"})

    def _set_latency(self, state: SandboxState, body: Mapping[str, Any]) -> None:
        try:
            latency = Latency.from_request(body)
        except (TypeError, ValueError) as error:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        with state.lock:
            state.latency = latency
            if body.get("seed") is not None:
                state.rng.seed(body["seed"])
        self._reply(HTTPStatus.OK, {"p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms})

    # --- Klaviyo answers (lock held) ------------------------------------------------------------

    def _refused(self, state: SandboxState, path: str) -> tuple[int, Any, dict[str, str]] | None:
        """Klaviyo's 403 when the request's key lacks a scope the request needs (POST /_sandbox/key-scopes)."""
        denied = state.denied_scopes.get(_api_key(self.headers.get("Authorization", "")), frozenset())
        missing = missing_scopes(denied, self.command, path) if denied else []
        if not missing:
            return None
        detail = f"Your API key is missing required scopes: {', '.join(missing)}."
        return 403, _errors(403, "permission_denied", "You do not have permission to perform this action.", detail), {}

    def _answer(
        self, state: SandboxState, path: str, query: Mapping[str, str], body: Any, errors: list[str] | None
    ) -> tuple[int, Any, dict[str, str]]:
        if state.strict and errors:
            return 400, _errors(400, "invalid", "Invalid input.", "; ".join(errors)[:2000]), {}
        method = self.command
        data = body.get("data") if isinstance(body, dict) else None
        if path.startswith(("/api/webhooks", "/api/webhook-topics")):
            return self._webhooks_api(state, method, path, data)
        if method == "POST" and path == "/api/profile-import" and isinstance(data, dict):
            raw_attributes = data.get("attributes")
            attributes: dict[str, Any] = raw_attributes if isinstance(raw_attributes, dict) else {}
            refused = invalid_fields(attributes)
            if refused:
                answer = _errors(400, "invalid", "Invalid input.", f"Invalid {refused[0].replace('_', ' ')}.")
                answer["errors"][0]["source"] = {"pointer": f"/data/attributes/{refused[0]}"}
                return 400, answer, {}
            known_id = data.get("id")
            profile_id, created = state.upsert_profile(attributes, known_id if isinstance(known_id, str) else None)
            state.unset_properties(profile_id, data.get("meta"))
            stored = state.profiles[profile_id]
            fields = [f for f in query.get("fields[profile]", "").split(",") if f]
            shown = {key: stored.get(key) for key in fields} if fields else dict(stored)
            answer = {
                "data": {
                    "type": "profile",
                    "id": profile_id,
                    "attributes": shown,
                    "links": {"self": f"{self._base()}/api/profiles/{profile_id}/"},
                },
                "links": {"self": f"{self._base()}/api/profile-import"},
            }
            return (201 if created else 200), answer, {}
        if path.startswith("/api/profile-bulk-import-jobs"):
            return _bulk_jobs(state, method, path, query, data, self._base())
        if method == "POST" and path == "/api/data-privacy-deletion-jobs" and isinstance(data, dict):
            return _privacy_deletion(state, data)
        if method == "POST" and path == "/api/events" and isinstance(data, dict):
            attributes = data.get("attributes") or {}
            state.record_event(attributes, (attributes.get("profile") or {}).get("data") or {})
            return 202, None, {}
        if method == "POST" and path == "/api/event-bulk-create-jobs" and isinstance(data, dict):
            entries = ((data.get("attributes") or {}).get("events-bulk-create") or {}).get("data") or []
            for entry in entries:
                entry_attributes = (entry.get("attributes") or {}) if isinstance(entry, dict) else {}
                profile = (entry_attributes.get("profile") or {}).get("data") or {}
                for event in (entry_attributes.get("events") or {}).get("data") or []:
                    state.record_event(event.get("attributes") or {}, profile)
            return 202, None, {}
        if method == "GET" and path.rstrip("/") in ("/api/events", "/api/metrics"):
            status, history_answer = history.answer(state.history, path.rstrip("/"), query, self._base())
            return status, history_answer, {}
        members = _LIST_MEMBERS.match(path)
        if members and method in ("POST", "DELETE") and isinstance(data, list):
            list_id = members.group("list_id")
            for item in data:
                if isinstance(item, dict) and item.get("id"):
                    if method == "POST":
                        _add_member(state, list_id, str(item["id"]))
                    elif item["id"] in state.lists.get(list_id, []):
                        state.lists[list_id].remove(item["id"])
            return 204, None, {}
        if method == "GET" and path.rstrip("/") == "/api/lists":
            return _lists(state, self._base())
        if method == "GET" and members:
            return _list_member_ids(state, members.group("list_id"), f"{self._base()}{path}")
        if method == "GET" and path.rstrip("/") == "/api/profiles":
            wanted, fields = set(_FILTER_VALUES.findall(query.get("filter", ""))), _profile_fields(query)
            found = [
                {
                    "type": "profile",
                    "id": profile_id,
                    "attributes": {key: stored.get(key) for key in fields},
                    "links": {"self": f"{self._base()}/api/profiles/{profile_id}/"},
                }
                for profile_id, stored in state.profiles.items()
                if stored.get("external_id") in wanted
            ]
            return 200, {"data": found, "links": {"self": f"{self._base()}/api/profiles"}}, {}
        one = _ONE_PROFILE.match(path)
        if one and method == "GET":
            return self._one_profile(state, one.group("profile_id"), query)
        if path.startswith("/api/") and method in ("POST", "DELETE", "PATCH") and body is None:
            return 400, _errors(400, "invalid", "Invalid input.", "A JSON:API request body is required."), {}
        return (
            404,
            _errors(404, "not_found", "Not found.", f"The sandbox does not serve {method} {path}."),
            {},
        )

    def _webhooks_api(self, state: SandboxState, method: str, path: str, data: Any) -> tuple[int, Any, dict[str, str]]:
        """The Webhooks API: topics, and system webhooks listed, created and updated."""
        if state.webhooks_api_status is not None:
            status = state.webhooks_api_status
            detail = "Your API key is missing required scopes: webhooks:read, webhooks:write."
            return status, _errors(status, "permission_denied", HTTPStatus(status).phrase, detail), {}
        base = self._base()
        if method == "GET" and path.rstrip("/") == "/api/webhook-topics":
            topics = [
                {"type": "webhook-topic", "id": topic, "links": {"self": f"{base}/api/webhook-topics/{topic}/"}}
                for topic in WEBHOOK_TOPICS
            ]
            return 200, {"data": topics, "links": {"self": f"{base}/api/webhook-topics"}}, {}
        if method == "GET" and path.rstrip("/") == "/api/webhooks":
            hooks = [_shown_webhook(hook, base) for hook in state.webhooks.values()]
            return 200, {"data": hooks, "links": {"self": f"{base}/api/webhooks"}}, {}
        if method == "POST" and path.rstrip("/") == "/api/webhooks" and isinstance(data, dict):
            webhook_id = f"01WH{state.next_id():022d}"
            problem = _webhook_problem(data, creating=True)
            if problem:
                return 400, _errors(400, "invalid", "Invalid input.", problem), {}
            now = datetime.now(UTC).isoformat()
            state.webhooks[webhook_id] = {"id": webhook_id, "enabled": True, "created_at": now, "updated_at": now}
            _apply_webhook(state.webhooks[webhook_id], data)
            return 201, {"data": _shown_webhook(state.webhooks[webhook_id], base, full=True)}, {}
        one = _ONE_WEBHOOK.match(path)
        if one and one.group("webhook_id") not in state.webhooks:
            return 404, _errors(404, "not_found", "Not found.", "No webhook with that id."), {}
        if one and method == "GET":
            return 200, {"data": _shown_webhook(state.webhooks[one.group("webhook_id")], base)}, {}
        if one and method == "PATCH" and isinstance(data, dict):
            problem = _webhook_problem(data, creating=False)
            if problem:
                return 400, _errors(400, "invalid", "Invalid input.", problem), {}
            hook = state.webhooks[one.group("webhook_id")]
            _apply_webhook(hook, data)
            hook["updated_at"] = datetime.now(UTC).isoformat()
            return 200, {"data": _shown_webhook(hook, base, full=True)}, {}
        return 405, _errors(405, "method_not_allowed", "Method not allowed.", f"{method} {path}"), {}

    def _one_profile(
        self, state: SandboxState, profile_id: str, query: Mapping[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """GET /api/profiles/{id}: the stored profile, limited to `fields[profile]`; a JSON:API 404 if unknown."""
        if profile_id not in state.profiles:
            return 404, _errors(404, "not_found", "Not found.", f"A profile with id {profile_id} does not exist."), {}
        stored = state.profiles[profile_id]
        fields = [f for f in query.get("fields[profile]", "").split(",") if f]
        shown = {key: stored.get(key) for key in fields} if fields else dict(stored)
        link = f"{self._base()}/api/profiles/{profile_id}/"
        return 200, {"data": {"type": "profile", "id": profile_id, "attributes": shown, "links": {"self": link}}}, {}

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


def _jobs_control(state: SandboxState, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /_sandbox/jobs: how long bulk jobs take, and how many of the next ones end cancelled."""
    try:
        seconds = float(body.get("seconds", state.job_seconds))
        cancel = int(body.get("cancel", 0))
    except (TypeError, ValueError) as error:
        return HTTPStatus.BAD_REQUEST, {"error": str(error)}
    if seconds < 0 or cancel < 0:
        return HTTPStatus.BAD_REQUEST, {"error": "seconds and cancel must not be negative"}
    with state.lock:
        state.job_seconds, state.jobs_to_cancel = seconds, cancel
    return HTTPStatus.OK, {"seconds": seconds, "cancel": cancel}


def _bulk_jobs(
    state: SandboxState, method: str, path: str, query: Mapping[str, str], data: Any, base: str
) -> tuple[int, Any, dict[str, str]]:
    """POST a bulk profile import job (202), GET it back, GET its import errors (lock held)."""
    if method == "POST" and path.rstrip("/") == "/api/profile-bulk-import-jobs" and isinstance(data, dict):
        attributes = data.get("attributes") or {}
        profiles = ((attributes.get("profiles") or {}).get("data")) or []
        list_ids = [
            str(item.get("id"))
            for item in ((data.get("relationships") or {}).get("lists") or {}).get("data", [])
            if isinstance(item, dict)
        ]
        job = state.accept_job(profiles, list_ids)
        accepted = job.resource(job.accepted, base, [])
        return 202, {"data": accepted, "links": {"self": f"{base}/api/profile-bulk-import-jobs"}}, {}
    one = _ONE_JOB.match(path)
    found = state.jobs.get(one.group("job_id")) if one and method == "GET" else None
    if one is None or found is None:
        return 404, _errors(404, "not_found", "Not found.", f"The sandbox does not serve {method} {path}."), {}
    if one.group("errors"):
        return 200, found.errors_page(time.monotonic(), base, query), {}
    fields = [f for f in query.get("fields[profile-bulk-import-job]", "").split(",") if f]
    resource = found.resource(time.monotonic(), base, fields)
    return 200, {"data": resource, "links": {"self": resource["links"]["self"]}}, {}


def _privacy_deletion(state: SandboxState, data: Mapping[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """POST /api/data-privacy-deletion-jobs: 202, and the named profile is deleted."""
    profile = (((data.get("attributes") or {}).get("profile") or {}).get("data")) or {}
    profile_id = profile.get("id") if isinstance(profile, Mapping) else None
    if isinstance(profile_id, str) and profile_id:
        state.delete_profile(profile_id)
    return 202, None, {}


def _webhook_problem(data: Mapping[str, Any], *, creating: bool) -> str | None:
    given = data.get("attributes")
    attributes: Mapping[str, Any] = given if isinstance(given, dict) else {}
    url = attributes.get("endpoint_url")
    if url is not None and not str(url).startswith(("https://", "http://127.0.0.1", "http://localhost")):
        return "endpoint_url must be https."
    secret = attributes.get("secret_key")
    if secret is not None and len(str(secret)) < 16:
        return "secret_key must be at least 16 characters."
    topics = (data.get("relationships") or {}).get("webhook-topics", {}).get("data")
    if creating and not topics:
        return "At least one webhook topic is required."
    unknown = [item.get("id") for item in topics or [] if item.get("id") not in WEBHOOK_TOPICS]
    return f"Unknown webhook topics: {unknown}" if unknown else None


def _apply_webhook(hook: dict[str, Any], data: Mapping[str, Any]) -> None:
    for name, value in (data.get("attributes") or {}).items():
        if value is not None:
            hook[name] = value
    topics = (data.get("relationships") or {}).get("webhook-topics", {}).get("data")
    if topics is not None:
        hook["topics"] = sorted(str(item["id"]) for item in topics)


def _shown_webhook(hook: Mapping[str, Any], base: str, *, full: bool = False) -> dict[str, Any]:
    """A webhook as Klaviyo shows it: no secret, and (when read back) the URL truncated to its origin."""
    url = str(hook.get("endpoint_url", ""))
    parts = urlsplit(url)
    shown = url if full else f"{parts.scheme}://{parts.netloc}"
    attributes = {key: hook.get(key) for key in ("name", "description", "enabled", "created_at", "updated_at")}
    return {
        "type": "webhook",
        "id": hook["id"],
        "attributes": {**attributes, "endpoint_url": shown},
        "relationships": {
            "webhook-topics": {"data": [{"type": "webhook-topic", "id": topic} for topic in hook.get("topics", [])]}
        },
        "links": {"self": f"{base}/api/webhooks/{hook['id']}/"},
    }


def _lists(state: SandboxState, base: str) -> tuple[int, Any, dict[str, str]]:
    """GET /api/lists: every list that has had a member, one page."""
    lists = [
        {
            "type": "list",
            "id": list_id,
            "attributes": {"name": list_id},
            "links": {"self": f"{base}/api/lists/{list_id}/"},
        }
        for list_id in sorted(state.lists)
    ]
    return 200, {"data": lists, "links": {"self": f"{base}/api/lists", "next": None}}, {}


def _profile_fields(query: Mapping[str, str]) -> list[str]:
    """The attributes a profile lookup asked for (`fields[profile]`; the external id by default)."""
    return [name for name in query.get("fields[profile]", "external_id").split(",") if name]


def _list_member_ids(state: SandboxState, list_id: str, link: str) -> tuple[int, Any, dict[str, str]]:
    """GET /api/lists/{id}/relationships/profiles: every member's id, on one page."""
    data = [{"type": "profile", "id": profile_id} for profile_id in state.lists.get(list_id, [])]
    return 200, {"data": data, "links": {"self": link, "next": None}}, {}


def _add_member(state: SandboxState, list_id: str, profile_id: str) -> None:
    members = state.lists.setdefault(list_id, [])
    if profile_id not in members:
        members.append(profile_id)


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme = value.split(" ", 1)[0] if " " in value else ""
            shown[name] = f"{scheme} <redacted>".strip()
        else:
            shown[name] = value
    return shown


_Server = StatefulServer[SandboxState]


class SandboxServer(BackgroundServer[SandboxState]):
    """A running sandbox. `url` is its base URL; `stop()` shuts it down."""

    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests (the same list GET /_sandbox/requests serves)."""
        with self.state.lock:
            return list(self.state.requests)

    def clear(self) -> None:
        self.state.clear()

    def fail_next(
        self,
        status: int | None = None,
        count: int = 1,
        retry_after: float | None = None,
        *,
        delay_ms: float = 0,
        hang: bool = False,
        hang_ms: float = DEFAULT_HANG_MS,
    ) -> None:
        """The next `count` API requests fail as `POST /_sandbox/fail` would make them (see the module docstring)."""
        fault = Fault.from_request(
            {"status": status, "retry_after": retry_after, "delay_ms": delay_ms, "hang": hang, "hang_ms": hang_ms}
            if status is not None
            else {"retry_after": retry_after, "delay_ms": delay_ms, "hang": hang, "hang_ms": hang_ms}
        )
        with self.state.lock:
            self.state.failures.extend([fault] * count)

    def set_latency(self, p50_ms: float, p99_ms: float, seed: int | None = None) -> None:
        """Answer every API request after a log-normal delay (as POST /_sandbox/latency); p50_ms=0 turns it off."""
        latency = Latency.from_request({"p50_ms": p50_ms, "p99_ms": p99_ms})
        with self.state.lock:
            self.state.latency = latency
            if seed is not None:
                self.state.rng.seed(seed)

    def add_events(self, entries: list[dict[str, Any]]) -> list[str]:
        """Add engagement events to what GET /api/events serves (as POST /_sandbox/events); their Klaviyo ids."""
        with self.state.lock:
            return history.add(self.state.history, entries)

    def webhooks_api(self, status: int | None) -> None:
        """Make the Webhooks API answer `status` (403: no access), or None to serve it again."""
        with self.state.lock:
            self.state.webhooks_api_status = status

    def jobs(self, seconds: float | None = None, cancel: int = 0) -> None:
        """Bulk jobs take `seconds` to end from now on, and the next `cancel` accepted jobs end cancelled."""
        with self.state.lock:
            if seconds is not None:
                self.state.job_seconds = seconds
            self.state.jobs_to_cancel = cancel

    def deny_scopes(self, key: str, scopes: list[str]) -> None:
        """The private key `key` lacks `scopes` (as POST /_sandbox/key-scopes); an empty list grants them all again."""
        with self.state.lock:
            self.state.denied_scopes[key] = frozenset(scopes)

    @property
    def webhooks(self) -> list[dict[str, Any]]:
        """The system webhooks as stored (with their secret: tests only)."""
        with self.state.lock:
            return [dict(hook) for hook in self.state.webhooks.values()]

    def stop(self) -> None:
        self.state.released.set()
        super().stop()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 3100,
    spec_path: Path | None = None,
    *,
    validate: bool = True,
    strict: bool = False,
    job_seconds: float = 0.0,
) -> SandboxServer:
    """Start the sandbox in a daemon thread (port=0 picks a free port).

    With `validate`, requests are checked against `spec_path`, or the default spec location
    ($EVERGREEN_KLAVIYO_SPEC or ../shared/klaviyo/openapi/stable.json) when None; no spec found
    means no checking (`spec_checked: false`). With `strict`, a request failing the spec gets a 400.
    `job_seconds`: how long a bulk profile import job takes from acceptance to its end (0: at once).
    """
    spec: KlaviyoSpec | None = None
    if validate:
        path = spec_path if spec_path is not None else default_spec_path()
        if path is not None and Path(path).is_file():
            spec = load_spec(path)
    server = _Server((host, port), _Handler, SandboxState(spec, strict, job_seconds))
    return SandboxServer(server, serve_in_background(server, "klaviyo-sandbox"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Klaviyo API sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--spec", type=Path, default=None, help="Klaviyo OpenAPI spec (stable.json)")
    parser.add_argument("--no-validate", action="store_true", help="do not check requests against the spec")
    parser.add_argument("--strict", action="store_true", help="answer 400 to requests that fail the spec")
    parser.add_argument("--job-seconds", type=float, default=0.0, help="how long a bulk import job takes to end")
    args = parser.parse_args(argv)
    sandbox = start_sandbox(
        args.host,
        args.port,
        args.spec,
        validate=not args.no_validate,
        strict=args.strict,
        job_seconds=args.job_seconds,
    )
    spec = sandbox.state.spec
    print(f"Klaviyo sandbox on {sandbox.url} (spec: {spec.path if spec else 'none'})", flush=True)
    try:
        sandbox.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
