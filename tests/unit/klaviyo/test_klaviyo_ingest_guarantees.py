"""Klaviyo deliveries through the real use case, moto and the Klaviyo sandbox.

Guarantees: a shop's deliveries verify only with that shop's own secrets (the wildcard only covers shops with
none), both secrets verify during a rotation, and engagement that names only a Klaviyo profile id reaches its
profile, or is kept until it can, never silently lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from evergreen.clock import FixedClock
from evergreen.domain.profile import Profile
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.service.klaviyo_webhooks import MAX_KLAVIYO_LOOKUPS, KlaviyoWebhooks
from evergreen.service.shopify_webhooks import WebhookAnswer
from evergreen.settings import Settings
from evergreen.storage import keys
from evergreen.storage.parked_engagements import PARKED_PER_KLAVIYO_ID, PARKED_PER_SHOP, DynamoParkedEngagements
from evergreen.wiring import Edges
from evergreen_cli.local_stack.inprocess import create_resources
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
SHOP_C = "shop-c.myshopify.com"
SECRETS = {"*": "default-secret-0123456789", SHOP_A: "shop-a-secret-0123456789", SHOP_B: "shop-b-secret-0123456789"}
ACCOUNTS: dict[str, Any] = {
    "*": {"webhook_secret": SECRETS["*"]},
    SHOP_A: {"api_key": "pk_shop_a", "webhook_secret": SECRETS[SHOP_A]},
    SHOP_B: {"api_key": "pk_shop_b", "webhook_secret": SECRETS[SHOP_B], "account_id": "AcctB"},
}
PROFILE_ID = "01KPROFILEONLY00000000000A"


def event_payload(
    profile_id: str = PROFILE_ID,
    *,
    email: str | None = None,
    metric: str = "Opened Email",
    when: datetime = NOW - timedelta(minutes=5),
) -> dict[str, Any]:
    """A Get Event response; without `email` it names only the Klaviyo profile, as Klaviyo's example does."""
    included: list[dict[str, Any]] = [{"type": "metric", "id": "M1", "attributes": {"name": metric}}]
    if email is not None:
        included.append({"type": "profile", "id": profile_id, "attributes": {"email": email}})
    return {
        "data": {
            "type": "event",
            "id": f"EV{profile_id[-6:]}",
            "attributes": {"datetime": when.isoformat(), "event_properties": {}},
            "relationships": {
                "profile": {"data": {"type": "profile", "id": profile_id}},
                "metric": {"data": {"type": "metric", "id": "M1"}},
            },
        },
        "included": included,
    }


TOPICS = {"Opened Email": "event:klaviyo.opened_email", "Clicked Email": "event:klaviyo.clicked_email"}


def delivery(*events: tuple[str, dict[str, Any]], account_id: str | None = None) -> bytes:
    meta: dict[str, Any] = {"klaviyo_webhook_id": "01KWEBHOOK", "timestamp": NOW.isoformat()}
    if account_id:
        meta["klaviyo_account_id"] = account_id
    items = [
        {"external_id": external_id, "topic": TOPICS[payload["included"][0]["attributes"]["name"]], "payload": payload}
        for external_id, payload in events
    ]
    return json.dumps({"data": items, "meta": meta}).encode()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(port=0, validate=False)
    yield server
    server.stop()


class World:
    def __init__(self, edges: Edges, sandbox: SandboxServer) -> None:
        self.edges = edges
        self.sandbox = sandbox
        self.table = edges.settings.profiles_table
        self.http = httpx.Client()
        self.clients: dict[str, KlaviyoClient] = {}
        self.parked = DynamoParkedEngagements(edges.dynamodb, self.table)
        self.webhooks = KlaviyoWebhooks(
            accounts=edges.secrets.klaviyo_accounts,
            writer=edges.writer,
            store=edges.store,
            clock=edges.clock,
            max_body_bytes=edges.settings.max_body_bytes,
            klaviyo_index=edges.store,
            klaviyo_api=self.klaviyo_api,
            parked=self.parked,
        )

    def klaviyo_api(self, shop: str) -> KlaviyoClient | None:
        account = self.edges.secrets.klaviyo_account(shop)
        if account is None or not account.api_key:
            return None
        if account.api_key not in self.clients:
            self.clients[account.api_key] = KlaviyoClient(
                self.sandbox.url, account.api_key, http=self.http, max_attempts=1, sleep=lambda s: None
            )
        return self.clients[account.api_key]

    def send(self, body: bytes, secret: str, shop: str | None, stamp: datetime = NOW) -> WebhookAnswer:
        return self.webhooks.receive(body, sign_klaviyo_body(body, secret, stamp), shop)

    def item_count(self) -> int:
        return int(self.edges.dynamodb.scan(TableName=self.table, Select="COUNT")["Count"])

    def profile(self, shop: str, key: str) -> Profile | None:
        return self.edges.store.load(shop, key)

    def lookups(self) -> list[dict[str, Any]]:
        return [r for r in self.sandbox.requests() if r["method"] == "GET" and r["path"].startswith("/api/profiles/")]

    def klaviyo_knows(self, profile_id: str, **attributes: Any) -> None:
        with self.sandbox.state.lock:
            self.sandbox.state.profiles[profile_id] = {"properties": {}, **attributes}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer) -> Iterator[World]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    sandbox.clear()
    with mock_aws():
        environment = create_resources({}, ACCOUNTS)
        settings = Settings.from_env({**environment, "SECRETS_CACHE_SECONDS": "0"})
        world = World(Edges(settings, FixedClock(NOW)), sandbox)
        yield world
        world.http.close()


OPEN = delivery(("01KEVENTOPEN0001", event_payload(email="ada@example.com")))


# --- tenant isolation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_with", "shop"),
    [(SHOP_A, SHOP_B), ("*", SHOP_B), (SHOP_B, SHOP_A), (SHOP_A, SHOP_C), ("*", SHOP_A)],
    ids=["A->B", "*->B", "B->A", "A->C", "*->A"],
)
def test_a_delivery_signed_with_another_tenants_secret_gets_401_and_writes_nothing(
    world: World, signed_with: str, shop: str
) -> None:
    before = world.item_count()

    answer = world.send(OPEN, SECRETS[signed_with], shop)

    assert answer.status == 401
    assert world.item_count() == before


@pytest.mark.parametrize(
    ("signed_with", "shop"), [(SHOP_A, SHOP_A), (SHOP_B, SHOP_B), ("*", SHOP_C)], ids=["A->A", "B->B", "*->C"]
)
def test_a_delivery_signed_with_the_shops_own_secret_is_applied_to_that_shop(
    world: World, signed_with: str, shop: str
) -> None:
    answer = world.send(OPEN, SECRETS[signed_with], shop)

    assert answer.status == 200
    stored = world.profile(shop, "guest#ada@example.com")
    assert stored is not None and stored.engagement.last_email_open_at == NOW - timedelta(minutes=5)


def test_without_shop_the_one_own_account_that_verifies_names_the_shop(world: World) -> None:
    assert world.send(OPEN, SECRETS[SHOP_A], None).status == 200
    assert world.profile(SHOP_A, "guest#ada@example.com") is not None


def test_without_shop_the_wildcard_secret_names_no_shop_and_writes_nothing(world: World) -> None:
    answer = world.send(OPEN, SECRETS["*"], None)

    assert answer.status == 400 and "?shop=" in answer.body["error"]
    assert world.item_count() == 0


def test_a_body_from_another_klaviyo_account_is_refused_even_with_the_right_secret(world: World) -> None:
    body = delivery(("01KEVENTOPEN0001", event_payload(email="ada@example.com")), account_id="SomeoneElse")

    assert world.send(body, SECRETS[SHOP_B], SHOP_B).status == 401
    assert world.item_count() == 0
    assert world.send(delivery(*json_items(body), account_id="AcctB"), SECRETS[SHOP_B], SHOP_B).status == 200


def json_items(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(item["external_id"], item["payload"]) for item in json.loads(body)["data"]]


# --- rotation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account",
    [
        {"webhook_secret": "new-secret-0123456789", "previous_webhook_secret": "old-secret-0123456789"},
        {"webhook_secret": ["new-secret-0123456789", "old-secret-0123456789"]},
    ],
)
def test_during_a_rotation_both_secrets_verify_and_no_other_does(world: World, account: dict[str, Any]) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId="klaviyo", SecretString=json.dumps({SHOP_A: account}))

    new = world.send(delivery(("01KNEW", event_payload(email="ada@example.com"))), "new-secret-0123456789", SHOP_A)
    old = world.send(delivery(("01KOLD", event_payload(email="bo@example.com"))), "old-secret-0123456789", SHOP_A)
    other = world.send(OPEN, "older-secret-0123456789", SHOP_A)

    assert (new.status, old.status, other.status) == (200, 200, 401)


# --- engagement that names only a Klaviyo profile id ---------------------------------------------------------


def test_an_id_only_open_reaches_the_profile_sync_linked_to_that_klaviyo_id_without_asking_klaviyo(
    world: World,
) -> None:
    world.edges.writer.write(Profile(shop=SHOP_A, customer_id="42"), lambda p: p)
    world.edges.store.mark_synced(SHOP_A, "customer#42", 1, klaviyo_profile_id=PROFILE_ID)

    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.status == 200 and answer.body["outcomes"] == {"written": 1}
    stored = world.profile(SHOP_A, "customer#42")
    assert stored is not None and stored.engagement.last_email_open_at == NOW - timedelta(minutes=5)
    assert world.lookups() == []


def test_an_id_only_open_asks_klaviyo_and_follows_the_external_id_sync_gave_the_profile(world: World) -> None:
    world.edges.writer.write(Profile(shop=SHOP_A, customer_id="77"), lambda p: p)
    world.klaviyo_knows(PROFILE_ID, external_id=f"{SHOP_A}/customer#77", email="grace@example.com")

    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.status == 200 and answer.body["outcomes"] == {"written": 1}
    stored = world.profile(SHOP_A, "customer#77")
    assert stored is not None and stored.engagement.last_email_open_at == NOW - timedelta(minutes=5)
    [lookup] = world.lookups()
    assert lookup["path"] == f"/api/profiles/{PROFILE_ID}"


def test_klaviyos_external_id_never_brings_back_a_profile_we_no_longer_hold(world: World) -> None:
    world.klaviyo_knows(PROFILE_ID, external_id=f"{SHOP_A}/customer#77")

    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.body["outcomes"] == {"parked": 1}
    assert world.profile(SHOP_A, "customer#77") is None


def test_an_id_only_open_of_a_profile_klaviyo_knows_by_email_lands_on_that_email(world: World) -> None:
    world.klaviyo_knows(PROFILE_ID, email="Grace@Example.com", phone_number="+14155550123")

    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.body["outcomes"] == {"written": 1}
    stored = world.profile(SHOP_A, "guest#grace@example.com")
    assert stored is not None and stored.engagement.last_email_open_at is not None
    assert stored.klaviyo_profile_id == PROFILE_ID


def test_an_unresolvable_id_only_event_is_parked_not_dropped_and_applied_once_its_profile_is_known(
    world: World,
) -> None:
    click = delivery(("01KCLICK", event_payload(metric="Clicked Email", when=NOW - timedelta(hours=2))))

    first = world.send(click, SECRETS[SHOP_A], SHOP_A)
    again = world.send(click, SECRETS[SHOP_A], SHOP_A)

    assert first.status == again.status == 200
    assert first.body["outcomes"] == {"parked": 1}
    assert len(world.parked.parked(SHOP_A, PROFILE_ID)) == 1  # a redelivery parks it once
    assert world.profile(SHOP_A, "customer#42") is None

    world.edges.writer.write(Profile(shop=SHOP_A, customer_id="42"), lambda p: p)
    world.edges.store.mark_synced(SHOP_A, "customer#42", 1, klaviyo_profile_id=PROFILE_ID)
    answer = world.send(delivery(("01KOPEN", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.body["outcomes"] == {"written": 2, "unparked": 1}
    stored = world.profile(SHOP_A, "customer#42")
    assert stored is not None
    assert stored.engagement.last_email_click_at == NOW - timedelta(hours=2)
    assert stored.engagement.last_email_open_at == NOW - timedelta(minutes=5)
    assert world.parked.parked(SHOP_A, PROFILE_ID) == []
    replay = world.send(click, SECRETS[SHOP_A], SHOP_A)
    assert replay.body["outcomes"] == {"duplicate": 1}


def test_klaviyo_being_down_parks_the_engagement_instead_of_failing_the_delivery(world: World) -> None:
    world.klaviyo_knows(PROFILE_ID, email="grace@example.com")
    world.sandbox.fail_next(503, count=5)

    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)

    assert answer.status == 200 and answer.body["outcomes"] == {"parked": 1}
    world.sandbox.clear()


def test_a_batch_of_unknown_profiles_asks_klaviyo_a_bounded_number_of_times(world: World) -> None:
    events = [(f"01KEVENT{n:04d}", event_payload(f"01KUNKNOWN{n:016d}")) for n in range(MAX_KLAVIYO_LOOKUPS + 5)]

    answer = world.send(delivery(*events), SECRETS[SHOP_A], SHOP_A)

    assert answer.status == 200 and answer.body["outcomes"] == {"parked": MAX_KLAVIYO_LOOKUPS + 5}
    assert len(world.lookups()) == MAX_KLAVIYO_LOOKUPS


def test_a_shop_without_an_api_key_parks_id_only_engagement(world: World) -> None:
    answer = world.send(delivery(("01KEVENT1", event_payload())), SECRETS["*"], SHOP_C)

    assert answer.body["outcomes"] == {"parked": 1}
    assert world.lookups() == []


# --- replay window ----------------------------------------------------------------------------------------


def test_a_retry_a_day_later_with_its_first_timestamp_is_accepted_and_changes_nothing(world: World) -> None:
    first = world.send(OPEN, SECRETS[SHOP_A], SHOP_A, stamp=NOW - timedelta(hours=24))
    version = world.profile(SHOP_A, "guest#ada@example.com")

    retry = world.send(OPEN, SECRETS[SHOP_A], SHOP_A, stamp=NOW - timedelta(hours=24))

    assert (first.status, retry.status) == (200, 200)
    assert retry.body["outcomes"] == {"duplicate": 1}
    assert world.profile(SHOP_A, "guest#ada@example.com") == version


# --- poison on the way to a key: bounded, a clear answer, never a DynamoDB key error --------------------------


@pytest.mark.parametrize("shop", ["s" * 5_000 + ".myshopify.com", "shop a.myshopify.com", "../x", "🛍️.myshopify.com"])
def test_a_shop_parameter_that_is_not_a_shop_domain_gets_400_and_writes_nothing(world: World, shop: str) -> None:
    answer = world.send(OPEN, SECRETS["*"], shop)

    assert answer.status == 400
    assert world.item_count() == 0


def test_an_over_long_or_odd_external_id_from_klaviyo_is_not_used_as_a_key(world: World) -> None:
    world.klaviyo_knows(PROFILE_ID, external_id=f"{SHOP_A}/customer#{'9' * 2_000}", email="grace@example.com")
    world.klaviyo_knows("01KODD", external_id=f"{SHOP_A}/customer#not-a-number")

    first = world.send(delivery(("01KEVENT1", event_payload())), SECRETS[SHOP_A], SHOP_A)
    second = world.send(delivery(("01KEVENT2", event_payload("01KODD"))), SECRETS[SHOP_A], SHOP_A)

    assert first.body["outcomes"] == {"written": 1}  # by its email instead
    assert world.profile(SHOP_A, "guest#grace@example.com") is not None
    assert second.body["outcomes"] == {"parked": 1}


def test_a_klaviyo_profile_id_that_is_not_klaviyos_shape_is_counted_not_stored_and_never_a_5xx(world: World) -> None:
    odd_id = "🛍️" * 30

    answer = world.send(delivery(("01KEVENT1", event_payload(odd_id))), SECRETS[SHOP_A], SHOP_A)

    assert answer.status == 200 and answer.body["outcomes"] == {"unidentified": 1}
    assert world.item_count() == 0
    assert world.lookups() == []


def test_an_unresolved_engagement_is_logged_without_pii(world: World, caplog: pytest.LogCaptureFixture) -> None:
    payload = event_payload()
    payload["data"]["attributes"]["event_properties"] = {"$phone_number": "+14155550199"}

    with caplog.at_level(logging.INFO):
        answer = world.send(delivery(("01KEVENT1", payload)), SECRETS[SHOP_A], SHOP_A)

    assert answer.body["outcomes"] == {"parked": 1}
    [record] = [r for r in caplog.records if "resolves to no profile" in r.getMessage()]
    logged = repr(record.__dict__)
    assert "klaviyo_profile_hash" in logged and "phone_hash" in logged
    assert "4155550199" not in logged and PROFILE_ID not in logged


def parked_keys(world: World, shop: str) -> list[str]:
    """The names of the shop's parked engagements in the table."""
    paginator = world.edges.dynamodb.get_paginator("scan")
    refs = [keys.ref_of(item) for page in paginator.paginate(TableName=world.table) for item in page["Items"]]
    return [name for item_shop, name in refs if item_shop == shop and name.startswith(keys.PARKED_PREFIX)]


FLOOD_DELIVERIES = 30


def test_a_flood_of_unresolvable_engagement_keeps_at_most_the_bounds_and_drops_the_oldest(world: World) -> None:
    """30 signed deliveries of 200 id-only events: a fifth name one Klaviyo id (1,200 in all), the rest four new ids
    per delivery (120 ids, 4,800 events: far more than the shop's bound once each id is at its own)."""
    start = NOW - timedelta(hours=20)
    answers = []
    for batch in range(FLOOD_DELIVERIES):
        events = []
        for n in range(200):
            profile_id = PROFILE_ID if n % 5 == 0 else f"01KFLOOD{batch:04d}{n % 4:014d}"
            when = start + timedelta(seconds=batch * 200 + n)
            events.append((f"01KFLOOD{batch:04d}{n:04d}", event_payload(profile_id, when=when)))
        answers.append(world.send(delivery(*events), SECRETS[SHOP_A], SHOP_A))

    assert all(answer.status == 200 for answer in answers)
    parked, dropped = (sum(a.body["outcomes"].get(name, 0) for a in answers) for name in ("parked", "parked_dropped"))
    kept = parked_keys(world, SHOP_A)
    assert parked == FLOOD_DELIVERIES * 200
    assert len(kept) <= PARKED_PER_SHOP
    assert dropped == parked - len(kept), "every dropped engagement is counted"
    one_id = world.parked.parked(SHOP_A, PROFILE_ID)
    assert len(one_id) == PARKED_PER_KLAVIYO_ID
    newest = start + timedelta(seconds=(FLOOD_DELIVERIES - 1) * 200 + 195)
    assert [p.event.occurred_at for p in one_id][-1] == newest, "the oldest are dropped first"
    assert len(world.lookups()) == FLOOD_DELIVERIES * 5, "each unknown id is asked about once per delivery"
