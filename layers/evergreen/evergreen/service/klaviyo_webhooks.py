"""Receiving one Klaviyo system webhook: verify, parse, apply each engagement to its profile."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.events import EngagementRecorded
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply, merge_guest
from evergreen.klaviyo.webhooks import MalformedKlaviyoWebhook, parse_webhook, verify_klaviyo_signature
from evergreen.service.ports import ProfileStore
from evergreen.service.profile_writer import ProfileWriter
from evergreen.service.routing import profile_for
from evergreen.service.shopify_webhooks import WebhookAnswer
from evergreen.storage.secrets import WILDCARD, KlaviyoAccount

logger = Logger(child=True)


def applying(event: EngagementRecorded) -> Callable[[Profile], Profile]:
    def reducer(profile: Profile) -> Profile:
        return apply(profile, event)

    return reducer


class KlaviyoWebhooks:
    """Each configured Klaviyo account signs with its own secret; the one that verifies names the shop."""

    def __init__(
        self,
        accounts: Callable[[], dict[str, KlaviyoAccount]],
        writer: ProfileWriter,
        store: ProfileStore,
        clock: Clock,
        max_body_bytes: int,
    ) -> None:
        self._accounts = accounts
        self._writer = writer
        self._store = store
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    def receive(self, body: bytes, headers: Mapping[str, str], shop_hint: str | None) -> WebhookAnswer:
        if len(body) > self._max_body_bytes:
            return WebhookAnswer(413, {"error": "payload too large", "limit_bytes": self._max_body_bytes})
        shop = self._verified_shop(body, headers, shop_hint)
        if shop is None:
            return WebhookAnswer(401, {"error": "invalid signature"}, outcome="signature_failed")
        if shop == WILDCARD:
            return WebhookAnswer(400, {"error": "add ?shop=<shop>.myshopify.com to this webhook's URL"})
        try:
            engagements = parse_webhook(body, headers)
        except MalformedKlaviyoWebhook as error:
            return WebhookAnswer(400, {"error": "malformed payload", "reason": error.reason}, outcome="malformed")
        outcomes: Counter[str] = Counter()
        entered: list[str] = []
        exited: list[str] = []
        for engagement in engagements:
            if engagement.kind is None:
                outcomes["ignored"] += 1
                continue
            event = EngagementRecorded(
                kind=engagement.kind,
                occurred_at=engagement.occurred_at,
                email=engagement.email,
                phone=engagement.phone,
                klaviyo_profile_id=engagement.klaviyo_profile_id,
            )
            blank = profile_for(self._store, shop, None, event.email_normalized)
            if blank is None:
                outcomes["no_email"] += 1
                continue
            result = self._writer.write(blank, applying(event), f"klaviyo:{engagement.external_id}", merge_guest)
            outcomes[result.outcome.value] += 1
            entered += result.entered
            exited += result.exited
        logger.info("Klaviyo webhook handled", extra={"shop": shop, "outcomes": dict(outcomes)})
        return WebhookAnswer(
            200, {"status": "ok", "outcomes": dict(outcomes)}, "klaviyo", "written", tuple(entered), tuple(exited)
        )

    def _verified_shop(self, body: bytes, headers: Mapping[str, str], shop_hint: str | None) -> str | None:
        now = self._clock.now()
        for shop, account in self._accounts().items():
            if shop_hint and shop not in (shop_hint, WILDCARD):
                continue
            if any(verify_klaviyo_signature(body, headers, secret, now) for secret in account.webhook_secrets):
                return shop_hint or shop
        return None
