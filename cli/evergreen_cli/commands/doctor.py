"""`evergreen doctor [--aws]`: check a stack end to end, one line per check, with the fix for each failure.

The same checks run against the local stack and a deployed one: its outputs, its secrets, Klaviyo's
answer to the key, Shopify's answer to each shop's Admin token (its scopes) and the shop's webhook
subscriptions (every topic here, JSON, the pinned API version), each shop's Klaviyo system webhook (as
`register-webhooks --klaviyo` would find it), which path brings each Klaviyo account's engagement (webhook, poll
or both) with when the poll last completed and how far behind it is, a signed self-test through the Shopify
webhook route, the dead-letter queue, the sweep (its last complete run within two sweep intervals, nothing
overdue), sync lag and the segment definitions. Exit code 0 only when every check passes. Checks that cannot
look say "not checked" (and what to check by hand) and do not fail the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx

from evergreen.api_versions import PinStatus, klaviyo_pin_status, klaviyo_window, shopify_pin_status
from evergreen.segments import DEFAULT_DEFINITIONS_PATH, DefinitionsError, load_definitions
from evergreen.service.backfill_model import ALL_ORDERS_SCOPE, RECENT_ORDERS_DAYS
from evergreen.settings import SHOPIFY_API_VERSION, Settings
from evergreen.shopify.admin import REQUIRED_SCOPES, WebhookAdmin
from evergreen.shopify.bulk import AdminError, TokenRevoked
from evergreen.storage.profiles import PROGRESS_KEY
from evergreen.wiring import Edges
from evergreen_cli.activity import working
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs, stack_parameters
from evergreen_cli.commands.redrive import queues_of, waiting_in
from evergreen_cli.commands.register_klaviyo_webhook import (
    UI_TOPICS,
    KlaviyoWebhooks,
    WebhooksUnavailable,
    klaviyo_target,
    review,
    webhook_name,
)
from evergreen_cli.commands.register_webhooks import VERSION_FIX, needed_topics, plan, version_mismatches
from evergreen_cli.commands.send_webhook import DEFAULT_BASE_URL, shopify_headers
from evergreen_cli.local_stack.resources import LocalSecrets
from evergreen_cli.main import CliError, command, friendly_message
from evergreen_cli.sandboxes.shopify_admin import local_admin_token
from evergreen_cli.targets import local_api_url, use_target

REQUIRED_OUTPUTS = (
    "ShopifyWebhookUrl",
    "KlaviyoWebhookUrl",
    "ProfilesTableName",
    "SegmentChangesQueueUrl",
    "SegmentChangesDLQUrl",
    "ShopifyWebhookSecretsArn",
    "KlaviyoSecretsArn",
    "StalenessSweepFunctionName",
)
SHOPIFY_ROUTE = "/webhooks/shopify"
KLAVIYO_ROUTE = "/webhooks/klaviyo"
SELF_TEST_TOPIC = "evergreen/doctor_self_test"
"""A topic Evergreen does not handle: a correctly signed delivery gets 200 and writes nothing."""
SELF_TEST_SHOP = "evergreen-doctor.myshopify.com"
SANDBOX_SHOP = "evergreen-demo.myshopify.com"
SWEEP_TOLERANCE = timedelta(minutes=15)
"""A profile due longer ago than this means the sweep is not running or not keeping up (3 x 5 min)."""
SWEEP_INTERVALS_LATE = 2
"""The last complete sweep may be this many sweep intervals old; older means the schedule stopped or fails."""
DEFAULT_SWEEP_SCHEDULE = "rate(5 minutes)"
"""template.yaml's SweepSchedule default, for a stack that does not report the parameter."""
UNKNOWN_SCHEDULE_INTERVAL = timedelta(days=1)
"""The interval assumed for a cron schedule whose period `schedule_interval` cannot tell."""
LOCAL_SWEEP_EVERY = "EVERGREEN_SWEEP_EVERY_SECONDS"
"""In the local stack's state (stack.SWEEP_EVERY_STATE): seconds between its scheduled sweeps (absent with
--no-sweep)."""
KLAVIYO_KEY_PROBES: tuple[tuple[str, dict[str, str], str], ...] = (
    ("/api/profiles/", {"page[size]": "1"}, "profiles:read"),
    ("/api/lists/", {"fields[list]": "name"}, "lists:read"),
    ("/api/metrics/", {"fields[metric]": "name"}, "metrics:read"),
)
"""Reads that show the private key is valid and holds the scopes' read halves (one small page each)."""
KLAVIYO_KEY_SCOPES = (
    "the scopes profiles, lists and events read/write and metrics read "
    "(and webhooks read/write for `register-webhooks --klaviyo`)"
)
"""What the README's Secrets section asks of the private key."""
SYNC_LAG_ALARM = timedelta(minutes=15)
"""The SegmentChangesAgeAlarm threshold (900 s)."""


def minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} minutes"


def duration(delta: timedelta) -> str:
    """`45 s`, `12 min`, `3 h`, `2 days`: a span as a person reads it."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\(\s*(\S+)\s+(\S+)(\s+\S+){3,4}\s*\)")


def schedule_interval(expression: str) -> timedelta | None:
    """The period of an EventBridge schedule: `rate(N unit)`, or a cron expression every N minutes
    (`0/15 * ...`, `*/15 * ...`) or hourly (`5 * ...`); None when it cannot tell."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        unit = rate.group(2).rstrip("s") + "s"
        return timedelta(**{unit: int(rate.group(1))})
    cron = _CRON.fullmatch(text)
    if cron and cron.group(2) == "*":
        minute = cron.group(1)
        step = re.fullmatch(r"(?:\*|\d+)/(\d+)", minute)
        if step:
            return timedelta(minutes=int(step.group(1)))
        if minute.isdigit():
            return timedelta(hours=1)
    return None


PASS, FAIL, SKIP, WARN = "✓", "✗", "?", "!"


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool | None
    """True passed, False failed, None not checked."""
    detail: str = ""
    fix: str = ""
    warned: bool = False
    """Passed, but something needs doing soon (`fix` says what)."""

    def line(self) -> str:
        mark = WARN if self.ok and self.warned else PASS if self.ok else (SKIP if self.ok is None else FAIL)
        text = f"{mark} {self.name}" + (f": {self.detail}" if self.detail else "")
        shown = self.ok is False or self.warned
        return text + (f"\n    fix: {self.fix}" if shown and self.fix else "")


class Failed(Exception):
    """A check failed: `str()` says what, `fix` says what to do."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.fix = fix


class Warned(Exception):
    """A check passed but warns: `str()` says what, `fix` what to do before it becomes a failure."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.fix = fix


class NotChecked(Exception):
    """A check could not look (`str()` says why, and what to check by hand); it fails nothing."""


@dataclass
class Target:
    """What the checks look at: the local stack or a deployed one."""

    aws: bool
    stack: str
    region: str | None
    shopify_url: str
    segments_file: Path
    environment: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    shops: tuple[str, ...] = ()
    app_toml: bool = False
    """The shop's subscriptions ship in shopify.app.toml, which the Admin API does not list."""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    parameters: dict[str, str] = field(default_factory=dict)
    """The deployed stack's template parameters (SweepSchedule)."""
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    @property
    def where(self) -> str:
        return f"stack {self.stack}" if self.aws else "the local stack"

    @property
    def flag(self) -> str:
        return " --aws" if self.aws else ""

    @property
    def klaviyo_url(self) -> str:
        """The stack's Klaviyo webhook route: beside the Shopify one, else the stack output."""
        if self.shopify_url.endswith(SHOPIFY_ROUTE):
            return self.shopify_url.removesuffix(SHOPIFY_ROUTE) + KLAVIYO_ROUTE
        return self.outputs.get("KlaviyoWebhookUrl") or f"{local_api_url()}{KLAVIYO_ROUTE}"

    def settings(self) -> Settings:
        return Settings.from_env({**os.environ, **self.environment})

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    def secret(self, secret_id: str) -> dict[str, Any]:
        raw = self.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        try:
            value = json.loads(raw)
        except ValueError:
            raise Failed(f"{secret_id} is not JSON", "store it in the JSON format the README shows") from None
        if not isinstance(value, dict):
            raise Failed(f"{secret_id} is not a JSON object", "store it in the JSON format the README shows")
        return value


def is_placeholder(value: Any) -> bool:
    """The template's `{}` and the README's examples (`shpss_...`, `pk_...`) are not real secrets."""
    if isinstance(value, dict):
        return not value or any(is_placeholder(item) for item in value.values())
    text = str(value).strip()
    return not text or text.endswith("...") or "<" in text or "REPLACE" in text.upper()


# -- the checks --------------------------------------------------------------------------------


def check_outputs(target: Target) -> str:
    if not target.aws:
        return f"running (table {target.settings().profiles_table})"
    missing = [name for name in REQUIRED_OUTPUTS if not target.outputs.get(name)]
    if missing:
        raise Failed(f"missing {', '.join(missing)}", "deploy the current template: `make deploy`")
    return f"{len(REQUIRED_OUTPUTS)} outputs present"


def check_shopify_secret(target: Target) -> str:
    secret_id = target.settings().shopify_secrets_id
    fix = (
        f"aws secretsmanager put-secret-value --secret-id {secret_id} "
        '--secret-string \'{"my-store.myshopify.com": "<the app\'s client secret>"}\''
    )
    secrets = target.secret(secret_id)
    if not secrets:
        raise Failed("still the placeholder {}", fix)
    bad = sorted(shop for shop, value in secrets.items() if is_placeholder(value))
    if bad:
        raise Failed(f"placeholder value for {', '.join(bad)}", fix)
    if not target.aws:
        _signs_like_this_terminal(secrets.get("*"), LocalSecrets.from_env().shopify_webhook_secret, "SHOPIFY")
    return f"set for {', '.join(sorted(secrets))}"


def _signs_like_this_terminal(held: object, mine: str, which: str) -> None:
    """Locally, `send-webhook` from this terminal signs with EVERGREEN_LOCAL_<which>_SECRET (or the default): when
    the running stack holds another, every delivery sent from here gets 401. Never prints either secret."""
    if isinstance(held, str) and held and held != mine:
        variable = f"EVERGREEN_LOCAL_{which}_SECRET"
        raise Warned(
            f"the stack holds another secret than this terminal's {variable}: `send-webhook` from here gets 401",
            f"set {variable} here as in the terminal that ran `make run` (or unset it in both)",
        )


def check_klaviyo_secret(target: Target) -> str:
    secret_id = target.settings().klaviyo_secrets_id
    fix = (
        f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string "
        '\'{"my-store.myshopify.com": {"api_key": "pk_...", "webhook_secret": "..."}}\' (real values)'
    )
    secrets = target.secret(secret_id)
    if not secrets:
        raise Failed("still the placeholder {}", fix)
    for shop, entry in sorted(secrets.items()):
        if not isinstance(entry, dict) or not entry.get("api_key") or not entry.get("webhook_secret"):
            raise Failed(f"{shop} needs both api_key and webhook_secret", fix)
        if is_placeholder(entry.get("api_key")) or is_placeholder(entry.get("webhook_secret")):
            raise Failed(f"placeholder value for {shop}", fix)
    if not target.aws:
        held = (secrets.get("*") or {}).get("webhook_secret")
        _signs_like_this_terminal(held, LocalSecrets.from_env().klaviyo_webhook_secret, "KLAVIYO")
    return f"set for {', '.join(sorted(secrets))}"


def _klaviyo_get(target: Target, settings: Settings, key: str, path: str, params: dict[str, str]) -> httpx.Response:
    return target.http.get(
        f"{settings.klaviyo_base_url.rstrip('/')}{path}",
        params=params,
        headers={
            "Authorization": f"Klaviyo-API-Key {key}",
            "revision": settings.klaviyo_revision,
            "Accept": "application/vnd.api+json",
        },
    )


def check_klaviyo_key(target: Target) -> str:
    """Each shop's private key reads profiles, lists and metrics: a 401 is a key Klaviyo does not know, a 403 a
    key without a scope Evergreen needs (sync writes profiles and lists; the backfill reads metrics and events)."""
    settings = target.settings()
    secrets = target.secret(settings.klaviyo_secrets_id)
    if not secrets:
        raise Failed("no Klaviyo API key to try", "set the Klaviyo secret first (see the check above)")
    answers = []
    for shop, entry in sorted(secrets.items()):
        key = entry.get("api_key", "") if isinstance(entry, dict) else ""
        missing: list[str] = []
        for path, params, scope in KLAVIYO_KEY_PROBES:
            response = _klaviyo_get(target, settings, key, path, params)
            if response.status_code == 401:
                raise Failed(
                    f"Klaviyo rejected {shop}'s key (401): it is not a valid private API key of the account",
                    f"create a private API key in Klaviyo (Settings > API keys) with {KLAVIYO_KEY_SCOPES}, "
                    "and store it as api_key in the Klaviyo secret",
                )
            if response.status_code == 403:
                missing.append(scope)
            elif not response.is_success:
                raise Failed(
                    f"Klaviyo answered {response.status_code} to GET {path} for {shop}",
                    "try again; see status.klaviyo.com",
                )
        if missing:
            raise Failed(
                f"{shop}'s key lacks {', '.join(missing)} (403)",
                f"in Klaviyo (Settings > API keys) give the key {KLAVIYO_KEY_SCOPES}, or create a key with them and "
                "store it as api_key in the Klaviyo secret",
            )
        answers.append(shop)
    where = "the local sandbox" if not target.aws and "127.0.0.1" in settings.klaviyo_base_url else "Klaviyo"
    scopes = ", ".join(scope for _, _, scope in KLAVIYO_KEY_PROBES)
    return f"{where} accepts the key for {', '.join(answers)} ({scopes})"


def check_webhook_route(target: Target) -> str:
    secrets = target.secret(target.settings().shopify_secrets_id)
    shops = sorted(shop for shop in secrets if shop != "*")
    shop = shops[0] if shops else SELF_TEST_SHOP
    secret = secrets.get(shop) or secrets.get("*")
    if not isinstance(secret, str) or not secret:
        raise Failed("no Shopify secret to sign with", "set the Shopify secret first (see the check above)")
    body = json.dumps({"evergreen_doctor": str(uuid.uuid4())}).encode()
    signed = target.http.post(
        target.shopify_url, content=body, headers=shopify_headers(body, SELF_TEST_TOPIC, shop, secret)
    )
    if signed.status_code == 401:
        raise Failed(
            f"a delivery signed with the stored secret for {shop} got 401",
            "the function reads another secret: redeploy, or wait for the secrets cache (5 min)",
        )
    if signed.status_code != 200:
        raise Failed(f"{target.shopify_url} answered {signed.status_code}", "read the ShopifyWebhookFunction logs")
    forged = target.http.post(
        target.shopify_url, content=body, headers=shopify_headers(body, SELF_TEST_TOPIC, shop, "not-the-secret")
    )
    if forged.status_code != 401:
        raise Failed(f"a wrongly signed delivery got {forged.status_code}, not 401", "deploy the current code")
    return f"signed self-test 200, forged 401 ({target.shopify_url})"


def check_dlq(target: Target) -> str:
    sqs = target.client("sqs")
    queues = queues_of(sqs, target.settings().segment_changes_queue_url)
    waiting = waiting_in(sqs, queues.dlq_url)
    if waiting:
        reasons = dead_letter_reasons(sqs, queues.dlq_url)
        why = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common())
        raise Failed(
            f"{waiting} segment change(s) failed to reach Klaviyo" + (f" (sampled: {why})" if why else ""),
            "fix the cause (SegmentSyncFunction's logs; a profile Klaviyo refused, such as `invalid (email)`, needs "
            f"its data fixed in Shopify), then {command('redrive' + target.flag)}",
        )
    return "empty"


DLQ_SAMPLE = 10
"""Dead-lettered changes doctor reads the reason of (one receive, SQS's most)."""


def dead_letter_reasons(sqs: Any, dlq_url: str) -> Counter[str]:
    """Why dead-lettered changes failed (the `reason` sync gave each, e.g. Klaviyo's code and field), from a sample.

    The peek hides nothing: the messages are received with a visibility timeout of 0.
    """
    received = sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=DLQ_SAMPLE, VisibilityTimeout=0, MessageAttributeNames=["reason"]
    ).get("Messages", [])
    return Counter(
        str(message.get("MessageAttributes", {}).get("reason", {}).get("StringValue") or "no reason recorded")
        for message in received
    )


def _edges(target: Target) -> Edges:
    return Edges(target.settings())


def sweep_interval(target: Target) -> tuple[timedelta | None, str]:
    """How often the target sweeps, and how to say so: locally the stack's timer (None: --no-sweep); on AWS the
    stack's SweepSchedule parameter (template.yaml's default when the stack does not report it)."""
    return _timer(target, LOCAL_SWEEP_EVERY, "no sweep timer (--no-sweep)", "SweepSchedule", DEFAULT_SWEEP_SCHEDULE)


def _timer(
    target: Target, local_every: str, local_off: str, parameter: str, default: str
) -> tuple[timedelta | None, str]:
    """A scheduled function's period and how to say so: locally its timer's seconds in the stack's state (None
    without one), on AWS the stack's schedule parameter (`default` when the stack does not report it)."""
    if not target.aws:
        seconds = target.environment.get(local_every)
        if not seconds:
            return None, local_off
        every = timedelta(seconds=float(seconds))
        return every, f"every {duration(every)}"
    schedule = target.parameters.get(parameter) or default
    interval = schedule_interval(schedule)
    if interval is None:
        return UNKNOWN_SCHEDULE_INTERVAL, f"{schedule}, taken as once a day"
    return interval, schedule


def check_sweep(target: Target) -> str:
    edges = _edges(target)
    now = edges.clock.now()
    interval, schedule = sweep_interval(target)
    run_it = command("sweep" + target.flag)
    run = edges.store.last_sweep_run()
    if run is None:
        if target.aws:
            fix = (
                f"the schedule ({schedule}) runs it: wait one interval, or run {run_it} now; if it never runs, "
                "check that the stack's sweep rule is enabled (EventBridge) and read StalenessSweepFunction's logs"
            )
        elif interval is None:
            fix = f"run {run_it}, or restart `make run` without --no-sweep"
        else:
            fix = f"the local stack sweeps {schedule}: wait for it, or run {run_it} now"
        raise Failed("no sweep has run on this stack's table", fix)
    if interval is not None:
        limit = SWEEP_INTERVALS_LATE * interval
        last = run.last_complete_at
        if last is None or now - last > limit:
            since = f"finished its work {duration(now - last)} ago" if last else "never finished its work"
            if now - run.last_run_at <= limit:
                raise Failed(
                    f"the sweep runs ({schedule}) but {since}",
                    "each run continues where the last stopped; read StalenessSweepFunction's logs, and if it runs "
                    "out of time, raise FunctionMemorySize",
                )
            stopped = (
                "check that the stack's sweep rule is enabled (EventBridge) and read StalenessSweepFunction's logs"
                if target.aws
                else "restart `make run`"
            )
            ran = f"the last sweep ran {duration(now - run.last_run_at)} ago"
            raise Failed(
                f"{ran}{'' if last == run.last_run_at else f' and {since}'}; it should run {schedule}",
                f"{stopped}, or run {run_it} now",
            )
    overdue = sum(
        len(edges.store.due(shard, now - SWEEP_TOLERANCE, limit=1).items) for shard in range(edges.settings.due_shards)
    )
    fix = f"the sweep is not running or not keeping up: read its logs, or run {run_it}"
    if overdue:
        raise Failed(f"profiles due more than {minutes(SWEEP_TOLERANCE)} ago are still waiting", fix)
    progress = edges.dynamodb.get_item(TableName=edges.settings.profiles_table, Key=PROGRESS_KEY).get("Item")
    if progress:
        raise Failed(
            "a full re-evaluation (after a definitions change) has not finished",
            "it continues on each scheduled run; if it never ends, raise FunctionMemorySize",
        )
    return (
        f"last complete run {duration(now - (run.last_complete_at or run.last_run_at))} ago ({schedule}), "
        f"nothing due for more than {minutes(SWEEP_TOLERANCE)}, no unfinished full sweep"
    )


def check_sync_lag(target: Target) -> str:
    edges = _edges(target)
    now = edges.clock.now()
    late = sum(
        len(edges.store.unsynced(shard, now - SYNC_LAG_ALARM).items) for shard in range(edges.settings.due_shards)
    )
    if late:
        raise Failed(
            f"{late} change(s) unconfirmed by Klaviyo for more than {minutes(SYNC_LAG_ALARM)}",
            "read SegmentSyncFunction's logs (Klaviyo errors, 429s); the sweep re-sends them",
        )
    return f"every change confirmed within {minutes(SYNC_LAG_ALARM)}"


def check_definitions(target: Target) -> str:
    if not target.segments_file.is_file():
        raise Failed(
            f"no segments file {target.segments_file}",
            "pass --segments with your segments file (the default is $SEGMENTS_FILE, else the packaged pack)",
        )
    try:
        local = load_definitions(target.segments_file)
    except DefinitionsError as error:
        raise Failed(
            str(error).strip(), f"fix {target.segments_file}; {command(f'plan {target.segments_file}')} checks it too"
        ) from None
    deployed = _edges(target).store.swept_definitions_hash()
    if deployed is None:
        return f"{target.segments_file.name} {local.hash}; no sweep has recorded definitions yet"
    if deployed != local.hash:
        raise Failed(
            f"{target.where} runs {deployed}, {target.segments_file} is {local.hash}",
            f"preview with {command(f'plan{target.flag} {target.segments_file}')}, then `make deploy`"
            if target.aws
            else "restart `make run` with SEGMENTS_FILE set to the file",
        )
    return f"{target.segments_file.name} {local.hash} is deployed"


def check_alarms(target: Target) -> str:
    """The stack's CloudWatch alarms (named `<stack>-<alarm>-<suffix>` by CloudFormation) not in ALARM."""
    if not target.aws:
        raise NotChecked("not checked: no CloudWatch locally")
    cloudwatch = target.client("cloudwatch")
    firing: list[str] = []
    count = 0
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{target.stack}-"):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            count += 1
            if alarm["StateValue"] == "ALARM":
                firing.append(alarm["AlarmName"].removeprefix(f"{target.stack}-").rsplit("-", 1)[0])
    if firing:
        raise Failed(
            f"in alarm: {', '.join(sorted(firing))}",
            "read the alarm's description in the CloudWatch console, and the dashboard (Output DashboardUrl)",
        )
    return f"{count} alarm(s), none firing"


def _admin_shops(target: Target) -> list[str]:
    """The shops to check: --shop, else those with an Admin token or a webhook secret, else the local sandbox's."""
    if target.shops:
        return list(target.shops)
    settings = target.settings()
    named: set[str] = set()
    for secret_id in (settings.shopify_admin_secrets_id, settings.shopify_secrets_id):
        try:
            named |= {shop for shop in target.secret(secret_id) if shop != "*"}
        except Failed:
            continue
        except Exception as error:
            if "ResourceNotFound" not in repr(error):
                raise
    if named:
        return sorted(named)
    if not target.aws and settings.shopify_admin_base_url:
        answer = target.http.get(f"{settings.shopify_admin_base_url.rstrip('/')}/_sandbox/shop").json()
        return [str(answer.get("shop") or SANDBOX_SHOP)]
    raise Failed("no shop to check", f"name it: {command(f'doctor{target.flag} --shop my-store.myshopify.com')}")


def _webhook_admin(target: Target, shop: str) -> WebhookAdmin:
    from evergreen.backfill_wiring import MissingAdminToken, admin_token  # noqa: PLC0415

    settings = target.settings()
    if not target.aws:
        if not settings.shopify_admin_base_url:
            raise Failed("the local stack has no Shopify sandbox", "restart it with `make run`")
        token = local_admin_token()
        return WebhookAdmin(shop, token, base_url=settings.shopify_admin_base_url, http=target.http, max_attempts=2)
    try:
        token = admin_token(_edges(target), shop)
    except MissingAdminToken as error:
        raise Failed(
            str(error),
            f"aws secretsmanager put-secret-value --secret-id {settings.shopify_admin_secrets_id} "
            f'--secret-string \'{{"{shop}": "<the Admin API access token>"}}\' (README, Backfill)',
        ) from None
    return WebhookAdmin(shop, token, http=target.http, max_attempts=2)


def check_shopify_token(target: Target) -> str:
    """Each shop's Admin API token is accepted and holds the scopes Evergreen needs."""
    answers = []
    for shop in _admin_shops(target):
        admin = _webhook_admin(target, shop)
        try:
            granted = admin.access_scopes()
        except TokenRevoked:
            raise Failed(
                f"Shopify refused {shop}'s Admin API token (401)",
                "reinstall the app or create a new token, then store it (README, Backfill)",
            ) from None
        except AdminError as error:
            raise Failed(str(error), "try again; see shopifystatus.com") from None
        missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        if missing:
            raise Failed(
                f"{shop}'s token lacks {', '.join(missing)}",
                "add the scopes to the app's configuration, have the merchant approve them, and store the new token",
            )
        if ALL_ORDERS_SCOPE not in granted:
            raise Failed(
                f"{shop}'s token lacks {ALL_ORDERS_SCOPE}: Shopify serves a backfill only the last "
                f"{RECENT_ORDERS_DAYS} days of orders, so lapsed, at_risk and lifetime totals miss older orders",
                f"request {ALL_ORDERS_SCOPE} for the app (Partner Dashboard, API access), add it to the app's scopes, "
                "have the merchant approve it, and store the new token",
            )
        answers.append(shop)
    return f"accepted for {', '.join(answers)} with {', '.join((*REQUIRED_SCOPES, ALL_ORDERS_SCOPE))}"


def check_shopify_subscriptions(target: Target) -> str:
    """Each shop's subscriptions are every topic Evergreen needs, here, in JSON, at the pinned version."""
    if target.app_toml:
        raise NotChecked("not checked: --app-toml (the Admin API does not list shopify.app.toml's subscriptions)")
    done: list[str] = []
    late: list[str] = []
    for shop in _admin_shops(target):
        try:
            existing = _webhook_admin(target, shop).webhook_subscriptions()
        except AdminError as error:
            raise Failed(str(error), "fix the Shopify token (see the check above)") from None
        steps = plan(existing, target.shopify_url)
        missing = sum(1 for step in steps if step.action == "create")
        elsewhere = sum(1 for step in steps if step.action == "update")
        extra = sum(1 for step in steps if step.action == "delete")
        register = command(f"register-webhooks{target.flag} --shop {shop}")
        if missing or elsewhere or extra:
            problems = [
                f"{count} {what}"
                for count, what in (
                    (missing, "topic(s) not subscribed"),
                    (elsewhere, "pointing elsewhere or not JSON"),
                    (extra, "unneeded at this URL"),
                )
                if count
            ]
            raise Failed(
                f"{shop}: {', '.join(problems)} ({target.shopify_url})",
                f"run {register} (see what it would do with --dry-run)",
            )
        versions = version_mismatches(existing)
        if versions:
            late.append(f"{shop} at {', '.join(versions)}")
        done.append(shop)
    summary = f"{len(needed_topics())} topics at this URL, for {', '.join(done)}"
    if late:
        raise Warned(f"{summary}; delivered at API version {'; '.join(late)}, not {SHOPIFY_API_VERSION}", VERSION_FIX)
    return f"{summary}, API version {SHOPIFY_API_VERSION}"


def _pin_line(what: str, status: PinStatus, ends_as: str) -> str:
    left = "ended" if status.expired else f"{status.days_left} days left"
    return f"{what} {status.pin} ({ends_as} {status.ends.isoformat()}, {left})"


def check_api_versions(target: Target) -> str:
    """Both pins and how long their owners support them: Shopify's version (12 months from release) and
    Klaviyo's revision (stable one year, retired after two). Warns inside the last three months."""
    shopify = shopify_pin_status(SHOPIFY_API_VERSION, target.today)
    revision = target.settings().klaviyo_revision
    klaviyo = klaviyo_pin_status(revision, target.today)
    retired = klaviyo_window(revision).retired_on
    detail = (
        f"{_pin_line('Shopify', shopify, 'supported until')}; "
        f"{_pin_line('Klaviyo revision', klaviyo, 'stable until')}, retired {retired.isoformat()}"
    )
    due = [
        name for name, status in (("Shopify", shopify), ("Klaviyo", klaviyo)) if status.expired or status.ending_soon
    ]
    if due:
        raise Warned(
            detail,
            f"move the {' and '.join(due)} pin to the latest stable version: docs/extending.md, "
            '"Moving to a new API version" (one change in layers/evergreen/evergreen/settings.py), then '
            f"{command('shopify-app-toml')} and redeploy",
        )
    return detail


def _klaviyo_shops(target: Target) -> list[str]:
    """--shop, else the shops the Klaviyo secret names, else the shops the Shopify checks look at."""
    if target.shops:
        return list(target.shops)
    named = sorted(shop for shop in target.secret(target.settings().klaviyo_secrets_id) if shop != "*")
    return named or _admin_shops(target)


def check_klaviyo_webhook(target: Target) -> str:
    """Each shop's Klaviyo system webhook (`Evergreen <shop>`) sends the topics Evergreen needs to this stack's
    Klaviyo route with `?shop=<shop>`: the same review `register-webhooks --klaviyo` acts on."""
    settings = target.settings()
    fine: list[str] = []
    unreadable: list[str] = []
    for shop in _klaviyo_shops(target):
        try:
            klaviyo = klaviyo_target(settings, shop, target.klaviyo_url)
        except CliError as error:
            raise Failed(str(error), "set the Klaviyo secret first (see the Klaviyo secret check)") from None
        api = KlaviyoWebhooks(klaviyo, target.http)
        try:
            found = review(api, shop)
        except WebhooksUnavailable as unavailable:
            unreadable.append(_check_in_the_ui(shop, klaviyo.webhook_url, unavailable.status))
            continue
        except CliError as error:
            raise Failed(str(error), "check the account's plan in Klaviyo (Settings > Webhooks)") from None
        register = "run " + command(f"register-webhooks{target.flag} --klaviyo --shop {shop}")
        if found.action == "create":
            raise Failed(
                f"{shop}: no Klaviyo webhook named {found.name!r}", f"{register} (or create it as its output says)"
            )
        if found.action == "update":
            raise Failed(f"{shop}: {found.name!r} {found.why} ({klaviyo.webhook_url})", f"{register} to fix it")
        shown = found.shown_url or klaviyo.webhook_url
        partly = "" if shown == klaviyo.webhook_url else " (Klaviyo shows only the address's origin)"
        fine.append(f"{found.name!r} enabled, {len(found.topics)} topics, sending to {shown}{partly}")
    if unreadable:
        raise NotChecked("; ".join(unreadable) + (f" ({'; '.join(fine)})" if fine else ""))
    return "; ".join(fine)


def _check_in_the_ui(shop: str, url: str, status: int) -> str:
    why = {401: "Klaviyo rejected the key (401)", 404: "the account has no Webhooks API (404)"}.get(
        status, f"the key lacks webhooks:read ({status})"
    )
    topics = ", ".join(topic.removeprefix("event:klaviyo.") for topic in UI_TOPICS)
    return (
        f"{why}: in Klaviyo, Settings > Webhooks, check that {webhook_name(shop)!r} is enabled, "
        f"sends to {url} and has the topics {topics}"
    )


DEFAULT_POLL_SCHEDULE = "rate(5 minutes)"
"""template.yaml's EngagementPollSchedule default, for a stack that does not report the parameter."""
LOCAL_POLL_EVERY = "EVERGREEN_ENGAGEMENT_POLL_EVERY_SECONDS"
"""In the local stack's state (stack.ENGAGEMENT_POLL_EVERY_STATE): seconds between its engagement polls."""
POLL_INTERVALS_LATE = 3
"""An account's engagement may be this many poll intervals (plus the poll's overlap) behind before it fails."""


def poll_interval(target: Target) -> tuple[timedelta | None, str]:
    """How often the target polls Klaviyo for engagement (None: the poll is off), and how to say so."""
    if target.aws and target.parameters.get("EngagementPollState", "ENABLED") == "DISABLED":
        return None, "off (EngagementPollState=DISABLED)"
    off = "off (--engagement-poll-every 0)"
    return _timer(target, LOCAL_POLL_EVERY, off, "EngagementPollSchedule", DEFAULT_POLL_SCHEDULE)


def _has_webhook(target: Target, shop: str) -> bool:
    """Whether the shop's Klaviyo system webhook is in place (readable and right)."""
    try:
        api = KlaviyoWebhooks(klaviyo_target(target.settings(), shop, target.klaviyo_url), target.http)
        return review(api, shop).action == "keep"
    except (WebhooksUnavailable, CliError):
        return False


def check_engagement(target: Target) -> str:
    """Per Klaviyo account: which path brings its engagement (webhook, poll or both), when the poll last completed
    and how far behind it is."""
    from evergreen.storage.engagement_poll import DynamoPollCheckpoints  # noqa: PLC0415 - this check's only

    edges = _edges(target)
    now = edges.clock.now()
    interval, schedule = poll_interval(target)
    shops = list(target.shops) or edges.engagement_poll.shops()
    if not shops:
        raise NotChecked('no shop is named in the Klaviyo secret (the "*" account names none): name each shop')
    checkpoints = DynamoPollCheckpoints(edges.dynamodb, edges.settings.profiles_table)
    seen: list[str] = []
    problems: list[tuple[str, str]] = []
    overlap = timedelta(seconds=edges.settings.engagement_poll_overlap_seconds)
    for shop in shops:
        webhook = _has_webhook(target, shop)
        path = "both" if webhook and interval else "webhook" if webhook else "poll" if interval else "none"
        if interval is None:
            if not webhook:
                problems.append(
                    (
                        f"{shop}: no Klaviyo webhook and the engagement poll is {schedule}",
                        "turn the poll on (EngagementPollState=ENABLED)"
                        if target.aws
                        else "restart `make run` with the poll on",
                    )
                )
            seen.append(f"{shop}: {path}")
            continue
        checkpoint = checkpoints.load(shop)
        if checkpoint is None or checkpoint.completed_at is None:
            why = f" (last failure: {checkpoint.failure})" if checkpoint is not None and checkpoint.failure else ""
            problems.append((f"{shop}: the engagement poll has not completed yet{why}", _poll_fix(target, checkpoint)))
            seen.append(f"{shop}: {path}, never completed")
            continue
        behind = now - checkpoint.covered_until
        line = (
            f"{shop}: {path}, poll last completed {duration(now - checkpoint.completed_at)} ago, "
            f"{duration(behind)} behind"
        )
        seen.append(line)
        if behind > POLL_INTERVALS_LATE * interval + overlap:
            failure = f" (last failure: {checkpoint.failure})" if checkpoint.failure else ""
            problems.append((f"{line}; it polls {schedule}{failure}", _poll_fix(target, checkpoint)))
    if problems:
        raise Failed("; ".join(problem for problem, _ in problems), "; ".join(dict.fromkeys(f for _, f in problems)))
    return "; ".join(seen)


def _poll_fix(target: Target, checkpoint: Any) -> str:
    failure = getattr(checkpoint, "failure", None) or ""
    if " 401 " in f" {failure} ":
        return "Klaviyo rejects the shop's api_key: store a valid private key in the Klaviyo secret"
    if " 403 " in f" {failure} ":
        return "give the shop's Klaviyo key the scopes events:read and metrics:read"
    if target.aws:
        return "wait one poll interval; if it stays, read EngagementPollFunction's logs (they name the shop)"
    return "wait one poll interval; if it stays, read the `make run` log"


CHECKS: tuple[tuple[str, Callable[[Target], str]], ...] = (
    ("stack", check_outputs),
    ("Shopify webhook secret", check_shopify_secret),
    ("Klaviyo secret", check_klaviyo_secret),
    ("Klaviyo API key", check_klaviyo_key),
    ("webhook route", check_webhook_route),
    ("Shopify Admin token", check_shopify_token),
    ("Shopify subscriptions", check_shopify_subscriptions),
    ("API versions", check_api_versions),
    ("Klaviyo webhook", check_klaviyo_webhook),
    ("Klaviyo engagement", check_engagement),
    ("dead-letter queue", check_dlq),
    ("staleness sweep", check_sweep),
    ("sync lag", check_sync_lag),
    ("alarms", check_alarms),
    ("segment definitions", check_definitions),
)


def run_checks(target: Target) -> Iterator[Result]:
    """Every check, in order; one failing never stops the others."""
    for name, check in CHECKS:
        try:
            with working(f"checking the {name}"):
                detail = check(target)
        except Failed as failure:
            yield Result(name, False, str(failure), failure.fix)
            continue
        except Warned as warning:
            yield Result(name, True, str(warning), warning.fix, warned=True)
            continue
        except NotChecked as unchecked:
            yield Result(name, None, str(unchecked))
            continue
        except Exception as error:
            message = friendly_message(error)
            if message is None:
                message = f"{type(error).__name__}: {error}"
            yield Result(name, False, message, "see the message")
            continue
        yield Result(name, True, detail)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aws", action="store_true", help="check the deployed stack (default: the local stack)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--url", help=f"the Shopify webhook URL (default: the stack output, or {DEFAULT_BASE_URL}/webhooks/shopify)"
    )
    parser.add_argument(
        "--shop",
        type=shop_domain,
        action="append",
        default=[],
        help="a shop whose Shopify token, subscriptions and Klaviyo webhook to check (repeatable; default: the shops "
        "in the secrets)",
    )
    parser.add_argument(
        "--app-toml",
        action="store_true",
        help="the subscriptions ship in shopify.app.toml (the Admin API cannot list those): skip their check",
    )
    parser.add_argument(
        "--segments",
        type=Path,
        metavar="FILE",
        help="your segments file (default: $SEGMENTS_FILE, else the packaged default pack)",
    )


def target_of(args: argparse.Namespace) -> Target:
    segments = args.segments or Path(os.environ.get("SEGMENTS_FILE") or DEFAULT_DEFINITIONS_PATH)
    if args.aws:
        outputs = stack_outputs(args.stack, args.region)
        environment = use_target(True, args.stack, args.region) | {
            "SHOPIFY_SECRETS_ID": outputs.get("ShopifyWebhookSecretsArn", ""),
            "KLAVIYO_SECRETS_ID": outputs.get("KlaviyoSecretsArn", ""),
            "SHOPIFY_ADMIN_SECRETS_ID": outputs.get("ShopifyAdminTokensArn", ""),
        }
        url = args.url or outputs.get("ShopifyWebhookUrl", "")
        return Target(
            True,
            args.stack,
            args.region,
            url,
            segments,
            environment,
            outputs,
            tuple(args.shop),
            args.app_toml,
            parameters=stack_parameters(args.stack, args.region),
        )
    environment = use_target(False, args.stack, args.region)
    url = args.url or f"{local_api_url()}/webhooks/shopify"
    return Target(False, args.stack, args.region, url, segments, environment, {}, tuple(args.shop), args.app_toml)


def main(args: argparse.Namespace) -> int:
    target = target_of(args)
    results = []
    for result in run_checks(target):
        print(result.line(), flush=True)
        results.append(result)
    failed = [result for result in results if result.ok is False]
    warned = sum(1 for result in results if result.warned)
    warnings = f", {warned} with a warning" if warned else ""
    print(f"{len(failed)} of {len(results)} checks failed{warnings}" if failed else f"all checks passed{warnings}")
    return 1 if failed else 0
