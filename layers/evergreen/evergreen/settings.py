"""All configuration, read once from the environment through one model."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

SHOPIFY_API_VERSION = "2026-10"
"""The one Shopify API version pin: Admin calls, webhook subscriptions and the app TOML use it, and a webhook
delivered at another version moves ShopifyApiVersionMismatch. Moving it: docs/extending.md, "Moving to a new
API version". Its support window: `evergreen.api_versions`."""
KLAVIYO_REVISION = "2026-07-15"
"""The one Klaviyo revision pin, sent on every request (matches ../shared/klaviyo/openapi/stable.json)."""


class Settings(BaseModel):
    """Environment variables, by name. Unset optional ones fall back to the defaults here."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    profiles_table: str = Field("evergreen-profiles", alias="PROFILES_TABLE")
    segment_changes_queue_url: str = Field("", alias="SEGMENT_CHANGES_QUEUE_URL")
    segment_changes_dlq_url: str = Field("", alias="SEGMENT_CHANGES_DLQ_URL")
    """Where SegmentSync moves poison messages (a 4xx retrying cannot fix) at once."""
    sync_batch_size: int = Field(10, alias="SYNC_BATCH_SIZE", ge=0)
    """The segment-changes event source's BatchSize: a batch this full makes SegmentSync drain the backlog."""
    sync_drain_max_changes: int = Field(10_000, alias="SYNC_DRAIN_MAX_CHANGES", ge=0)
    """Most changes one SegmentSync invocation handles with what it drains (0: never drain)."""
    sync_drain_max_bytes: int = Field(6 * 1024 * 1024, alias="SYNC_DRAIN_MAX_BYTES", ge=0)
    sync_drain_safety_ms: int = Field(20_000, alias="SYNC_DRAIN_SAFETY_MS", ge=0)
    sync_drain_ms_per_change: float = Field(25.0, alias="SYNC_DRAIN_MS_PER_CHANGE", ge=0)
    """Handling time the drain reserves per change it holds (see service/sync_drain.py)."""
    klaviyo_delete_on_redact: bool = Field(False, alias="KLAVIYO_DELETE_ON_REDACT")
    """On customers/redact, also request Klaviyo's data-privacy deletion of the profile (needs data-privacy:write)."""
    shopify_secrets_id: str = Field("evergreen/shopify-webhook-secrets", alias="SHOPIFY_SECRETS_ID")
    klaviyo_secrets_id: str = Field("evergreen/klaviyo", alias="KLAVIYO_SECRETS_ID")
    shopify_admin_secrets_id: str = Field("evergreen/shopify-admin-tokens", alias="SHOPIFY_ADMIN_SECRETS_ID")
    shopify_admin_base_url: str | None = Field(None, alias="SHOPIFY_ADMIN_BASE_URL")
    """Only for the local Shopify sandbox; unset, each shop's own https://<shop> is called."""
    exports_bucket: str = Field("", alias="EXPORTS_BUCKET")
    due_shards: int = Field(32, alias="DUE_SHARDS", ge=1, le=256)
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", ge=1024)
    klaviyo_base_url: str = Field("https://a.klaviyo.com", alias="KLAVIYO_BASE_URL")
    klaviyo_revision: str = Field(KLAVIYO_REVISION, alias="KLAVIYO_REVISION")
    segments_file: str | None = Field(None, alias="SEGMENTS_FILE")
    sync_grace_seconds: int = Field(900, alias="SYNC_GRACE_SECONDS", ge=0)
    secrets_cache_seconds: int = Field(300, alias="SECRETS_CACHE_SECONDS", ge=0)
    sweep_safety_ms: int = Field(20_000, alias="SWEEP_SAFETY_MS", ge=0)
    transitions_queue_url: str = Field("", alias="TRANSITIONS_QUEUE_URL")
    """The exact-instant path's delayed queue; empty: transitions wait for the sweep."""
    transition_lookahead_seconds: int = Field(360, alias="TRANSITION_LOOKAHEAD_SECONDS", ge=0, le=3900)
    """How far ahead each sweep hands due transitions off: at least the sweep interval (0 turns it off)."""
    klaviyo_concurrent_calls: int = Field(10, alias="KLAVIYO_CONCURRENT_CALLS", ge=1, le=64)
    """Klaviyo calls one SegmentSync process makes at once in a trickle (per-change imports, events, lists)."""
    klaviyo_shared_budget: bool = Field(True, alias="KLAVIYO_SHARED_BUDGET")
    """Every container takes Klaviyo tokens from one budget per account in the profiles table (rate_budget.py)."""
    answer_within_seconds: float = Field(0, alias="ANSWER_WITHIN_SECONDS", ge=0)
    """A sender waits this long for the answer (Shopify: 5 s): AWS calls fail fast and a write that keeps losing
    races gives up early enough to answer 503 in time. 0: no sender waits (the sweep, sync, backfill)."""
    engagement_poll_overlap_seconds: int = Field(900, alias="ENGAGEMENT_POLL_OVERLAP_SECONDS", ge=0, le=86_400)
    """How much of its previous window each engagement poll reads again (late-indexed events, clock skew)."""
    engagement_poll_max_window_seconds: int = Field(3600, alias="ENGAGEMENT_POLL_MAX_WINDOW_SECONDS", ge=60)
    """The longest window one poll reads per account; a longer gap is caught up over several runs."""
    engagement_poll_shops: str = Field("", alias="ENGAGEMENT_POLL_SHOPS")
    """Comma-separated shops polled with the `"*"` Klaviyo account; shops named in the secret always are."""
    engagement_poll_safety_ms: int = Field(20_000, alias="ENGAGEMENT_POLL_SAFETY_MS", ge=0)
    """The poll stops this long before its Lambda timeout; the next run reads the unfinished window again."""
    sweep_fanout_function: str = Field("", alias="SWEEP_FANOUT_FUNCTION")
    """The sweep function a full re-evaluation fans out to (itself); empty: the scheduled run does it in turn."""
    full_sweep_invocations: int = Field(16, alias="FULL_SWEEP_INVOCATIONS", ge=1, le=256)
    """Parallel invocations of a fanned-out full re-evaluation (each walks `workers` scan segments)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({name: value for name, value in source.items() if name in aliases})
