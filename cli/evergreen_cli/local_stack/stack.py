"""`evergreen run`: the whole pipeline on this machine, from template.yaml's own definitions.

moto server (DynamoDB, SQS, Secrets Manager, S3) + the HTTP API on :3000 + an SQS poller feeding SegmentSync +
a timer running the staleness sweep + the Klaviyo sandbox on :3100 (or the real Klaviyo when KLAVIYO_API_KEY is set).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from evergreen.segments import DefinitionsError, load_definitions
from evergreen_cli.activity import working
from evergreen_cli.local_stack.http_api import HttpApiServer
from evergreen_cli.local_stack.lambda_runtime import LambdaRuntime
from evergreen_cli.local_stack.resources import LOCAL_POLL_SHOPS, LocalResources, LocalSecrets, provision
from evergreen_cli.local_stack.template import (
    REPO_ROOT,
    TEMPLATE_PATH,
    SqsSource,
    http_routes,
    load_template,
    schedules,
    sqs_sources,
)
from evergreen_cli.main import CliError
from evergreen_cli.targets import local_state_path

LOG = logging.getLogger("evergreen_cli.local_stack.stack")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_MOTO_PORT = 4566
DEFAULT_KLAVIYO_PORT = 3100
DEFAULT_SHOPIFY_PORT = 3200
DEFAULT_SWEEP_EVERY = 60.0
DEFAULT_RETRY_AFTER = 5
DEFAULT_ENGAGEMENT_POLL_EVERY = 30.0
ENGAGEMENT_POLL_FUNCTION = "EngagementPollFunction"
"""Scheduled like the sweep, on its own timer (`engagement_poll_every`)."""
ENGAGEMENT_POLL_EVERY_STATE = "EVERGREEN_ENGAGEMENT_POLL_EVERY_SECONDS"
"""In the state file while the poll timer runs: its interval, which `doctor` judges the poll's lag by."""
SWEEP_EVERY_STATE = "EVERGREEN_SWEEP_EVERY_SECONDS"
"""In the state file while the sweep timer runs: its interval, which `doctor` checks the last sweep against."""
REAL_KLAVIYO_URL = "https://a.klaviyo.com"
SAMPLE_SHOP = "evergreen-demo.myshopify.com"
SAMPLE_TOPIC = "orders/create"
SAMPLE_EVENT = Path("events/shopify/orders_create.json")


@dataclass
class LocalStackOptions:
    """How to run the stack. Port 0 means any free port (see LocalStack's properties for the real ones)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    moto_port: int = DEFAULT_MOTO_PORT
    klaviyo_port: int = DEFAULT_KLAVIYO_PORT
    shopify_port: int = DEFAULT_SHOPIFY_PORT
    """The Shopify Admin sandbox (what `evergreen backfill` reads locally)."""
    sweep_every: float | None = DEFAULT_SWEEP_EVERY
    """Seconds between scheduled sweeps; None disables the timer."""
    sweep_at_start: bool = True
    """With the timer on, sweep once as soon as the stack is up (False: the first sweep is one interval in)."""
    engagement_poll_every: float | None = DEFAULT_ENGAGEMENT_POLL_EVERY
    """Seconds between engagement polls of Klaviyo's Events API; None disables the timer."""
    poll: bool = True
    """Run the SQS poller thread (tests may instead call LocalStack.drain())."""
    retry_after: int | None = None
    """Seconds before a reported failure is retried locally. None, as Lambda does: it keeps the visibility the
    function gave it (SegmentSync postpones each failed message by its own back-off). A crashed batch is
    retried after this, or DEFAULT_RETRY_AFTER seconds (the deployed queue waits its VisibilityTimeout)."""
    moto_endpoint: str | None = None
    """Use this moto server instead of starting one."""
    prefix: str = "evergreen-local"
    region: str = "us-east-1"
    template_path: Path = TEMPLATE_PATH
    spec_path: Path | None = None
    """Klaviyo OpenAPI spec for the sandbox; None = its default (../shared/klaviyo/openapi/stable.json)."""
    use_sandbox: bool | None = None
    """None: the sandbox unless KLAVIYO_API_KEY is set."""
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    state_file: Path | None = None
    """Where to write the functions' environment while running (the CLI's other commands read it)."""


def options_on_free_ports(**overrides: Any) -> LocalStackOptions:
    """Options whose every port is 0 (any free one), for tests and benchmarks: they run beside `make run`,
    which holds the default ports. `overrides` set any other field."""
    ports = {item.name: 0 for item in fields(LocalStackOptions) if item.name.endswith("port")}
    return LocalStackOptions(**(ports | overrides))


def scheduled_event(rule_arn: str, region: str, account: str, now: datetime | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to its target."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source delivers, from a ReceiveMessage message."""
    attributes = {
        name: value
        for name, value in message.get("Attributes", {}).items()
        if name
        in {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "AWSTraceHeader",
        }
    }
    message_attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        converted: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        message_attributes[name] = converted
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest()),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(result: Any, message_ids: list[str]) -> set[str]:
    """Which messages Lambda would retry after a ReportBatchItemFailures handler returned `result`.

    No batchItemFailures means all succeeded; an identifier that is empty or not in the batch fails the batch.
    """
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    failed: set[str] = set()
    for item in result["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(str(identifier))
    return failed


class LocalStack:
    """Everything `evergreen run` starts, in one object: start(), stop(), and the URLs in between."""

    def __init__(self, options: LocalStackOptions | None = None) -> None:
        self.options = options or LocalStackOptions()
        self.template = load_template(self.options.template_path)
        self.resources: LocalResources | None = None
        self.runtime: LambdaRuntime | None = None
        self.http_api: HttpApiServer | None = None
        self.sandbox: Any | None = None
        self.shopify_sandbox: Any | None = None
        self._moto: Any | None = None
        self._moto_endpoint: str | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._poll_locks = {source.queue: threading.Lock() for source in sqs_sources(self.template)}
        self.sweeps_run = 0
        self._wrote_state = False

    # -- what runs where
    @property
    def api_url(self) -> str:
        return self._require(self.http_api).url

    @property
    def shopify_webhook_url(self) -> str:
        return f"{self.api_url}/webhooks/shopify"

    @property
    def klaviyo_webhook_url(self) -> str:
        return f"{self.api_url}/webhooks/klaviyo"

    @property
    def moto_endpoint(self) -> str:
        return self._require(self._moto_endpoint)

    @property
    def klaviyo_url(self) -> str:
        return self._require(self.resources).klaviyo_base_url

    @property
    def sweeps_on_timer(self) -> bool:
        return bool(self.options.sweep_every) and bool(schedules(self.template))

    @property
    def uses_sandbox(self) -> bool:
        if self.options.use_sandbox is not None:
            return self.options.use_sandbox
        return not self.options.environ.get("KLAVIYO_API_KEY")

    @staticmethod
    def _require[T](value: T | None) -> T:
        if value is None:
            raise RuntimeError("the local stack is not started")
        return value

    # -- lifecycle
    def start(self, on_step: Callable[[str], None] = lambda step: None) -> LocalStack:
        """Start moto, provision, the sandbox, the HTTP API, the poller and the sweep timer; `on_step` hears what
        starts next."""
        try:
            on_step("starting the local AWS services (moto)")
            self._start_moto()
            if self.uses_sandbox:
                on_step("starting the Klaviyo sandbox (loading Klaviyo's API spec)")
            klaviyo_url = self._start_sandbox() if self.uses_sandbox else REAL_KLAVIYO_URL
            on_step("creating the table, queues, secrets and bucket from template.yaml")
            self.resources = provision(
                self.template,
                self.moto_endpoint,
                region=self.options.region,
                prefix=self.options.prefix,
                local_secrets=LocalSecrets.from_env(self.options.environ),
                klaviyo_base_url=klaviyo_url,
            )
            from evergreen_cli.sandboxes.shopify_admin import start_shopify_sandbox  # noqa: PLC0415

            on_step("starting the Shopify Admin sandbox")
            self.shopify_sandbox = start_shopify_sandbox(self.options.host, self.options.shopify_port)
            on_step("starting the HTTP API")
            self.runtime = LambdaRuntime(self.resources)
            self.runtime.apply_environment()
            self.http_api = HttpApiServer(
                http_routes(self.template), self.runtime.invoke, self.options.host, self.options.port
            )
            self.http_api.start()
            self._write_state()
            if self.options.poll:
                on_step("starting the SQS pollers")
                # One poller per queue, as Lambda polls each event source apart: a slow sync batch never
                # holds back a transition due now.
                for source in sqs_sources(self.template):
                    self._spawn(f"sqs-poller-{source.function}", lambda source=source: self._poll_forever(source))
            if self.sweeps_on_timer:
                self._spawn("sweep-timer", self._sweep_forever)
            if self.options.engagement_poll_every and self._engagement_poll_source() is not None:
                self._spawn("engagement-poll-timer", self._poll_engagement_forever)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        if self.http_api is not None:
            self.http_api.stop()
            self.http_api = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.shopify_sandbox is not None:
            self.shopify_sandbox.stop()
            self.shopify_sandbox = None
        if self.runtime is not None:
            self.runtime.restore_environment()
        if self.options.state_file is not None and self._wrote_state:
            self.options.state_file.unlink(missing_ok=True)
            self._wrote_state = False
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _write_state(self) -> None:
        if self.options.state_file is None:
            return
        self.options.state_file.parent.mkdir(parents=True, exist_ok=True)
        environment = {**self._require(self.runtime).environment(), "EVERGREEN_API_URL": self.api_url}
        if self.shopify_sandbox is not None:
            environment["SHOPIFY_ADMIN_BASE_URL"] = self.shopify_sandbox.url
        if self.sweeps_on_timer:
            environment[SWEEP_EVERY_STATE] = f"{self.options.sweep_every:g}"
        if self.options.engagement_poll_every:
            environment[ENGAGEMENT_POLL_EVERY_STATE] = f"{self.options.engagement_poll_every:g}"
        self.options.state_file.write_text(json.dumps(environment, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self._wrote_state = True

    def _start_moto(self) -> None:
        if self.options.moto_endpoint:
            self._moto_endpoint = self.options.moto_endpoint.rstrip("/")
            return
        # moto server with DynamoDB requests serialised, so conditional writes are atomic as in DynamoDB.
        from evergreen_cli.local_stack.moto_server import MotoServer  # noqa: PLC0415 - moto is a dev dependency

        self._moto = MotoServer(self.options.host, self.options.moto_port).start()
        self._moto_endpoint = self._moto.url

    def _start_sandbox(self) -> str:
        from evergreen_cli.sandboxes.klaviyo_api import start_sandbox  # noqa: PLC0415 - optional until written

        self.sandbox = start_sandbox(self.options.host, self.options.klaviyo_port, self.options.spec_path)
        return str(self.sandbox.url)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- invoking
    def invoke(self, logical_id: str, event: Any) -> Any:
        return self._require(self.runtime).invoke(logical_id, event)

    def run_sweep(self, event: dict[str, Any] | None = None) -> Any:
        """Invoke the scheduled function(s) once, with a scheduled event unless `event` is given."""
        runtime, resources = self._require(self.runtime), self._require(self.resources)
        result: Any = None
        for source in schedules(self.template):
            if source.function == ENGAGEMENT_POLL_FUNCTION:
                continue
            rule_arn = f"arn:aws:events:{resources.region}:123456789012:rule/{resources.prefix}-{source.function}"
            payload = event if event is not None else scheduled_event(rule_arn, resources.region, "123456789012")
            result = runtime.invoke(source.function, payload)
        self.sweeps_run += 1
        return result

    def _engagement_poll_source(self) -> Any:
        return next((s for s in schedules(self.template) if s.function == ENGAGEMENT_POLL_FUNCTION), None)

    def run_engagement_poll(self) -> Any:
        """Invoke the engagement poll once, with a scheduled event, as its EventBridge rule does."""
        runtime, resources = self._require(self.runtime), self._require(self.resources)
        rule_arn = f"arn:aws:events:{resources.region}:123456789012:rule/{resources.prefix}-{ENGAGEMENT_POLL_FUNCTION}"
        return runtime.invoke(ENGAGEMENT_POLL_FUNCTION, scheduled_event(rule_arn, resources.region, "123456789012"))

    def _poll_engagement_forever(self) -> None:
        """An engagement poll as soon as the stack is up, then one every `engagement_poll_every` seconds, at a fixed
        rate as EventBridge schedules it (a poll's own duration does not push the next one back)."""
        every = float(self.options.engagement_poll_every or DEFAULT_ENGAGEMENT_POLL_EVERY)
        due = time.monotonic()
        while not self._stopping.is_set():
            try:
                LOG.info("scheduled engagement poll: %s", self.run_engagement_poll())
            except Exception:
                LOG.exception("scheduled engagement poll failed")
            due += every
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return

    def poll_once(self, wait_seconds: int = 0, source: SqsSource | None = None) -> int:
        """Receive one batch from each SQS event source (or only `source`) and hand it to its function;
        returns messages handled."""
        runtime, resources = self._require(self.runtime), self._require(self.resources)
        handled = 0
        for polled in [source] if source else sqs_sources(self.template):
            with self._poll_locks[polled.queue]:
                handled += self._deliver_batch(
                    runtime, resources, polled.queue, polled.function, polled.batch_size, wait_seconds
                )
        return handled

    def drain(self, timeout: float = 30.0) -> int:
        """Deliver batches until the queues have nothing visible (or `timeout` passes); returns messages handled."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            handled = self.poll_once()
            total += handled
            if handled == 0:
                break
        return total

    def _deliver_batch(
        self,
        runtime: LambdaRuntime,
        resources: LocalResources,
        queue: str,
        function: str,
        batch_size: int,
        wait_seconds: int,
    ) -> int:
        sqs = resources.client("sqs")
        url = resources.ref(queue)
        arn = resources.get_att(queue, "Arn")
        messages: list[dict[str, Any]] = []
        wait = wait_seconds
        while len(messages) < batch_size:
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages.extend(received)
            wait = 0
        if not messages:
            return 0
        event = {"Records": [sqs_record(message, arn, resources.region) for message in messages]}
        ids = [message["MessageId"] for message in messages]
        crashed = False
        try:
            failed = failed_message_ids(runtime.invoke(function, event), ids)
        except Exception:
            LOG.exception("%s failed a batch of %d; all will be retried", function, len(ids))
            failed, crashed = set(ids), True
        done = [m for m in messages if m["MessageId"] not in failed]
        retry_after = self.options.retry_after
        if retry_after is None and crashed:
            retry_after = DEFAULT_RETRY_AFTER
        retry = [m for m in messages if m["MessageId"] in failed] if retry_after is not None else []
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        for start in range(0, len(retry), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": retry_after}
                    for i, m in enumerate(retry[start : start + 10])
                ],
            )
        LOG.info("%s: %d message(s), %d failed", function, len(messages), len(failed))
        return len(messages)

    def _poll_forever(self, source: SqsSource) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once(wait_seconds=1, source=source)
                # Let a `drain()` or `poll_once()` from another thread take the queue's lock: a lock is not fair,
                # and a poller that re-takes it at once can starve them for minutes.
                self._stopping.wait(0.01)
            except Exception:
                if self._stopping.is_set():
                    return
                LOG.exception("SQS poller error; retrying in 1 s")
                self._stopping.wait(1)

    def _sweep_forever(self) -> None:
        """A sweep as soon as the stack is up (so `doctor` finds a recent one from the start; unless
        `sweep_at_start` is off), then one every `sweep_every` seconds."""
        every = float(self.options.sweep_every or DEFAULT_SWEEP_EVERY)
        if not self.options.sweep_at_start and self._stopping.wait(every):
            return
        while not self._stopping.is_set():
            try:
                LOG.info("scheduled sweep: %s", self.run_sweep())
            except Exception:
                LOG.exception("scheduled sweep failed")
            if self._stopping.wait(every):
                return

    # -- the banner
    def banner(self) -> str:
        resources = self._require(self.resources)
        sandbox = (
            f"Klaviyo sandbox      {self.klaviyo_url}  (requests: GET {self.klaviyo_url}/_sandbox/requests)"
            if self.sandbox is not None
            else f"Klaviyo              {self.klaviyo_url}  (REAL: KLAVIYO_API_KEY is set)"
        )
        sweep = f"every {self.options.sweep_every:g} s" if self.options.sweep_every else "off (--no-sweep)"
        every = self.options.engagement_poll_every
        engagement = f"every {every:g} s" if every else "off (--engagement-poll-every 0)"
        lines = [
            "Evergreen local stack",
            f"  HTTP API             {self.api_url}",
            f"    POST {self.shopify_webhook_url}",
            f"    POST {self.klaviyo_webhook_url}",
            f"  moto (AWS)           {self.moto_endpoint}",
            f"    table {resources.table_name}, queue {resources.queue_url}",
            f"  {sandbox}",
            f"  Shopify Admin sandbox {self._require(self.shopify_sandbox).url}  (fill it: ./evergreen seed-shop)",
            f"  SQS pollers          {'on' if self.options.poll else 'off'} -> "
            + ", ".join(source.function for source in sqs_sources(self.template)),
            f"  staleness sweep      {sweep}",
            f"  engagement poll      {engagement}  (Klaviyo Events API, for {LOCAL_POLL_SHOPS})",
            "  local secrets        EVERGREEN_LOCAL_SHOPIFY_SECRET, EVERGREEN_LOCAL_KLAVIYO_SECRET (defaults in docs)",
            "",
            "In another terminal, send a signed sample webhook:",
            f"  ./evergreen send-webhook --topic {SAMPLE_TOPIC} {SAMPLE_EVENT}",
        ]
        curl = self.sample_curl(resources.local_secrets.shopify_webhook_secret)
        if curl:
            lines += ["or with curl:", f"  {curl}"]
        lines += ["", "Ctrl-C stops everything."]
        return "\n".join(lines)

    def sample_curl(self, secret: str) -> str | None:
        """A curl command sending events/shopify/orders_create.json signed with `secret`, if the file exists."""
        path = REPO_ROOT / SAMPLE_EVENT
        if not path.is_file():
            return None
        digest = hmac.new(secret.encode(), path.read_bytes(), hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": SAMPLE_TOPIC,
            "X-Shopify-Shop-Domain": SAMPLE_SHOP,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        }
        parts = ["curl", "-sS", "-X", "POST", self.shopify_webhook_url]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        parts += ["--data-binary", f"@{SAMPLE_EVENT}"]
        return shlex.join(parts)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP API port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--moto-port",
        type=int,
        default=DEFAULT_MOTO_PORT,
        help=f"port of the local AWS services: the table, queues and secrets (default {DEFAULT_MOTO_PORT})",
    )
    parser.add_argument(
        "--klaviyo-port",
        type=int,
        default=DEFAULT_KLAVIYO_PORT,
        help=f"Klaviyo sandbox port (default {DEFAULT_KLAVIYO_PORT}; unused when KLAVIYO_API_KEY is set)",
    )
    parser.add_argument(
        "--shopify-port",
        type=int,
        default=DEFAULT_SHOPIFY_PORT,
        help=f"Shopify Admin sandbox port, what seed-shop and backfill read (default {DEFAULT_SHOPIFY_PORT})",
    )
    parser.add_argument(
        "--sweep-every",
        type=float,
        default=DEFAULT_SWEEP_EVERY,
        metavar="SECONDS",
        help=f"run the staleness sweep every SECONDS (default {DEFAULT_SWEEP_EVERY:g})",
    )
    parser.add_argument("--no-sweep", action="store_true", help="do not run the sweep on a timer")
    parser.add_argument(
        "--engagement-poll-every",
        type=float,
        default=DEFAULT_ENGAGEMENT_POLL_EVERY,
        metavar="SECONDS",
        help=f"poll Klaviyo's Events API every SECONDS (default {DEFAULT_ENGAGEMENT_POLL_EVERY:g}, 0: off)",
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help=(
            "retry a queued change that failed after SECONDS (default: the back-off sync chose, as on AWS; "
            f"{DEFAULT_RETRY_AFTER} s after a crash)"
        ),
    )


def _log_to_stderr() -> None:
    """The local tooling's own log lines. Not through the root logger: Powertools' Logger filters records whose
    logger name contains its service name ("evergreen") out of the root handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s: %(message)s"))
    local_logger = logging.getLogger("evergreen_cli")
    local_logger.addHandler(handler)
    local_logger.setLevel(logging.INFO)
    local_logger.propagate = False


def check_segments_file(environ: dict[str, str]) -> None:
    """A SEGMENTS_FILE that is missing or invalid stops the stack before it starts (every webhook would fail)."""
    path = environ.get("SEGMENTS_FILE")
    if not path:
        return
    try:
        load_definitions(Path(path))
    except DefinitionsError as error:
        raise CliError(
            f"SEGMENTS_FILE={path}: {str(error).strip()}; fix the file, or unset SEGMENTS_FILE for the default pack"
        ) from None


def main(args: argparse.Namespace) -> int:
    check_segments_file(dict(os.environ))
    _log_to_stderr()
    options = LocalStackOptions(
        host=args.host,
        port=args.port,
        moto_port=args.moto_port,
        klaviyo_port=args.klaviyo_port,
        shopify_port=args.shopify_port,
        sweep_every=None if args.no_sweep else args.sweep_every,
        engagement_poll_every=args.engagement_poll_every or None,
        retry_after=args.retry_after,
        state_file=local_state_path(),
    )
    signals: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Only a list append: a handler that takes a lock (Event.set) deadlocks when a second Ctrl-C
        # interrupts the first handler while it holds that lock.
        signals.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(options)
    try:
        with working("starting the local stack") as activity:
            stack.start(on_step=activity.update)
        print(stack.banner(), flush=True)
        while not signals:
            time.sleep(0.2)
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
