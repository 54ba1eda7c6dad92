"""Pure reducers: `apply(profile, event) -> profile` and, for orders and refunds,
`apply_order(profile, order_state, event) -> (profile, order_state)`; never mutating the input.

Every rule is a merge that does not care about delivery order or repetition:
- orders are kept per order id (each in its own state, outside the profile), last writer
  wins on the order's own `updated_at`
  (ties prefer the cancelled, then the further-along record, so the result is deterministic);
- refunds are kept per refund id; a refund seen again keeps the larger amount (a pending
  refund transaction can only later succeed), so a refund before its order, or twice, is exact;
- consents keep the newest observation per channel (ties prefer the more restrictive state),
  which is also what keeps a Klaviyo unsubscribe until Shopify reports a newer consent;
- engagement keeps the latest instants; bounce and spam flags only ever turn on.

Membership, version, next_transition_at and definitions_hash belong to the service layer and
are never touched here. Neither is the profile's key (`customer_id`, and a guest's email).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, assert_never

from evergreen.domain.events import (
    CUSTOMER_TAGS_KEPT,
    ORDER_DETAILS_KEPT,
    BulkOperationFinished,
    CheckoutObserved,
    ConsentChanged,
    CustomerDeleted,
    CustomerRedactRequested,
    CustomerTagsChanged,
    CustomerUpserted,
    DataRequested,
    DomainEvent,
    EngagementRecorded,
    OrderObserved,
    PurchasingSummary,
    RefundObserved,
    ShopifySegmentChanged,
    ShopRedactRequested,
)
from evergreen.domain.orders import OrderRecord, OrderState, OrderStats, RefundRecord
from evergreen.domain.profile import (
    MERGED_GUESTS_KEPT,
    Consent,
    Engagement,
    Profile,
    SegmentPresence,
    TagChange,
    TagHistory,
    normalise_email,
)

_CONSENT_TIE_RANK: dict[str, int] = {
    "unknown": 0,
    "subscribed": 1,
    "pending": 2,
    "not_subscribed": 3,
    "invalid": 4,
    "redacted": 5,
    "unsubscribed": 6,
}
"""Between two consents stamped with the same instant, the more restrictive one wins."""

_FINANCIAL_RANK: dict[str, int] = {
    "pending": 1,
    "authorized": 2,
    "partially_paid": 3,
    "paid": 4,
    "partially_refunded": 5,
    "refunded": 6,
    "expired": 7,
    "voided": 8,
}
"""Between two snapshots of an order stamped with the same instant, the further-along one wins."""


def apply(profile: Profile, event: DomainEvent) -> Profile:
    """The profile after `event`. Applying the same event again changes nothing."""
    match event:
        case CustomerUpserted():
            return _apply_customer(profile, event)
        case CustomerTagsChanged():
            return _apply_tags(profile, event.tags, event.present, event.occurred_at)
        case ShopifySegmentChanged():
            return _apply_shopify_segment(profile, event)
        case CustomerDeleted():
            return profile if profile.deleted else profile.model_copy(update={"deleted": True})
        case ConsentChanged():
            return _apply_consent(profile, event)
        case OrderObserved() | RefundObserved():
            raise TypeError("an order event needs its order's stored state: use apply_order")
        case CheckoutObserved():
            return _apply_checkout(profile, event)
        case EngagementRecorded():
            return _apply_engagement(profile, event)
        case (
            PurchasingSummary()
            | DataRequested()
            | CustomerRedactRequested()
            | ShopRedactRequested()
            | BulkOperationFinished()
        ):
            return profile
        case _:
            assert_never(event)


def merge_guest(customer: Profile, guest: Profile) -> Profile:
    """The customer profile after absorbing a guest profile (same shop, keyed by email).

    Order aggregates are summed (each order item has one owner, so the two sets of orders are
    disjoint; the service merges in the same transaction that deletes the guest, so never twice);
    checkouts and engagement use the same merges `apply` uses;
    consents keep the newest per channel; the customer's identity wins and the guest only
    fills gaps. Service-owned fields stay the customer's.
    """
    if customer.shop != guest.shop:
        raise ValueError("cannot merge profiles of different shops")
    if guest.customer_id is not None:
        raise ValueError("only a guest profile (no customer id) can be merged into a customer")
    merged = customer.model_copy(update={"order_stats": customer.order_stats.merged(guest.order_stats)})
    opened_at = merged.open_checkout_at
    if opened_at is not None and guest.order_stats.closes_checkout(merged.open_checkout_token, opened_at):
        merged = merged.model_copy(update={"open_checkout_at": None, "open_checkout_token": None})
    if guest.open_checkout_at is not None and guest.open_checkout_token is not None:
        merged = _open_checkout(merged, guest.open_checkout_token, guest.open_checkout_at)
    update: dict[str, Any] = {
        **_fill_identity(
            merged,
            email=guest.email,
            phone=guest.phone,
            first_name=guest.first_name,
            last_name=guest.last_name,
            klaviyo_profile_id=guest.klaviyo_profile_id,
        ),
        "email_consent": _newer_consent(merged.email_consent, guest.email_consent).model_copy(),
        "sms_consent": _newer_consent(merged.sms_consent, guest.sms_consent).model_copy(),
        "engagement": _merge_engagement(merged.engagement, guest.engagement),
        "merged_guests": [
            *merged.merged_guests,
            *(key for key in (*guest.merged_guests, guest.key) if key not in merged.merged_guests),
        ][-MERGED_GUESTS_KEPT:],
    }
    return merged.model_copy(update=update)


# --- customers and consent -----------------------------------------------------------------------


def _is_not_older(new: datetime | None, current: datetime | None) -> bool:
    """True when `new` is at least as recent as `current` (an unknown instant counts as oldest)."""
    if current is None:
        return True
    return new is not None and new >= current


def _identity(
    profile: Profile,
    *,
    overwrite: bool,
    email: str | None = None,
    phone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    klaviyo_profile_id: str | None = None,
) -> dict[str, Any]:
    """Identity changes: known values overwrite (or only fill gaps); None never erases.

    A guest's email is its key, so a guest profile's email is only ever filled, never changed.
    """
    update: dict[str, Any] = {}
    candidates = {
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "klaviyo_profile_id": klaviyo_profile_id,
    }
    for field, value in candidates.items():
        if value is not None and (overwrite or getattr(profile, field) is None):
            update[field] = value
    normalized = normalise_email(email)
    guest_key_fixed = profile.customer_id is None and profile.email_normalized is not None
    if normalized is None:
        return update
    same_address_undisplayed = profile.email is None and normalized == profile.email_normalized
    if profile.email_normalized is None or same_address_undisplayed or (overwrite and not guest_key_fixed):
        update["email"] = email
        update["email_normalized"] = normalized
    return update


def _fill_identity(profile: Profile, **values: str | None) -> dict[str, Any]:
    return _identity(profile, overwrite=False, **values)


def _newer_stamp(current: datetime | None, observed: datetime | None) -> bool | None:
    """Whether `observed` is strictly newer (True), strictly older (False) or a tie (None).

    An unknown instant is older than any known one.
    """
    if current == observed:
        return None
    if current is None or observed is None:
        return current is None
    return observed > current


def _newer_consent(current: Consent, observed: Consent | None) -> Consent:
    """The consent to keep: the newer observation; an undated one never beats a dated one."""
    if observed is None:
        return current
    newer = _newer_stamp(current.updated_at, observed.updated_at)
    if newer is None:
        newer = _CONSENT_TIE_RANK.get(observed.state, 0) > _CONSENT_TIE_RANK.get(current.state, 0)
    return observed if newer else current


def _consents(profile: Profile, email: Consent | None, sms: Consent | None) -> dict[str, Any]:
    update: dict[str, Any] = {}
    kept_email = _newer_consent(profile.email_consent, email)
    if kept_email is not profile.email_consent:
        update["email_consent"] = kept_email.model_copy()
    kept_sms = _newer_consent(profile.sms_consent, sms)
    if kept_sms is not profile.sms_consent:
        update["sms_consent"] = kept_sms.model_copy()
    return update


def _apply_customer(profile: Profile, event: CustomerUpserted) -> Profile:
    update = _consents(profile, event.email_consent, event.sms_consent)
    if _is_not_older(event.updated_at, profile.customer_updated_at):
        update |= _identity(
            profile,
            overwrite=True,
            email=event.email,
            phone=event.phone,
            first_name=event.first_name,
            last_name=event.last_name,
        )
        if event.state is not None:
            update["customer_state"] = event.state
        if event.created_at is not None:
            update["customer_created_at"] = event.created_at
        if event.updated_at is not None:
            update["customer_updated_at"] = event.updated_at
        if event.default_address is not None:
            update["default_address"] = event.default_address
    updated = profile.model_copy(update=update) if update else profile
    if event.tags is not None:
        updated = _apply_tag_snapshot(updated, event.tags, event.updated_at)
    return updated


# --- customer tags -------------------------------------------------------------------------------

REMOVED_TAGS_KEPT = CUSTOMER_TAGS_KEPT
"""How many removed tags keep their removal time (the oldest removals are forgotten first)."""


def _later_tag(current: TagChange, observed: TagChange) -> TagChange:
    """Newer wins; a dated observation beats an undated one; on a tie, removal wins (then the smaller spelling)."""
    if current.at != observed.at:
        if current.at is None or (observed.at is not None and observed.at > current.at):
            return observed
        return current
    return min(current, observed, key=lambda change: (change.present, change.tag))


def _tag_history(profile: Profile) -> TagHistory:
    """The profile's tag history; a profile stored before histories existed starts from its tag list."""
    history = profile.customer_tag_history
    if history.changes or history.as_of is not None or not profile.customer_tags:
        return history
    at = profile.customer_updated_at
    changes = {tag.casefold(): TagChange(tag=tag, present=True, at=at) for tag in profile.customer_tags}
    return TagHistory(as_of=at, changes=changes)


def _with_tags(profile: Profile, history: TagHistory) -> Profile:
    removed = sorted(
        (key for key, change in history.changes.items() if not change.present),
        key=lambda key: (history.changes[key].at is not None, history.changes[key].at, key),
    )
    forgotten = set(removed[: max(0, len(removed) - REMOVED_TAGS_KEPT)])
    changes = {key: change for key, change in sorted(history.changes.items()) if key not in forgotten}
    kept = TagHistory(as_of=history.as_of, changes=changes)
    tags = [change.tag for change in changes.values() if change.present][:CUSTOMER_TAGS_KEPT]
    if kept == profile.customer_tag_history and tags == profile.customer_tags:
        return profile
    return profile.model_copy(update={"customer_tag_history": kept, "customer_tags": tags})


def _observe(history: TagHistory, changes: dict[str, TagChange], observed: TagChange) -> None:
    key = observed.tag.casefold()
    current = changes.get(key)
    if current is None:
        current = TagChange(tag=observed.tag, present=False, at=history.as_of) if history.as_of else None
    changes[key] = observed if current is None else _later_tag(current, observed)


def _apply_tags(profile: Profile, tags: tuple[str, ...], present: bool, at: datetime | None) -> Profile:
    """Tags added (present) or removed at `at`: each tag keeps its newest observation."""
    history = _tag_history(profile)
    changes = dict(history.changes)
    for tag in tags:
        _observe(history, changes, TagChange(tag=tag, present=present, at=at))
    return _with_tags(profile, TagHistory(as_of=history.as_of, changes=changes))


def _apply_tag_snapshot(profile: Profile, tags: tuple[str, ...], at: datetime | None) -> Profile:
    """A full tag list as of `at` (customers/update before 2025-01): listed tags present, every other absent."""
    history = _tag_history(profile)
    changes = dict(history.changes)
    listed = {tag.casefold() for tag in tags}
    for tag in tags:
        _observe(history, changes, TagChange(tag=tag, present=True, at=at))
    for key, change in list(changes.items()):
        if key not in listed:
            _observe(history, changes, TagChange(tag=change.tag, present=False, at=at))
    as_of = history.as_of
    if at is not None and (as_of is None or at > as_of):
        as_of = at
    return _with_tags(profile, TagHistory(as_of=as_of, changes=changes))


# --- Shopify customer segments ------------------------------------------------------------------

SHOPIFY_SEGMENTS_KEPT = 200
"""How many Shopify segments a profile remembers; past that, the oldest departures are forgotten first."""


def _apply_shopify_segment(profile: Profile, event: ShopifySegmentChanged) -> Profile:
    """The newest notice per segment wins; on the same instant, leaving wins (the safer answer)."""
    current = profile.shopify_segments.get(event.segment_id)
    observed = SegmentPresence(member=event.member, at=event.occurred_at)
    if current is not None and (current.at, not current.member) >= (observed.at, not observed.member):
        return profile
    segments = {**profile.shopify_segments, event.segment_id: observed}
    if len(segments) > SHOPIFY_SEGMENTS_KEPT:
        by_age = sorted(segments, key=lambda key: (segments[key].member, segments[key].at, key))
        segments = {key: segments[key] for key in sorted(by_age[len(segments) - SHOPIFY_SEGMENTS_KEPT :])}
    return profile.model_copy(update={"shopify_segments": segments})


def _apply_consent(profile: Profile, event: ConsentChanged) -> Profile:
    observed = Consent(state=event.state, updated_at=event.updated_at)
    email, sms = (observed, None) if event.channel == "email" else (None, observed)
    update = _consents(profile, email, sms)
    update |= _fill_identity(profile, email=event.email, phone=event.phone)
    return profile.model_copy(update=update) if update else profile


# --- orders, refunds, checkouts ------------------------------------------------------------------


def _tie_key(record: OrderRecord) -> tuple[bool, int, str]:
    return (record.cancelled, _FINANCIAL_RANK.get(record.financial_status or "", 0), record.model_dump_json())


def _newer_order(current: OrderRecord, observed: OrderRecord) -> OrderRecord:
    """Last writer wins on the order's `updated_at`; ties resolve deterministically."""
    newer = _newer_stamp(current.updated_at, observed.updated_at)
    if newer is None:
        newer = _tie_key(observed) > _tie_key(current)
    return observed if newer else current


def _merge_refund(current: RefundRecord, observed: RefundRecord) -> RefundRecord:
    """One refund seen twice: keep the larger amount and the earliest known creation time."""
    created = [at for at in (current.created_at, observed.created_at) if at is not None]
    merged = RefundRecord(
        refund_id=current.refund_id,
        order_id=min(current.order_id, observed.order_id),
        amount=max(current.amount, observed.amount),
        created_at=min(created) if created else None,
    )
    return current if merged == current else merged


def _order_record(event: OrderObserved) -> OrderRecord:
    return OrderRecord(
        order_id=event.order_id,
        created_at=event.created_at,
        updated_at=event.updated_at,
        total=event.total,
        currency=event.currency,
        financial_status=event.financial_status,
        cancelled=event.cancelled,
        test=event.test,
        checkout_token=event.checkout_token,
        product_types=list(event.product_types[:ORDER_DETAILS_KEPT]),
        tags=list(event.tags[:ORDER_DETAILS_KEPT]),
        vendors=list(event.vendors[:ORDER_DETAILS_KEPT]),
        product_ids=list(event.product_ids[:ORDER_DETAILS_KEPT]),
        discount_codes=list(event.discount_codes[:ORDER_DETAILS_KEPT]),
        shipping_address=event.shipping_address,
    )


def _refund_record(event: RefundObserved) -> RefundRecord:
    return RefundRecord(
        refund_id=event.refund_id,
        order_id=event.order_id,
        amount=max(event.amount, Decimal(0)),
        created_at=event.created_at,
    )


def _merge_state(state: OrderState, orders: list[OrderRecord], refunds: list[RefundRecord]) -> OrderState:
    """One order's state with newer snapshots and refunds merged in (order-free and idempotent)."""
    kept_order = state.order
    for record in orders:
        kept_order = record if kept_order is None else _newer_order(kept_order, record)
    kept_refunds = dict(state.refunds)
    for refund in refunds:
        existing = kept_refunds.get(refund.refund_id)
        kept_refunds[refund.refund_id] = refund if existing is None else _merge_refund(existing, refund)
    if kept_order == state.order and kept_refunds == state.refunds:
        return state
    return OrderState(order=kept_order, refunds=kept_refunds)


def _closes_checkout(order: OrderRecord, token: str | None, opened_at: datetime) -> bool:
    """An order ends a checkout when it came from it or was placed at or after its last activity."""
    return (token is not None and order.checkout_token == token) or order.created_at >= opened_at


def apply_order(
    profile: Profile, state: OrderState | None, event: OrderObserved | RefundObserved
) -> tuple[Profile, OrderState]:
    """The profile and the order's state after an order snapshot or a refund of that order.

    `state` is what is stored for the order (None: nothing yet). The profile's aggregates move by the
    order's contribution before and after, so applying the same event again changes nothing.
    """
    before = state or OrderState()
    if isinstance(event, OrderObserved):
        orders = [_order_record(event)]
        refunds = [_refund_record(refund) for refund in event.refunds]
    else:
        orders, refunds = [], [_refund_record(event)]
    after = _merge_state(before, orders, refunds)
    stats = profile.order_stats.replaced(before.contribution(), after.contribution())
    for record in orders:
        stats = stats.observed(record)
    update: dict[str, Any] = {}
    if stats != profile.order_stats:
        update["order_stats"] = stats
    opened_at = profile.open_checkout_at
    if opened_at is not None and any(_closes_checkout(o, profile.open_checkout_token, opened_at) for o in orders):
        update["open_checkout_at"] = None
        update["open_checkout_token"] = None
    if isinstance(event, OrderObserved):
        update |= _fill_identity(
            profile, email=event.email, phone=event.phone, first_name=event.first_name, last_name=event.last_name
        )
    return (profile.model_copy(update=update) if update else profile), after


def with_orders(profile: Profile, orders: Iterable[OrderRecord], refunds: Iterable[RefundRecord] = ()) -> Profile:
    """The profile with these orders and refunds (keyed by their ids) as its whole order history."""
    states: dict[str, OrderState] = {}
    for record in orders:
        states[record.order_id] = _merge_state(states.get(record.order_id, OrderState()), [record], [])
    for refund in refunds:
        states[refund.order_id] = _merge_state(states.get(refund.order_id, OrderState()), [], [refund])
    stats = OrderStats()
    for state in states.values():
        stats = stats.replaced(None, state.contribution())
        if state.order is not None:
            stats = stats.observed(state.order)
    return profile.model_copy(update={"order_stats": stats})


def _open_checkout(profile: Profile, token: str, at: datetime) -> Profile:
    """Open (or move) the open checkout, unless an order already ended it or a later one is open."""
    if profile.order_stats.closes_checkout(token, at):
        return profile
    current = profile.open_checkout_at
    if current is not None and (at, token) <= (current, profile.open_checkout_token or ""):
        return profile
    return profile.model_copy(update={"open_checkout_at": at, "open_checkout_token": token})


def _apply_checkout(profile: Profile, event: CheckoutObserved) -> Profile:
    identity = _fill_identity(profile, email=event.email, phone=event.phone)
    updated = profile.model_copy(update=identity) if identity else profile
    if event.completed_at is not None:
        if updated.open_checkout_token == event.token:
            return updated.model_copy(update={"open_checkout_at": None, "open_checkout_token": None})
        return updated
    at = event.last_activity_at
    return updated if at is None else _open_checkout(updated, event.token, at)


# --- engagement ----------------------------------------------------------------------------------


def _latest(current: datetime | None, observed: datetime | None) -> datetime | None:
    if current is None:
        return observed
    if observed is None:
        return current
    return max(current, observed)


def _merge_engagement(current: Engagement, observed: Engagement) -> Engagement:
    return Engagement(
        last_email_open_at=_latest(current.last_email_open_at, observed.last_email_open_at),
        last_email_click_at=_latest(current.last_email_click_at, observed.last_email_click_at),
        last_sms_click_at=_latest(current.last_sms_click_at, observed.last_sms_click_at),
        email_bounced=current.email_bounced or observed.email_bounced,
        email_marked_spam=current.email_marked_spam or observed.email_marked_spam,
    )


_ENGAGEMENT_FIELD = {
    "email_open": "last_email_open_at",
    "email_click": "last_email_click_at",
    "sms_click": "last_sms_click_at",
}


def _apply_engagement(profile: Profile, event: EngagementRecorded) -> Profile:
    update: dict[str, Any] = {}
    if event.kind in _ENGAGEMENT_FIELD:
        observed = Engagement.model_validate({_ENGAGEMENT_FIELD[event.kind]: event.occurred_at})
    else:
        observed = Engagement(email_bounced=event.kind == "email_bounce", email_marked_spam=event.kind == "email_spam")
    engagement = _merge_engagement(profile.engagement, observed)
    if engagement != profile.engagement:
        update["engagement"] = engagement
    unsubscribed = Consent(state="unsubscribed", updated_at=event.occurred_at)
    if event.kind == "email_unsubscribe":
        update |= _consents(profile, unsubscribed, None)
    elif event.kind == "sms_unsubscribe":
        update |= _consents(profile, None, unsubscribed)
    update |= _fill_identity(profile, email=event.email, phone=event.phone, klaviyo_profile_id=event.klaviyo_profile_id)
    return profile.model_copy(update=update) if update else profile
