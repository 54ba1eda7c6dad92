"""A backfill's position and counts (pure), as checkpointed between runs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Phase = Literal["customers", "orders", "abandonedCheckouts", "done"]
PHASES: tuple[Phase, ...] = ("customers", "orders", "abandonedCheckouts")
"""In this order; each phase is named after the bulk query's root connection. Abandoned checkouts come
after orders, so an order already applied closes the checkout it followed. A checkpoint saved before a
phase was added still loads: it resumes at its phase and runs the later ones."""


RECENT_ORDERS_DAYS = 60
"""Without the `read_all_orders` scope, Shopify's `orders` connection returns only orders of the last 60 days."""
ALL_ORDERS_SCOPE = "read_all_orders"


class BackfillCounts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    read: int = 0
    """JSONL objects read (roots and their children)."""
    records: int = 0
    """Root records (a customer, an order with its refunds, or an abandoned checkout)."""
    applied: int = 0
    """Records that changed a profile."""
    unchanged: int = 0
    """Records the profile already reflected (a re-run, or newer webhook state)."""
    skipped: int = 0
    """Records that could not be applied (no customer and no email, such as a guest's abandoned checkout,
    or missing required fields)."""
    synced_profiles: int = 0
    klaviyo_requests: int = 0


class BackfillProgress(BaseModel):
    """Where a shop's backfill stands. `line` is the last JSONL line whose record is fully applied."""

    model_config = ConfigDict(extra="ignore")

    shop: str
    phase: Phase = "customers"
    since: str | None = None
    operation_id: str | None = None
    line: int = 0
    started_at: datetime
    finished_at: datetime | None = None
    stopped_cleanly: bool = False
    """The last run yielded at a checkpoint (a Lambda near its time limit), rather than crashing."""
    counts: BackfillCounts = BackfillCounts()
    orders_from: datetime | None = None
    """The oldest order the orders phase could read: without `read_all_orders` Shopify serves only the last
    `RECENT_ORDERS_DAYS` days (and says nothing). None: every order was read."""
