"""The Klaviyo transport: headers, rate limits, back-off on 429, retries on 5xx, no retry on 4xx."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.client import KlaviyoClient, RateLimiter
from evergreen.klaviyo.errors import KlaviyoRejected, KlaviyoThrottled, KlaviyoUnavailable
from evergreen.settings import KLAVIYO_REVISION
from tests.unit.klaviyo.klaviyo_fakes import API_KEY, BASE_URL, FakeKlaviyo, FakeTime

Factory = Callable[..., SegmentChange]


def test_every_call_carries_auth_revision_and_json_api_headers(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    client.send(kr.profile_import(change_factory()))
    client.send(kr.profile_lookup(["shop/customer#1"]))
    post, get = klaviyo.sent
    assert post.headers["authorization"] == f"Klaviyo-API-Key {API_KEY}"
    assert post.headers["revision"] == KLAVIYO_REVISION == "2026-07-15"
    assert post.headers["accept"] == "application/vnd.api+json"
    assert post.headers["content-type"] == "application/vnd.api+json"
    assert post.query == {"fields[profile]": "external_id"}
    assert "content-type" not in get.headers
    assert get.headers["revision"] == KLAVIYO_REVISION


def test_a_429_waits_for_retry_after_then_succeeds(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, times=1, retry_after="7")
    response = client.send(kr.profile_import(change_factory()))
    assert response.status_code == 201
    assert fake_time.sleeps == [7.0]
    assert client.throttled_count == 1
    assert len(klaviyo.sent) == 2


def test_jitter_is_added_on_top_of_retry_after(
    klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, times=1, retry_after="2")
    client = KlaviyoClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(klaviyo)),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    client.send(kr.profile_import(change_factory()))
    assert len(fake_time.sleeps) == 1
    assert 2.0 <= fake_time.sleeps[0] <= 2.5


def test_a_429_without_retry_after_backs_off_exponentially(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, times=3)
    client.send(kr.profile_import(change_factory()))
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert client.throttled_count == 3


def test_persistent_429s_give_up_after_bounded_attempts(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    klaviyo.fail(429, retry_after="1")
    with pytest.raises(KlaviyoThrottled) as raised:
        client.send(kr.profile_import(change_factory()))
    assert len(klaviyo.sent) == 5
    assert client.throttled_count == 5
    assert raised.value.retry_after_s == 1.0


def test_a_retry_after_longer_than_a_lambda_should_wait_is_not_slept_through(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, retry_after="120")
    with pytest.raises(KlaviyoThrottled):
        client.send(kr.profile_import(change_factory()))
    assert fake_time.sleeps == []
    assert len(klaviyo.sent) == 1


def test_a_5xx_is_retried_with_backoff(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(503, times=2)
    assert client.send(kr.profile_import(change_factory())).status_code == 201
    assert fake_time.sleeps == [0.5, 1.0]
    assert client.retried_count == 2


def test_a_persistent_5xx_raises_unavailable(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    klaviyo.fail(500)
    with pytest.raises(KlaviyoUnavailable) as raised:
        client.send(kr.profile_import(change_factory()))
    assert raised.value.status == 500
    assert len(klaviyo.sent) == 5


CLOUDFLARE_CHALLENGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


def _answering(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def test_a_cloudflare_challenge_403_is_retried_and_then_succeeds(fake_time: FakeTime, change_factory: Factory) -> None:
    challenge = httpx.Response(403, headers={"content-type": "text/html; charset=UTF-8"}, text=CLOUDFLARE_CHALLENGE)
    transport = httpx.MockTransport(_answering(challenge, challenge, httpx.Response(201, json={"data": {"id": "K1"}})))
    client = KlaviyoClient(
        BASE_URL, API_KEY, http=httpx.Client(transport=transport), sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert client.send(kr.profile_import(change_factory())).status_code == 201
    assert len(fake_time.sleeps) == 2


def test_a_persistent_cloudflare_challenge_is_unavailable_not_rejected(
    fake_time: FakeTime, change_factory: Factory
) -> None:
    challenge = httpx.Response(403, headers={"content-type": "text/html"}, text=CLOUDFLARE_CHALLENGE)
    client = KlaviyoClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(_answering(challenge))),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        max_attempts=3,
    )
    with pytest.raises(KlaviyoUnavailable) as raised:
        client.send(kr.profile_import(change_factory()))
    assert raised.value.status == 403


def test_a_json_api_403_is_final(client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory) -> None:
    klaviyo.fail(403, errors=[{"status": 403, "code": "permission_denied", "title": "You do not have permission."}])
    with pytest.raises(KlaviyoRejected) as raised:
        client.send(kr.profile_import(change_factory()))
    assert raised.value.status == 403
    assert len(klaviyo.sent) == 1


def test_transport_errors_are_retried(fake_time: FakeTime, change_factory: Factory) -> None:
    attempts: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(202)

    client = KlaviyoClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(flaky)),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda base: 0.0,
    )
    change = change_factory()
    assert client.send(kr.create_event(change, kr.segment_events(change)[0])).status_code == 202
    assert len(attempts) == 3


def test_transport_errors_give_up_after_bounded_attempts(fake_time: FakeTime, change_factory: Factory) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = KlaviyoClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(down)),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        max_attempts=3,
    )
    with pytest.raises(KlaviyoUnavailable, match="ReadTimeout"):
        client.send(kr.profile_import(change_factory()))
    assert len(fake_time.sleeps) == 2


def test_a_4xx_is_not_retried_and_its_error_names_no_one(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(
        400,
        errors=[
            {
                "id": "e1",
                "status": 400,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "Invalid email address customer1@example.com or phone +14155550123",
                "source": {"pointer": "/data/attributes/email"},
            }
        ],
    )
    with pytest.raises(KlaviyoRejected) as raised:
        client.send(kr.profile_import(change_factory()))
    error = raised.value
    assert error.status == 400
    assert len(klaviyo.sent) == 1
    assert fake_time.sleeps == []
    assert "invalid" in str(error)
    assert "/data/attributes/email" in str(error)
    assert "customer1@example.com" not in str(error)
    assert "4155550123" not in str(error)
    assert error.errors[0].code == "invalid"


def test_a_409_conflict_keeps_klaviyos_error_meta(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    klaviyo.fail(409, errors=[{"status": 409, "code": "duplicate_profile", "meta": {"duplicate_profile_id": "K9"}}])
    with pytest.raises(KlaviyoRejected) as raised:
        client.send(kr.profile_import(change_factory()))
    assert raised.value.errors[0].meta == {"duplicate_profile_id": "K9"}


def test_a_burst_beyond_the_endpoint_limit_waits_for_tokens(client: KlaviyoClient, fake_time: FakeTime) -> None:
    for _ in range(10):
        client.send(kr.add_profiles_to_list("L1", ["K1"]))
    assert fake_time.sleeps == []
    client.send(kr.add_profiles_to_list("L1", ["K1"]))
    assert fake_time.sleeps == [pytest.approx(0.1)]


def test_the_steady_limit_holds_over_a_minute(fake_time: FakeTime) -> None:
    limiter = RateLimiter({"op": kr.RateLimit(10, 150)}, clock=fake_time.clock, sleep=fake_time.sleep)
    start = fake_time.now
    for _ in range(300):
        limiter.acquire("op")
    # 150 calls are allowed at once, the next 150 at 150 per minute.
    assert fake_time.now - start == pytest.approx(60.0, rel=0.02)


def test_endpoints_have_separate_buckets(fake_time: FakeTime) -> None:
    limiter = RateLimiter(kr.RATE_LIMITS, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(10):
        limiter.acquire(kr.OP_LIST_ADD)
    for _ in range(75):
        limiter.acquire(kr.OP_PROFILE_IMPORT)
    assert fake_time.sleeps == []


# --- GET /api/profiles/{id}: who a Klaviyo profile is, for engagement that names only its id -----------------


def test_get_profile_asks_for_identifiers_only_and_answers_none_for_an_unknown_profile(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    assert client.get_profile("01KUNKNOWN0000000000000000") is None
    [sent] = klaviyo.sent
    assert (sent.method, sent.path) == ("GET", "/api/profiles/01KUNKNOWN0000000000000000")
    assert sent.query == {"fields[profile]": "external_id,email,phone_number"}


def test_get_profile_is_rate_limited_like_every_call(client: KlaviyoClient, fake_time: FakeTime) -> None:
    for _ in range(kr.RATE_LIMITS[kr.OP_GET_PROFILE].burst_per_second + 1):
        client.get_profile("01KUNKNOWN0000000000000000")
    assert fake_time.sleeps, "the burst bucket made the call past the limit wait"


def test_get_profile_raises_on_other_failures(client: KlaviyoClient, klaviyo: FakeKlaviyo) -> None:
    klaviyo.fail(401)
    with pytest.raises(KlaviyoRejected):
        client.get_profile("01KPROFILE")


@pytest.mark.parametrize("bad", ["", "../lists/X", "01K/1", "a" * 65, "é"])
def test_a_profile_id_that_is_not_one_path_segment_is_never_sent(bad: str) -> None:
    with pytest.raises(ValueError):
        kr.get_profile(bad)
