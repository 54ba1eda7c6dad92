"""Builds a shop's backfill from the process's edges: the Admin API token, the Klaviyo client, the stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any, Literal

import boto3
import httpx
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from pydantic import BaseModel, ConfigDict, Field

from evergreen.domain.shops import SHOP_DOMAIN
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.history import DEFAULT_WINDOW_DAYS, HISTORY_RATE_LIMITS
from evergreen.service.backfill import Backfill, BulkSource, MembershipSyncFailed, ProgressCallback
from evergreen.service.backfill_sync import BulkMembershipSync
from evergreen.service.engagement_history import EngagementHistory, HistoryReport
from evergreen.service.ports import entry_for
from evergreen.shopify.admin import ShopifyAdmin
from evergreen.shopify.bulk import AdminError
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen.wiring import AWS_CONFIG, Edges


class MissingAdminToken(Exception):
    exit_code = 3


STOPS_BACKFILL: tuple[type[Exception], ...] = (AdminError, MissingAdminToken, MembershipSyncFailed)
"""What stops a backfill with an answer to start it again (it resumes from its checkpoint)."""


class BackfillRequest(BaseModel):
    """What starts (or continues) a shop's backfill on AWS: the console test event in events/backfill/."""

    model_config = ConfigDict(extra="forbid")

    shop: str = Field(pattern=rf"^{SHOP_DOMAIN.pattern}$")
    since: date | None = None
    """Only customers, orders and abandoned checkouts updated on or after this day."""
    entered_events: bool = False
    """Send "Entered segment" events for backfilled members (off by default)."""
    engagement_days: int = Field(DEFAULT_WINDOW_DAYS, ge=0, le=3650)
    """Klaviyo engagement history window; 0 skips it."""
    stage: Literal["shopify", "engagement"] = "shopify"
    """Set by the function itself when it continues in a new invocation."""
    history_metric: str | None = None
    history_cursor: str | None = None
    continuation: int = Field(0, ge=0)
    max_continuations: int = Field(500, ge=0)

    @property
    def since_instant(self) -> str | None:
        return f"{self.since.isoformat()}T00:00:00Z" if self.since else None


@lru_cache(maxsize=1)
def _secrets_provider() -> SecretsProvider:
    """One cached Secrets Manager provider per process."""
    return SecretsProvider(boto3_client=boto3.client("secretsmanager", config=AWS_CONFIG))


def admin_token(edges: Edges, shop: str) -> str:
    """The shop's Admin API access token from Secrets Manager ({"<shop>": "<token>"}, "*" for any shop
    without an entry). Never logged."""
    provider = _secrets_provider()
    try:
        document: Any = provider.get(
            edges.settings.shopify_admin_secrets_id, max_age=edges.settings.secrets_cache_seconds, transform="json"
        )
    except Exception as error:
        raise MissingAdminToken(
            f"cannot read secret {edges.settings.shopify_admin_secrets_id}: {type(error).__name__}"
        ) from None
    token = entry_for(document, shop) if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise MissingAdminToken(
            f"no Shopify Admin API token for {shop} in secret {edges.settings.shopify_admin_secrets_id}"
        )
    return token


def shopify_admin(edges: Edges, shop: str, http: httpx.Client | None = None) -> ShopifyAdmin:
    return ShopifyAdmin(shop, admin_token(edges, shop), base_url=edges.settings.shopify_admin_base_url, http=http)


def klaviyo_sender(edges: Edges, shop: str, http: httpx.Client | None = None) -> KlaviyoClient | None:
    """The shop's Klaviyo client, honouring the sync's and the history endpoints' rate limits."""
    account = edges.secrets.klaviyo_account(shop)
    if account is None or not account.api_key:
        return None
    return KlaviyoClient(
        edges.settings.klaviyo_base_url,
        account.api_key,
        edges.settings.klaviyo_revision,
        http,
        rate_limits=HISTORY_RATE_LIMITS,
    )


def build_engagement_history(
    edges: Edges,
    sender: KlaviyoClient,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    fire_segment_events: bool = False,
    on_page: Callable[[HistoryReport], None] | None = None,
) -> EngagementHistory:
    membership = BulkMembershipSync(
        sender, edges.definitions.klaviyo_list_ids, edges.store, fire_segment_events=fire_segment_events
    )
    return EngagementHistory(
        sender,
        edges.store,
        edges.definitions,
        edges.clock,
        membership=membership,
        window_days=window_days,
        on_page=on_page,
    )


def build_backfill(
    edges: Edges,
    source: BulkSource,
    sender: KlaviyoClient | None,
    *,
    fire_segment_events: bool = False,
    checkpoint_every: int = 1_000,
    poll_every_s: float = 2.0,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 1,
) -> Backfill:
    """Without a Klaviyo sender, membership changes go through the usual queue instead of bulk jobs."""
    membership = (
        BulkMembershipSync(
            sender, edges.definitions.klaviyo_list_ids, edges.store, fire_segment_events=fire_segment_events
        )
        if sender is not None
        else None
    )
    return Backfill(
        source,
        edges.store,
        DynamoBackfillProgress(edges.dynamodb, edges.settings.profiles_table),
        edges.definitions,
        edges.clock,
        membership=membership,
        publisher=edges.publisher,
        checkpoint_every=checkpoint_every,
        poll_every_s=poll_every_s,
        on_progress=on_progress,
        should_stop=should_stop,
        workers=workers,
    )
