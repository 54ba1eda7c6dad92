"""Receiving one Klaviyo system webhook: verify, parse, apply each engagement to its profile.

Tenant rule: a delivery to `?shop=X` verifies only with the secrets of X's own account, or the wildcard
account's when X has none (`service.ports.entry_for`). When the account names its Klaviyo `account_id`,
the body's `meta.klaviyo_account_id` must match it, so a body signed for one account cannot be replayed
under another shop that happens to share the secret.

Routing: the engagement's email (included profile or event properties) finds the profile as before.
An engagement that names only a Klaviyo profile id is routed by the id sync stored (`by_klaviyo` index),
else by asking Klaviyo for that profile's external_id, email and phone. One that still resolves nowhere
is parked (see storage/parked_engagements.py), counted and logged without PII, and applied when a later
engagement naming only the same Klaviyo profile id resolves.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.erasure import guard_for
from evergreen.domain.events import EngagementRecorded
from evergreen.domain.profile import Profile, normalise_email
from evergreen.domain.reducers import apply, merge_guest
from evergreen.klaviyo.requests import klaviyo_profile_id_usable
from evergreen.klaviyo.webhooks import (
    MAX_EMAIL_CHARS,
    MAX_PHONE_CHARS,
    KlaviyoEngagement,
    KlaviyoWebhook,
    MalformedKlaviyoWebhook,
    parse_envelope,
    verify_klaviyo_signature,
)
from evergreen.service.ports import WILDCARD, KlaviyoAccount, ParkedEngagement, ProfileStore, entry_for
from evergreen.service.profile_writer import ProfileWriter
from evergreen.service.routing import CUSTOMER_PREFIX, GUEST_PREFIX, profile_for
from evergreen.service.shopify_webhooks import WebhookAnswer, fingerprint

logger = Logger(child=True)

MAX_KLAVIYO_LOOKUPS = 10
"""Klaviyo profile lookups per delivery; the rest of an id-only batch is parked, so a delivery stays fast."""
LOOKUP_BUDGET_S = 4.0
"""Time a delivery may spend asking Klaviyo (the function has 10 s); after it, unresolved ones are parked."""
MAX_CUSTOMER_ID_DIGITS = 20
"""A Shopify customer id is a 64-bit integer."""
_SHOP_DOMAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$")


class KlaviyoProfileIndex(Protocol):
    def key_for_klaviyo_profile(self, shop: str, klaviyo_profile_id: str) -> str | None: ...


class KlaviyoProfileReader(Protocol):
    def get_profile(self, klaviyo_profile_id: str) -> dict[str, Any] | None: ...


class ParkedEngagements(Protocol):
    def park(self, shop: str, engagements: Sequence[tuple[str, EngagementRecorded]], now: datetime) -> int:
        """Keep these (delivery id, engagement) pairs; returns how many parked ones were dropped to stay bounded."""
        ...

    def parked(self, shop: str, klaviyo_profile_id: str) -> list[ParkedEngagement]: ...
    def release(self, shop: str, parked: ParkedEngagement) -> None: ...


def applying(event: EngagementRecorded) -> Callable[[Profile], Profile]:
    def reducer(profile: Profile) -> Profile:
        return apply(profile, event)

    return reducer


def profile_at(shop: str, profile_key: str) -> Profile | None:
    """A blank profile with this key (`customer#<digits>` or `guest#<email>`), or None for any other key."""
    customer_id = profile_key.removeprefix(CUSTOMER_PREFIX)
    if profile_key.startswith(CUSTOMER_PREFIX) and customer_id.isascii() and customer_id.isdigit():
        return Profile(shop=shop, customer_id=customer_id) if len(customer_id) <= MAX_CUSTOMER_ID_DIGITS else None
    email = normalise_email(profile_key.removeprefix(GUEST_PREFIX))
    if profile_key.startswith(GUEST_PREFIX) and email is not None and _fits(email, MAX_EMAIL_CHARS):
        return Profile(shop=shop, email_normalized=email)
    return None


def _fits(value: str, limit: int) -> bool:
    """Valid Unicode of at most `limit` UTF-8 bytes: safe to become part of a DynamoDB key."""
    try:
        return len(value.encode("utf-8")) <= limit
    except UnicodeEncodeError:
        return False


def shop_domain(value: str) -> bool:
    """Whether `?shop=` looks like a shop domain (it becomes part of every key, so it is bounded too)."""
    return bool(_SHOP_DOMAIN.match(value))


@dataclass(frozen=True)
class KlaviyoIdentity:
    """What Klaviyo says a profile is: the external id sync gave it, and its email and phone."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None


def identity_of(resource: Mapping[str, Any]) -> KlaviyoIdentity:
    """The identifiers of a JSON:API profile resource; over-long or non-text values are ignored."""
    attributes = resource.get("attributes")
    values = attributes if isinstance(attributes, dict) else {}

    def text(name: str, limit: int) -> str | None:
        value = values.get(name)
        if not isinstance(value, str) or not value.strip() or not _fits(value, limit):
            return None
        return value.strip()

    return KlaviyoIdentity(
        external_id=text("external_id", 1024),
        email=text("email", MAX_EMAIL_CHARS),
        phone=text("phone_number", MAX_PHONE_CHARS),
    )


@dataclass
class _Delivery:
    """Per-delivery state: answers so far and how much of Klaviyo's time it has used."""

    shop: str
    started: datetime
    outcomes: Counter[str] = field(default_factory=Counter)
    entered: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    lookups: int = 0
    klaviyo_down: bool = False
    resolved: dict[str, tuple[Profile | None, KlaviyoIdentity | None]] = field(default_factory=dict)
    to_park: list[tuple[str, EngagementRecorded]] = field(default_factory=list)
    """Unresolved engagements, parked together once the delivery is read (an id unresolved here stays so)."""


class KlaviyoWebhooks:
    """Verifies a delivery against the shop's own Klaviyo account and applies its engagement."""

    def __init__(
        self,
        accounts: Callable[[], dict[str, KlaviyoAccount]],
        writer: ProfileWriter,
        store: ProfileStore,
        clock: Clock,
        max_body_bytes: int,
        klaviyo_index: KlaviyoProfileIndex | None = None,
        klaviyo_api: Callable[[str], KlaviyoProfileReader | None] | None = None,
        parked: ParkedEngagements | None = None,
    ) -> None:
        self._accounts = accounts
        self._writer = writer
        self._store = store
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._index = klaviyo_index
        self._klaviyo_api = klaviyo_api
        self._parked = parked

    def receive(self, body: bytes, headers: Mapping[str, str], shop_hint: str | None) -> WebhookAnswer:
        if len(body) > self._max_body_bytes:
            return WebhookAnswer(413, {"error": "payload too large", "limit_bytes": self._max_body_bytes})
        if shop_hint is not None and not shop_domain(shop_hint):
            return WebhookAnswer(400, {"error": "?shop= must be a shop domain such as my-store.myshopify.com"})
        verified = self._verified_account(body, headers, shop_hint)
        if verified is None:
            return WebhookAnswer(401, {"error": "invalid signature"}, outcome="signature_failed")
        shop, account = verified
        if shop == WILDCARD:
            return WebhookAnswer(400, {"error": "add ?shop=<shop>.myshopify.com to this webhook's URL"})
        try:
            delivery = parse_envelope(body, headers)
        except MalformedKlaviyoWebhook as error:
            return WebhookAnswer(400, {"error": "malformed payload", "reason": error.reason}, outcome="malformed")
        if not self._same_account(account, delivery):
            # The signature is good but the body was sent by another Klaviyo account than this shop's.
            return WebhookAnswer(401, {"error": "invalid signature"}, outcome="signature_failed")
        answer = self.apply_engagements(shop, delivery.engagements)
        logger.info("Klaviyo webhook handled", extra={"shop": shop, "outcomes": answer.body["outcomes"]})
        return answer

    def apply_engagements(self, shop: str, engagements: Sequence[KlaviyoEngagement]) -> WebhookAnswer:
        """Apply engagements of `shop`'s verified account: a delivery's, or the poll's from the Events API.

        Each is keyed by its Klaviyo event id (`klaviyo:<id>`), so one event delivered and polled counts once."""
        state = _Delivery(shop=shop, started=self._clock.now())
        for engagement in engagements:
            self._handle(state, engagement)
        if state.to_park and self._parked is not None:
            dropped = self._parked.park(shop, state.to_park, self._clock.now())
            if dropped:
                state.outcomes["parked_dropped"] += dropped
        return WebhookAnswer(
            200,
            {"status": "ok", "outcomes": dict(state.outcomes)},
            "klaviyo",
            "written",
            tuple(state.entered),
            tuple(state.exited),
        )

    # --- applying ------------------------------------------------------------------------------------------

    def _handle(self, state: _Delivery, engagement: KlaviyoEngagement) -> None:
        if engagement.kind is None:
            state.outcomes["ignored"] += 1
            return
        event = EngagementRecorded(
            kind=engagement.kind,
            occurred_at=engagement.occurred_at,
            email=engagement.email,
            phone=engagement.phone,
            klaviyo_profile_id=engagement.klaviyo_profile_id,
        )
        delivery_id = f"klaviyo:{engagement.external_id}"
        blank = profile_for(self._store, state.shop, None, event.email_normalized)
        by_id_only = blank is None
        if blank is None and event.klaviyo_profile_id is not None:
            blank, event = self._resolve(state, event)
        if blank is None:
            self._unresolved(state, engagement, event, delivery_id)
            return
        self._write(state, blank, event, delivery_id)
        if by_id_only and event.klaviyo_profile_id is not None:
            self._apply_parked(state, blank, event.klaviyo_profile_id)

    def _write(self, state: _Delivery, blank: Profile, event: EngagementRecorded, delivery_id: str) -> None:
        guard = guard_for(state.shop, event)
        result = self._writer.write(blank, applying(event), delivery_id, merge_guest, guard=guard)
        state.outcomes[result.outcome.value] += 1
        state.entered += result.entered
        state.exited += result.exited

    def _apply_parked(self, state: _Delivery, blank: Profile, klaviyo_profile_id: str) -> None:
        """Engagements parked for this Klaviyo profile now have a home: apply each once, then forget it."""
        if self._parked is None:
            return
        for parked in self._parked.parked(state.shop, klaviyo_profile_id):
            self._write(state, blank, parked.event, parked.delivery_id)
            self._parked.release(state.shop, parked)
            state.outcomes["unparked"] += 1

    def _unresolved(
        self, state: _Delivery, engagement: KlaviyoEngagement, event: EngagementRecorded, delivery_id: str
    ) -> None:
        """Nothing names a profile we can find: keep it if it names a Klaviyo profile, count it either way."""
        if (
            self._parked is not None
            and event.klaviyo_profile_id
            and klaviyo_profile_id_usable(event.klaviyo_profile_id)
        ):
            state.to_park.append((delivery_id, event))
            state.outcomes["parked"] += 1
            outcome = "parked until its Klaviyo profile resolves"
        else:
            state.outcomes["unidentified"] += 1
            outcome = "dropped: it names no email and no Klaviyo profile"
        logger.warning(
            f"Klaviyo engagement resolves to no profile; {outcome}",
            extra={
                "shop": state.shop,
                "topic": engagement.topic,
                "klaviyo_profile_hash": fingerprint(event.klaviyo_profile_id),
                "phone_hash": fingerprint(event.phone),
            },
        )

    # --- resolving a Klaviyo profile id -----------------------------------------------------------------------

    def _resolve(self, state: _Delivery, event: EngagementRecorded) -> tuple[Profile | None, EngagementRecorded]:
        """The profile an id-only engagement belongs to, and the event with what Klaviyo told us filled in."""
        klaviyo_id = event.klaviyo_profile_id
        assert klaviyo_id is not None
        if klaviyo_id not in state.resolved:
            state.resolved[klaviyo_id] = self._look_up(state, klaviyo_id)
        blank, identity = state.resolved[klaviyo_id]
        if identity is not None:
            update = {"email": event.email or identity.email, "phone": event.phone or identity.phone}
            event = event.model_copy(update=update)
        return blank, event

    def _look_up(self, state: _Delivery, klaviyo_id: str) -> tuple[Profile | None, KlaviyoIdentity | None]:
        if self._index is not None:
            key = self._index.key_for_klaviyo_profile(state.shop, klaviyo_id)
            blank = profile_at(state.shop, key) if key else None
            if blank is not None:
                return blank, None
        identity = self._ask_klaviyo(state, klaviyo_id)
        if identity is None:
            return None, None
        prefix = f"{state.shop}/"
        if identity.external_id and identity.external_id.startswith(prefix):
            blank = profile_at(state.shop, identity.external_id.removeprefix(prefix))
            # Only a profile we still hold: a redacted one is not brought back by Klaviyo's memory of it.
            if blank is not None and self._store.load(state.shop, blank.key) is not None:
                return blank, identity
        email = normalise_email(identity.email)
        return profile_for(self._store, state.shop, None, email), identity

    def _ask_klaviyo(self, state: _Delivery, klaviyo_id: str) -> KlaviyoIdentity | None:
        """GET /api/profiles/{id}, within this delivery's budget; any failure leaves the engagement unresolved."""
        if self._klaviyo_api is None or state.klaviyo_down or not klaviyo_profile_id_usable(klaviyo_id):
            return None
        spent = (self._clock.now() - state.started).total_seconds()
        if state.lookups >= MAX_KLAVIYO_LOOKUPS or spent > LOOKUP_BUDGET_S:
            return None
        reader = self._klaviyo_api(state.shop)
        if reader is None:
            return None
        state.lookups += 1
        try:
            resource = reader.get_profile(klaviyo_id)
        except Exception as error:  # KlaviyoError or transport: park instead of failing the delivery
            state.klaviyo_down = True
            logger.warning("Klaviyo profile lookup failed", extra={"shop": state.shop, "error": type(error).__name__})
            return None
        return identity_of(resource) if resource is not None else None

    # --- authenticity --------------------------------------------------------------------------------------

    def _verified_account(
        self, body: bytes, headers: Mapping[str, str], shop_hint: str | None
    ) -> tuple[str, KlaviyoAccount] | None:
        """The shop this delivery is for and its account, or None when no applicable secret verifies it.

        With `?shop=X`, only X's own account (or the wildcard's, when X has none) may verify it. Without
        it, exactly one shop's own account must verify it (the wildcard alone names no shop).
        """
        now = self._clock.now()
        accounts = self._accounts()

        def verifies(account: KlaviyoAccount) -> bool:
            return any(verify_klaviyo_signature(body, headers, secret, now) for secret in account.webhook_secrets)

        if shop_hint:
            account = entry_for(accounts, shop_hint)
            return (shop_hint, account) if account is not None and verifies(account) else None
        own = [(shop, account) for shop, account in accounts.items() if shop != WILDCARD and verifies(account)]
        if len(own) == 1:
            return own[0]
        if len(own) > 1 or (WILDCARD in accounts and verifies(accounts[WILDCARD])):
            return WILDCARD, accounts.get(WILDCARD) or own[0][1]
        return None

    @staticmethod
    def _same_account(account: KlaviyoAccount, delivery: KlaviyoWebhook) -> bool:
        """The body's `meta.klaviyo_account_id` agrees with the account's, when both are known."""
        return account.account_id is None or delivery.account_id is None or delivery.account_id == account.account_id
