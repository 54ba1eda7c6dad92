"""Backfilling a shop's history from Shopify bulk operations, exactly as webhooks would have built it.

Customers first, then orders with their refunds, then the abandoned checkouts updated within the last
`CHECKOUT_WINDOW` (the `abandoned_checkout` segment looks back 3 days). Each bulk result is streamed line by
line; a record (a root object with its `__parentId` children) is applied only once it is complete, through
the same translators (`shopify.topics.translate`), reducers (`domain.reducers.apply`) and `ProfileWriter` as
a webhook: an abandoned checkout becomes the `checkouts/update` webhook's `CheckoutObserved`. So a backfill
never overwrites newer webhook state (newer `updated_at` wins; at equal `updated_at` the stored order is
kept), and running it twice, or while webhooks flow, changes nothing.

The position (last fully applied line) is checkpointed every `checkpoint_every` records; a crash resumes
there. Records between the checkpoint and the crash are applied again, which the reducers make a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.events import CheckoutObserved, CustomerUpserted, OrderObserved
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, apply_order, merge_guest
from evergreen.segments import Definitions
from evergreen.service.backfill_model import (
    ALL_ORDERS_SCOPE,
    PHASES,
    RECENT_ORDERS_DAYS,
    BackfillCounts,
    BackfillProgress,
    Phase,
)
from evergreen.service.backfill_sync import BulkSyncReport, MembershipSync, QueueNothing, Touched
from evergreen.service.ports import ChangePublisher, ProfileStore
from evergreen.service.profile_writer import Outcome, ProfileWriter, WriteResult
from evergreen.service.routing import profile_for
from evergreen.shopify.bulk import AdminError, BulkOperation, BulkOperationFailed, ResultUrlExpired
from evergreen.shopify.topics import MalformedPayload, translate

logger = Logger(child=True)

DEFAULT_CHECKPOINT_EVERY = 1_000
CHECKOUT_WINDOW = timedelta(days=30)
"""How far back the backfill reads abandoned checkouts (by `updated_at`, the checkout's last activity).
`abandoned_checkout` looks back 3 days; custom segments may look back further, up to this."""


class MalformedBulkLine(AdminError):
    """A result line is not a JSON object, or names a parent that is not the record being read."""

    exit_code = 7

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"bulk result line {line} is malformed ({reason}); nothing from that record was applied")
        self.line = line


class MembershipSyncFailed(Exception):
    """Klaviyo refused part of a bulk sync; the checkpoint stays before those records, so a resumed run
    applies (unchanged) and pushes them again."""

    exit_code = 8


class BulkSource(Protocol):
    """What the backfill needs from Shopify (`evergreen.shopify.admin.ShopifyAdmin`)."""

    def run_bulk_query(self, root: str, since: str | None = None) -> BulkOperation: ...
    def wait(
        self,
        operation_id: str,
        *,
        poll_every_s: float = ...,
        max_poll_s: float = ...,
        on_poll: Callable[[BulkOperation], None] | None = ...,
        finished: Callable[[], bool] | None = ...,
        should_stop: Callable[[], bool] | None = ...,
    ) -> BulkOperation: ...
    def stream_lines(self, url: str, skip: int = 0) -> Iterator[tuple[int, bytes]]: ...
    def access_scopes(self) -> set[str]: ...


class ProgressStore(Protocol):
    def load(self, shop: str) -> BackfillProgress | None: ...
    def save(self, progress: BackfillProgress) -> None: ...
    def operation_finished(self, shop: str, operation_id: str) -> bool:
        """Whether a bulk_operations/finish webhook named this operation (a cue to poll now)."""
        ...


@dataclass(frozen=True)
class Record:
    """One root object with its children, and the last line it spans."""

    root: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]
    last_line: int
    lines: int


def records(lines: Iterator[tuple[int, bytes]]) -> Iterator[Record]:
    """Group streamed JSONL lines into records: children follow their parent (the root itself or an
    object nested in it), so a record is complete when the next root line starts."""
    root: dict[str, Any] | None = None
    ids: set[str] = set()
    children: dict[str, list[dict[str, Any]]] = {}
    last = 0
    count = 0
    for number, raw in lines:
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            raise MalformedBulkLine(number, "not valid JSON") from None
        if not isinstance(obj, dict):
            raise MalformedBulkLine(number, "not a JSON object")
        parent = obj.pop("__parentId", None)
        if parent is None:
            if root is not None:
                yield Record(root, children, last, count)
            root, ids, children, count = obj, _ids_in(obj), {}, 0
        elif root is None or parent not in ids:
            raise MalformedBulkLine(number, "its __parentId is not the record being read")
        else:
            children.setdefault(str(parent), []).append(obj)
            ids |= _ids_in(obj)
        last = number
        count += 1
    if root is not None:
        yield Record(root, children, last, count)


def _ids_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            found.add(value["id"])
        for item in value.values():
            if isinstance(item, dict | list):
                found |= _ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _ids_in(item)
    return found


# --- GraphQL objects to webhook payloads ------------------------------------------------------------


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _consent(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    return {
        "state": _lower(raw.get("marketingState")),
        "opt_in_level": _lower(raw.get("marketingOptInLevel")),
        "consent_updated_at": raw.get("consentUpdatedAt"),
    }


def _money(raw: Any) -> dict[str, Any] | None:
    shop = raw.get("shopMoney") if isinstance(raw, dict) else None
    if not isinstance(shop, dict):
        return None
    return {"shop_money": {"amount": shop.get("amount"), "currency_code": shop.get("currencyCode")}}


def customer_payload(node: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk Customer object as the customers/update webhook body the translator reads."""
    return {
        "id": node.get("id"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "state": node.get("state"),
        "tags": node.get("tags"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "email_marketing_consent": _consent(node.get("emailMarketingConsent")),
        "sms_marketing_consent": _consent(node.get("smsMarketingConsent")),
        "default_address": node.get("defaultAddress"),
    }


def order_payload(node: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk Order object as an orders/updated body. A refund is read by its `totalRefundedSet` (bulk queries
    cannot select its `transactions` connection), which stands as the refund's one successful transaction."""
    customer = node.get("customer")
    refunds = []
    for refund in node.get("refunds") or []:
        if not isinstance(refund, dict):
            continue
        refunded = _money(refund.get("totalRefundedSet"))
        transactions = [{"kind": "refund", "status": "success", "amount_set": refunded}] if refunded else []
        refunds.append({"id": refund.get("id"), "created_at": refund.get("createdAt"), "transactions": transactions})
    return {
        "id": node.get("id"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "customer": {"id": customer.get("id")} if isinstance(customer, dict) else None,
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": node.get("displayFinancialStatus"),
        "test": node.get("test"),
        "total_price_set": _money(node.get("totalPriceSet")),
        "shipping_address": node.get("shippingAddress"),
        "discount_codes": [{"code": code} for code in node.get("discountCodes") or [] if isinstance(code, str)],
        "refunds": refunds,
    }


def checkout_payload(node: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk AbandonedCheckout object as a checkouts/update body. The GraphQL object has no `token`, so its
    id stands in (a webhook names the same checkout by its token); it has no email either, so a guest's
    checkout (no customer) names nobody and is skipped."""
    customer = node.get("customer")
    return {
        "token": node.get("id"),
        "customer": {"id": customer.get("id")} if isinstance(customer, dict) else None,
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "completed_at": node.get("completedAt"),
    }


def checkouts_since(since: str | None, now: datetime, window: timedelta = CHECKOUT_WINDOW) -> str:
    """The `updated_at` bound of the abandoned-checkouts query: the window's first midnight (UTC), or `since`
    when that is later."""
    start = (now - window).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        given = datetime.fromisoformat(since) if since else None
    except ValueError:
        given = None
    if given is not None and (given if given.tzinfo else given.replace(tzinfo=UTC)) > start:
        return str(since)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def backfill_checkout(profile: Profile, event: CheckoutObserved) -> Profile:
    """`apply` for a backfilled checkout, except that an open checkout stored at the same moment is kept: it
    is most likely this very checkout as its webhook named it (by token), which a completing webhook or an
    order (by `checkout_token`) can still close."""
    at = event.last_activity_at
    if event.completed_at is None and at is not None and profile.open_checkout_at == at:
        return profile
    return apply(profile, event)


def backfill_order(profile: Profile, state: OrderState | None, event: OrderObserved) -> tuple[Profile, OrderState]:
    """`apply_order` for a backfilled order: a stored snapshot at the same or a newer `updated_at` is kept
    (a webhook's may carry details the bulk query does not read); its refunds still merge."""
    stored = state.order if state is not None else None
    stored_at = stored.updated_at if stored is not None else None
    if state is not None and stored_at is not None and (event.updated_at is None or event.updated_at <= stored_at):
        for refund in event.refunds:
            profile, state = apply_order(profile, state, refund)
        return profile, state
    return apply_order(profile, state, event)


# --- the backfill ------------------------------------------------------------------------------------


@dataclass
class BackfillReport:
    shop: str
    finished: bool
    counts: BackfillCounts
    sync: list[BulkSyncReport] = field(default_factory=list)
    orders_from: datetime | None = None
    """Set when orders older than this were not read (no `read_all_orders`): see `BackfillProgress.orders_from`."""


ProgressCallback = Callable[[str, BackfillCounts, int | None], None]
"""(phase, counts so far, objects in this phase's file when known)."""


class Backfill:
    def __init__(
        self,
        source: BulkSource,
        store: ProfileStore,
        progress: ProgressStore,
        definitions: Definitions,
        clock: Clock,
        *,
        membership: MembershipSync | None = None,
        publisher: ChangePublisher | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        poll_every_s: float = 2.0,
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        workers: int = 1,
        checkout_window: timedelta = CHECKOUT_WINDOW,
    ) -> None:
        """With `membership`, touched profiles go to Klaviyo in bulk at each checkpoint and changes are not
        queued; without it, `publisher` (the usual queue) gets every change, as for a webhook.

        With `workers` > 1, records are applied that many at a time: the reducers do not care about order
        and every write is conditional, so two records of one profile in flight only cost a retry."""
        self._source = source
        self._store = store
        self._progress = progress
        self._clock = clock
        self._membership = membership
        self._writer = ProfileWriter(
            store, publisher if membership is None and publisher else QueueNothing(), definitions, clock
        )
        self._checkpoint_every = max(1, checkpoint_every)
        self._poll_every_s = poll_every_s
        self._on_progress = on_progress
        self._should_stop = should_stop or (lambda: False)
        self._touched: dict[str, Touched] = {}
        self._before_versions: dict[str, int] = {}
        self._sync_reports: list[BulkSyncReport] = []
        self._workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._checkout_window = checkout_window

    # --- orchestration ---------------------------------------------------------------------------

    def run(self, shop: str, since: str | None = None) -> BackfillReport:
        """Run (or resume) the shop's backfill. Returns unfinished when `should_stop` asked to yield."""
        if self._workers == 1:
            return self._run(shop, since)
        with ThreadPoolExecutor(self._workers, thread_name_prefix="backfill") as pool:
            self._pool = pool
            try:
                return self._run(shop, since)
            finally:
                self._pool = None

    def _run(self, shop: str, since: str | None) -> BackfillReport:
        progress = self._progress.load(shop)
        if progress is None or progress.phase == "done" or progress.since != since:
            progress = BackfillProgress(shop=shop, since=since, started_at=self._clock.now())
            self._progress.save(progress)
            revisit = False
        else:
            logger.info("Resuming backfill", extra={"shop": shop, "phase": progress.phase, "line": progress.line})
            revisit = not progress.stopped_cleanly
        progress.stopped_cleanly = False
        while progress.phase != "done":
            if not self._run_phase(progress, revisit):
                progress.stopped_cleanly = True
                self._flush(progress)
                return BackfillReport(shop, False, progress.counts, self._sync_reports, progress.orders_from)
            revisit = False
            position = PHASES.index(progress.phase)
            next_phase: Phase = PHASES[position + 1] if position + 1 < len(PHASES) else "done"
            progress.phase, progress.operation_id, progress.line = next_phase, None, 0
            if next_phase == "done":
                progress.finished_at = self._clock.now()
            self._flush(progress)
        return BackfillReport(shop, True, progress.counts, self._sync_reports, progress.orders_from)

    def _run_phase(self, progress: BackfillProgress, revisit: bool) -> bool:
        """Apply one phase's file from the checkpoint on; False when asked to stop first.

        With `revisit` (resuming after a crash), the first `checkpoint_every` records are synced even
        when unchanged: they may have been written, but not synced, before the crash."""
        phase = progress.phase
        if progress.operation_id is None:
            if phase == "orders":
                progress.orders_from = self._orders_window()
            started = self._source.run_bulk_query(phase, self._query_since(progress))
            progress.operation_id, progress.line = started.id, 0
            self._progress.save(progress)
        operation_id, shop = progress.operation_id, progress.shop
        try:
            operation = self._source.wait(
                operation_id,
                poll_every_s=self._poll_every_s,
                finished=lambda: self._progress.operation_finished(shop, operation_id),
                should_stop=self._should_stop,
            )
        except BulkOperationFailed:
            progress.operation_id, progress.line = None, 0
            self._progress.save(progress)
            raise
        if not operation.finished:
            return False  # still running on Shopify's side: come back later
        if operation.url is None:
            return True
        revisit_left = self._checkpoint_every if revisit else 0
        since_checkpoint = 0
        batch: list[tuple[Record, bool]] = []
        batch_size = min(self._checkpoint_every, 1 if self._workers == 1 else self._workers * 4)
        try:
            stream = records(self._source.stream_lines(operation.url, skip=progress.line))
            for record in _with_end(stream):
                if record is not None:
                    batch.append((record, revisit_left > 0))
                    revisit_left -= 1
                    if len(batch) < batch_size and since_checkpoint + len(batch) < self._checkpoint_every:
                        continue
                if not batch:
                    continue
                self._apply_batch(progress, batch)
                since_checkpoint += len(batch)
                last_line = batch[-1][0].last_line
                batch = []
                if self._on_progress is not None:
                    self._on_progress(phase, progress.counts, operation.object_count)
                if since_checkpoint >= self._checkpoint_every:
                    progress.line = last_line
                    self._flush(progress)
                    since_checkpoint = 0
                    if self._should_stop():
                        return False
        except ResultUrlExpired:
            progress.operation_id, progress.line = None, 0
            self._flush(progress)
            raise
        except MalformedBulkLine:
            progress.operation_id, progress.line = None, 0  # that file is broken: the next run asks for a new one
            self._flush(progress)
            raise
        return True

    def _orders_window(self) -> datetime | None:
        """The oldest order Shopify will serve: None with `read_all_orders`, else `RECENT_ORDERS_DAYS` ago."""
        if ALL_ORDERS_SCOPE in self._source.access_scopes():
            return None
        start = self._clock.now() - timedelta(days=RECENT_ORDERS_DAYS)
        logger.warning(
            "Without read_all_orders Shopify serves only recent orders; older ones are not backfilled",
            extra={"orders_from": start.isoformat(), "days": RECENT_ORDERS_DAYS},
        )
        return start

    def _query_since(self, progress: BackfillProgress) -> str | None:
        """The phase's `updated_at` bound: the requested one, and for abandoned checkouts the recent window."""
        if progress.phase == "abandonedCheckouts":
            return checkouts_since(progress.since, self._clock.now(), self._checkout_window)
        return progress.since

    def _flush(self, progress: BackfillProgress) -> None:
        """Push touched profiles' membership in bulk, then save the checkpoint (in that order, so a
        checkpoint never passes a record whose membership was not sent)."""
        if self._membership is not None and self._touched:
            report = self._membership.push(list(self._touched.values()), self._clock.now())
            self._sync_reports.append(report)
            if report.failed:
                reasons = "; ".join(sorted(set(report.errors))[:3])
                raise MembershipSyncFailed(f"Klaviyo did not take {report.failed} profiles ({reasons}); run again")
            progress.counts.synced_profiles += report.profiles
            progress.counts.klaviyo_requests += report.requests
            self._touched.clear()
            self._before_versions.clear()
        self._progress.save(progress)

    # --- one record --------------------------------------------------------------------------------

    def _apply_batch(self, progress: BackfillProgress, batch: list[tuple[Record, bool]]) -> None:
        """Apply a batch (in parallel with workers), then tally it and remember touched profiles in order."""
        shop, phase = progress.shop, progress.phase

        def one(item: tuple[Record, bool]) -> tuple[str, list[WriteResult]]:
            return self._apply(shop, phase, item[0], item[1])

        outcomes = list(self._pool.map(one, batch)) if self._pool is not None else [one(item) for item in batch]
        counts = progress.counts
        for (record, revisit), (outcome, results) in zip(batch, outcomes, strict=True):
            counts.read += record.lines
            counts.records += 1
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            for result in results:
                self._touch(result, revisit)

    def _apply(self, shop: str, phase: str, record: Record, revisit: bool) -> tuple[str, list[WriteResult]]:
        """One record through translate and the writer: ("applied" | "unchanged" | "skipped", the writes)."""
        now = self._clock.now()
        try:
            if phase == "customers":
                event = translate("customers/update", customer_payload(record.root), now)
                assert isinstance(event, CustomerUpserted)
                result = self._write(Profile(shop=shop, customer_id=event.customer_id), event)
                results = [result]
            elif phase == "abandonedCheckouts":
                checkout = translate("checkouts/update", checkout_payload(record.root), now)
                assert isinstance(checkout, CheckoutObserved)
                blank = profile_for(self._store, shop, checkout.customer_id, checkout.email_normalized)
                if blank is None:
                    return "skipped", []  # a guest's checkout: the bulk object names no customer and no email
                result = self._write(blank, checkout)
                results = [result]
            else:
                order = translate("orders/updated", order_payload(record.root), now)
                assert isinstance(order, OrderObserved)
                blank = profile_for(self._store, shop, order.customer_id, order.email_normalized)
                if blank is None:
                    return "skipped", []
                result = self._write(blank, order)
                results = [result]
        except MalformedPayload as error:
            logger.warning(
                "Backfill record skipped", extra={"shop": shop, "line": record.last_line, "reason": error.reason}
            )
            return "skipped", []
        return ("applied" if result.outcome is Outcome.WRITTEN else "unchanged"), results

    def _write(self, blank: Profile, event: CustomerUpserted | OrderObserved | CheckoutObserved) -> WriteResult:
        """The webhook write path: an order and its refunds land on the order item, together with the profile's
        aggregates, in one conditional write (refunds webhooks parked there are folded in by the same write)."""
        if isinstance(event, OrderObserved):
            return self._writer.write_order(
                blank,
                event.order_id,
                lambda profile, state: backfill_order(profile, state, event),
                None,
                merge=merge_guest,
                guest_email=event.email_normalized,
            )
        reduce: Callable[[Profile], Profile] = (
            (lambda profile: backfill_checkout(profile, event))
            if isinstance(event, CheckoutObserved)
            else (lambda profile: apply(profile, event))
        )
        return self._writer.write(blank, reduce, None, merge=merge_guest, guest_email=event.email_normalized)

    def _touch(self, result: WriteResult, revisit: bool) -> None:
        """Remember a written profile for the bulk sync (and, right after a resume, an unchanged one too,
        whose write before the crash may not have been synced)."""
        profile = result.profile
        if profile is None or (result.outcome is not Outcome.WRITTEN and not revisit):
            return
        if result.outcome is Outcome.WRITTEN:
            before_version = result.before.version if result.before is not None else 0
            before = frozenset(result.before.membership) if result.before is not None else frozenset()
        else:
            before_version, before = profile.version, frozenset(profile.membership)
        known = self._touched.get(profile.key)
        if known is not None:
            # Parallel writes may report out of order: the earliest "before" and the newest profile win.
            if self._before_versions[profile.key] <= before_version:
                before_version, before = self._before_versions[profile.key], known.before
            if known.profile.version > profile.version:
                profile = known.profile
        self._before_versions[profile.key] = before_version
        self._touched[profile.key] = Touched(before, profile)


def _with_end[T](items: Iterator[T]) -> Iterator[T | None]:
    """The items, then None once, so a loop can finish its last batch."""
    yield from items
    yield None
